// Where the client keeps its positions (the last epoch/seq seen per channel): in memory by
// default, or in localStorage so that a page reload resumes where the page left off.

/** A position in a channel's event sequence (the server's epoch and sequence number). */
export interface Position {
  epoch: string;
  seq: number;
}

/**
 * A place to keep positions, by channel name (the personal channel under its real name,
 * `user:<userId>`). Synchronous, like localStorage. The client reads a channel's position the
 * first time it needs it and writes every change.
 */
export interface PositionStore {
  get(key: string): Position | undefined;
  set(key: string, position: Position): void;
  delete(key: string): void;
}

/** The default: positions live as long as the client (a page reload starts afresh). */
export function memoryPositions(): PositionStore {
  const map = new Map<string, Position>();
  return {
    get: (key) => map.get(key),
    set: (key, position) => void map.set(key, { epoch: position.epoch, seq: position.seq }),
    delete: (key) => void map.delete(key),
  };
}

/** The part of the Web Storage API the localStorage store uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Positions in localStorage (browsers), as `{"epoch":…,"seq":…}` under `prefix + channel`, so a
 * reload presents them on its first connection. Without a usable storage (no localStorage, as in
 * Node or server-side rendering), positions are kept in memory. A storage that refuses a write
 * (quota, private mode) loses that write only; an unreadable item reads as no position.
 */
export function localStoragePositions(prefix = 'zena-realtime:', storage?: StorageLike): PositionStore {
  let store: StorageLike | undefined = storage;
  if (!store) {
    try {
      store = (globalThis as { localStorage?: StorageLike }).localStorage;
    } catch {
      store = undefined; // some browsers throw on access when storage is disabled
    }
  }
  if (!store) return memoryPositions();
  const s = store;
  return {
    get(key) {
      try {
        const text = s.getItem(prefix + key);
        return text === null ? undefined : validPosition(JSON.parse(text));
      } catch {
        return undefined;
      }
    },
    set(key, position) {
      try {
        s.setItem(prefix + key, JSON.stringify({ epoch: position.epoch, seq: position.seq }));
      } catch {
        // quota exceeded or storage disabled: this position is not kept across a reload
      }
    },
    delete(key) {
      try {
        s.removeItem(prefix + key);
      } catch {
        // as above
      }
    },
  };
}

/** `value` as a Position if it is one (a non-empty epoch, a whole seq >= 0). */
export function validPosition(value: unknown): Position | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { epoch, seq } = value as { epoch?: unknown; seq?: unknown };
  if (typeof epoch !== 'string' || epoch === '' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  return { epoch, seq };
}
