// The Zena Realtime client: one WebSocket to the gateway, typed events from the catalog,
// reconnect with backoff, a bounded send queue, liveness checks, Ask Zena streams, channels,
// resume positions (docs/channels.md), and presence and typing indicators (docs/presence.md). Works in browsers (global WebSocket) and in Node 20
// (the `ws` package).

import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import type {
  AskResponsePayload,
  ClientEvents,
  ConnectedPayload,
  PresenceStatePayload,
  ServerEvents,
  SubscribedPayload,
  SubscribeErrorPayload,
  SubscribePayload,
  TypingPayload,
  UnsubscribedPayload,
} from './catalog.generated.js';
import { CLOSE_CODE, closeCodeInfo } from './close_codes.js';
import { memoryPositions, validPosition, type Position, type PositionStore } from './positions.js';

export type { Position, PositionStore } from './positions.js';

/** The part of the WebSocket API the client uses (browsers' WebSocket and `ws` both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Set to 'arraybuffer' with `format: 'msgpack'` (browsers' and `ws`'s default differ). */
  binaryType?: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** `ws` only: protocol pings, which browsers cannot see. */
  on?(event: 'ping', listener: () => void): unknown;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type TokenSource = string | (() => string | Promise<string>);

export interface ConnectOptions {
  /**
   * The gateway's WebSocket URL, e.g. `wss://realtime.example.com/ws` (one load-balanced name),
   * or the URLs of several nodes sharing the Redis engine: each connection attempt takes the next
   * one in turn, so a client of a node that went away reconnects to another and resumes there
   * from its positions.
   */
  url: string | string[];
  /** The JWT, or a function called before every connection attempt (tokens expire). */
  token: TokenSource;
  /** The WebSocket implementation; default: the global one, else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /** Sends kept while disconnected; a send beyond this is rejected. Default 100. */
  maxQueuedSends?: number;
  backoff?: BackoffOptions;
  /** The socket is taken for dead after this many heartbeat intervals without a sign of life. Default 2. */
  livenessIntervals?: number;
  /** Source of randomness for jitter (tests). Default Math.random. */
  random?: () => number;
  /**
   * How the token reaches the server: 'protocol' (default) offers it as a Sec-WebSocket-Protocol
   * (`zena-realtime, bearer.<token>`), which keeps it out of URLs and access logs; 'query' puts
   * it in `?token=`, the seed's way, for servers that only read that.
   */
  tokenTransport?: 'protocol' | 'query';
  /** With a token function: ask for a fresh token this long before the current one expires,
   * and hand it to the server in-band (`auth.refresh`). Default 60000 ms. */
  refreshBeforeMs?: number;
  /**
   * Where positions are kept (default `memoryPositions()`). With `localStoragePositions()` a
   * page reload resumes: the first connection presents the personal channel's position, and
   * each re-subscribe its channel's.
   */
  positions?: PositionStore;
  /** The token's claim that names the user (the server's `jwt.user_claim`), read without
   * verification to find the personal channel before the first welcome. Default `sub`. */
  userClaim?: string;
  /**
   * The wire format: 'json' (default: text frames) or 'msgpack': the client offers the
   * `zena-realtime.msgpack` subprotocol and both directions travel as MessagePack binary frames
   * (`@msgpack/msgpack`, loaded on the first connection). The same envelopes and typed API.
   */
  format?: WireFormat;
}

export type WireFormat = 'json' | 'msgpack';

/** How messages are written and read on the socket: JSON text, or MessagePack binary. */
interface Codec {
  encode(message: ClientMessage): string | Uint8Array;
  decode(data: unknown): unknown;
}

/** What the client sends: a client event or one of the protocol's own messages. */
interface ClientMessage {
  type: string;
  payload: unknown;
}

const jsonCodec: Codec = {
  encode: (message) => JSON.stringify(message),
  // `ws` hands text as a string; anything else is read as its text.
  decode: (data) => JSON.parse(typeof data === 'string' ? data : String(data)),
};

let msgpackCodec: Promise<Codec> | undefined;
function loadMsgpack(): Promise<Codec> {
  // Loaded only by clients that ask for it: JSON clients (and pages without a bundler) never
  // resolve the package.
  msgpackCodec ??= import('@msgpack/msgpack').then((m) => ({
    encode: (message: ClientMessage) => m.encode(message),
    decode: (data: unknown) => {
      // A text frame (a server without the subprotocol's twin for it) is still JSON.
      if (typeof data === 'string') return JSON.parse(data);
      if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return m.decode(data as ArrayBuffer | ArrayBufferView);
      throw new Error('zena-realtime: a message that is neither text nor binary');
    },
  }));
  return msgpackCodec;
}

export interface SubscribeOptions {
  /** A channel token (a JWT with a `channel` claim), or a function called before each
   * (re)subscribe, since the client subscribes again after every reconnect. */
  token?: TokenSource;
}

/** The server could not recover a channel's missed events: refetch its state. The client has
 * taken the new position. */
export interface ResyncEvent {
  channel: string;
  epoch: string;
  seq: number;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'unauthorized' | 'closed';

export type StateEvent =
  | { state: 'connecting'; attempt: number }
  | { state: 'open'; welcome: ConnectedPayload }
  | { state: 'closed'; code: number; reason: string; willReconnect: boolean }
  | { state: 'reconnecting'; delayMs: number; attempt: number }
  | { state: 'unauthorized'; code: number; reason: string };

/** A message as it arrived: `type`, `payload`, and any extra top-level fields (`seq`, ...). */
export interface Envelope<P = unknown> {
  type: string;
  payload: P;
  [extra: string]: unknown;
}

export class SendQueueFullError extends Error {
  constructor(limit: number) {
    super(`zena-realtime: the send queue is full (${limit} messages wait for a connection)`);
    this.name = 'SendQueueFullError';
  }
}

export class ClientClosedError extends Error {
  constructor() {
    super('zena-realtime: the client was closed');
    this.name = 'ClientClosedError';
  }
}

/** Thrown by an Ask Zena stream that ended with an `error` chunk. */
export class AskStreamError extends Error {
  readonly chunk: AskResponsePayload;
  constructor(chunk: AskResponsePayload) {
    super(`zena-realtime: the answer stream failed: ${chunk.error}`);
    this.name = 'AskStreamError';
    this.chunk = chunk;
  }
}

/** Why a subscribe failed: the server's `subscribe.error` reason, or `cancelled` when
 * `unsubscribe()` was called before the answer. */
export type SubscribeErrorReason = SubscribeErrorPayload['reason'] | 'cancelled';

/** A subscribe the server refused (`subscribe.error`), or one cancelled by `unsubscribe()`. */
export class SubscribeError extends Error {
  readonly channel: string;
  readonly reason: SubscribeErrorReason;
  constructor(channel: string, reason: SubscribeErrorReason) {
    super(`zena-realtime: subscribe to ${channel} failed: ${reason}`);
    this.name = 'SubscribeError';
    this.channel = channel;
    this.reason = reason;
  }
}

/** Thrown by an Ask Zena stream whose chunks may have been lost: the personal channel could not
 * be recovered after a reconnect (a resync). Ask again. */
export class AskStreamInterruptedError extends Error {
  readonly streamId: string;
  constructor(streamId: string) {
    super(`zena-realtime: the answer stream ${streamId} was interrupted and its missed chunks could not be recovered`);
    this.name = 'AskStreamInterruptedError';
    this.streamId = streamId;
  }
}

/** Who is in a channel: the answer to `presence()` (the server's `presence.state`). */
export interface ChannelPresence {
  channel: string;
  /** The users holding the channel; left out past the server's `presence.max_list`. */
  users?: string[];
  count: number;
}

/** Why `presence()` failed: the server's `presence.state` error (`not_subscribed`,
 * `presence_off`). */
export class PresenceError extends Error {
  readonly channel: string;
  readonly reason: string;
  constructor(channel: string, reason: string) {
    super(`zena-realtime: presence of ${channel} failed: ${reason}`);
    this.name = 'PresenceError';
    this.channel = channel;
    this.reason = reason;
  }
}

export interface OnTypingOptions {
  /** A user who sent `active: true` and nothing since is taken off the list after this long,
   * should the server's `active: false` be lost. Default 8000 ms (the server's own timeout is
   * 6 s). */
  timeoutMs?: number;
}

interface Subscription {
  /** 'client': asked for by subscribe(), subscribed again after each reconnect; 'server': a
   * subscription made by the backend, which lasts as long as the connection. */
  origin: 'client' | 'server';
  token?: TokenSource | undefined;
  retries: number;
  retryTimer?: ReturnType<typeof setTimeout> | undefined;
  /** The connection (welcome count) on which the server confirmed it (`subscribed`). */
  connection?: number | undefined;
}

interface Pending<T> {
  resolve: (value: T) => void;
  reject: (e: Error) => void;
}

// Re-subscribes that fail for these reasons are tried again later; the others are final.
const TRANSIENT_SUBSCRIBE_ERRORS = new Set<string>(['rate_limited', 'unavailable']);

type Handler = (payload: any, message: Envelope) => void;
type AnyHandler = (type: string, payload: unknown, message: Envelope) => void;

const OPEN = 1;
const TYPING_THROTTLE_MS = 1000; // at most one typing.start a second per channel
const TYPING_SAFETY_MS = 8000;
const SUBPROTOCOL = 'zena-realtime';
const SUBPROTOCOL_MSGPACK = 'zena-realtime.msgpack';
const CLOSE_DEAD = 4100; // local only: the client gave up on a silent socket

let wsPackage: Promise<WebSocketConstructor> | undefined;
async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  // Node 20 has no global WebSocket: use the `ws` package.
  wsPackage ??= import('ws').then((m) => (m.default ?? m.WebSocket) as unknown as WebSocketConstructor);
  return wsPackage;
}

export class RealtimeClient {
  private readonly options: ConnectOptions;
  private readonly backoff: Required<BackoffOptions>;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly anyHandlers = new Set<AnyHandler>();
  private readonly stateHandlers = new Set<(e: StateEvent) => void>();
  private readonly errorHandlers = new Set<(e: unknown) => void>();
  private readonly queue: { message: ClientMessage; resolve: () => void; reject: (e: Error) => void }[] = [];
  private socket: WebSocketLike | undefined;
  private codec: Codec = jsonCodec;
  private currentState: ConnectionState = 'connecting';
  private attempt = 0;
  private connections = 0;  // attempts made: the next URL of a list is urls[connections % length]
  private lastToken: string | undefined;
  private refusedToken: string | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private livenessTimer: ReturnType<typeof setInterval> | undefined;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private lastActivity = 0;
  private heartbeatMs = 30000;
  private pingSent = false;
  private stopped = false;
  private readonly store: PositionStore;
  // This client's view of the positions (null: none), written through to the store, read from it
  // only for a position to present (see presentedPosition).
  private readonly positions = new Map<string, Position | null>();
  private personalChannel: string | undefined; // user:<userId>, from the token, then the welcome
  private connection = 0; // counts welcomes
  private readonly subscriptionsByChannel = new Map<string, Subscription>();
  private readonly pendingSubscribes = new Map<string, Pending<SubscribedPayload>[]>();
  private readonly pendingUnsubscribes = new Map<string, Pending<void>[]>();
  private readonly resyncHandlers = new Set<(e: ResyncEvent) => void>();
  private readonly streamFailures = new Set<() => void>();
  // presence() requests: waiting for the channel to be held on an open connection, and sent
  // (answered in order by presence.state).
  private readonly presenceWaiting = new Map<string, Pending<ChannelPresence>[]>();
  private readonly presenceSent = new Map<string, Pending<ChannelPresence>[]>();
  // typing(): when the last typing.start went, per channel, and on which connection.
  private readonly typingSent = new Map<string, { at: number; connection: number }>();
  /** The welcome of the current connection. */
  welcome: ConnectedPayload | undefined;

  constructor(options: ConnectOptions) {
    if (Array.isArray(options.url) && options.url.length === 0) throw new TypeError('url: at least one URL');
    this.options = options;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.store = options.positions ?? memoryPositions();
    void this.open();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /**
   * The last position seen in a channel (no argument or '': the personal channel,
   * `user:<userId>`). Positions are presented on reconnect and re-subscribe, and events at or
   * before them are dropped as already seen.
   */
  position(channel = ''): Position | undefined {
    const key = channel === '' ? this.personalChannel : channel;
    const p = key === undefined ? undefined : this.getPosition(key);
    return p && { ...p };
  }

  /**
   * Subscribes to a channel (`deal:123`) and resolves with the server's `subscribed` answer, or
   * rejects with SubscribeError. The client remembers the channel and subscribes again after
   * every reconnect with its position (`since`) and the token (a token function is called
   * again), so a reconnect loses nothing. While disconnected, the subscribe goes with the next
   * connection.
   */
  subscribe(channel: string, options: SubscribeOptions = {}): Promise<SubscribedPayload> {
    if (this.stopped) return Promise.reject(new ClientClosedError());
    const entry = this.subscriptionsByChannel.get(channel);
    if (entry) {
      this.clearRetry(entry);
      entry.origin = 'client';
      entry.token = options.token;
      entry.retries = 0;
    } else {
      this.subscriptionsByChannel.set(channel, { origin: 'client', token: options.token, retries: 0 });
    }
    const answer = new Promise<SubscribedPayload>((resolve, reject) => pushTo(this.pendingSubscribes, channel, { resolve, reject }));
    if (this.isOpen()) this.sendSubscribe(channel);
    return answer;
  }

  /**
   * Leaves a channel and forgets it (and its position); resolves on the server's
   * `unsubscribed`, or at once while disconnected. A subscribe still waiting for its answer
   * rejects with SubscribeError `cancelled`.
   */
  unsubscribe(channel: string): Promise<void> {
    this.forget(channel);
    for (const p of takeFrom(this.pendingSubscribes, channel)) p.reject(new SubscribeError(channel, 'cancelled'));
    if (!this.isOpen()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      pushTo(this.pendingUnsubscribes, channel, { resolve, reject });
      this.write({ type: 'unsubscribe', payload: { channel } });
    });
  }

  /** The channels the client holds or will subscribe to again (the personal one excluded). */
  subscriptions(): string[] {
    return [...this.subscriptionsByChannel.keys()];
  }

  /**
   * Tells the channel's other users that this user is typing (`typing.start`). Call it on every
   * keystroke: at most one `typing.start` a second goes per channel, which keeps the indicator
   * on (the server turns it off 6 s after the last one). Sent only while the channel is held on
   * an open connection (subscribed and confirmed); otherwise there is no one to tell and it is
   * dropped, not queued.
   */
  typing(channel: string): void {
    if (!this.holds(channel)) return;
    const now = Date.now();
    const last = this.typingSent.get(channel);
    if (last && last.connection === this.connection && now - last.at < TYPING_THROTTLE_MS) return;
    this.typingSent.set(channel, { at: now, connection: this.connection });
    this.write({ type: 'typing.start', payload: { channel } });
  }

  /**
   * The user stopped typing (sent the message, cleared the field): `typing.stop`, so the others
   * see `active: false` at once instead of after the server's timeout. Sent only if typing()
   * sent a start on this connection since the last stop; the next typing() sends at once.
   */
  stopTyping(channel: string): void {
    const last = this.typingSent.get(channel);
    this.typingSent.delete(channel);
    if (!last || last.connection !== this.connection || !this.holds(channel)) return;
    this.write({ type: 'typing.stop', payload: { channel } });
  }

  /**
   * Who is typing in a channel: calls `handler` with the users typing (from the server's
   * `typing` events) each time the list changes. A user leaves the list on `active: false`,
   * after `timeoutMs` (8 s) without a refresh, and everyone does when the connection drops.
   * Returns a function that stops listening.
   */
  onTyping(channel: string, handler: (users: string[]) => void, options: OnTypingOptions = {}): () => void {
    const timeoutMs = options.timeoutMs ?? TYPING_SAFETY_MS;
    const typing = new Map<string, ReturnType<typeof setTimeout>>();
    const changed = () => this.call(() => handler([...typing.keys()]));
    const remove = (userId: string) => {
      const timer = typing.get(userId);
      if (timer === undefined) return false;
      clearTimeout(timer);
      typing.delete(userId);
      return true;
    };
    const offTyping = this.on('typing', (p: TypingPayload) => {
      if (p.channel !== channel || typeof p.userId !== 'string') return;
      const had = remove(p.userId);
      if (p.active) {
        typing.set(p.userId, setTimeout(() => remove(p.userId) && changed(), timeoutMs));
        if (!had) changed();
      } else if (had) {
        changed();
      }
    });
    const clear = () => {
      if (!typing.size) return;
      for (const userId of [...typing.keys()]) remove(userId);
      changed();
    };
    // A dropped connection misses the active:false of the others: nobody is typing any more.
    const offState = this.onState((e) => e.state === 'closed' && clear());
    return () => {
      offTyping();
      offState();
      for (const userId of [...typing.keys()]) remove(userId);
    };
  }

  /**
   * Who holds a channel now (`presence.get`): resolves with the server's `presence.state`
   * (`users` left out past the server's list limit), or rejects with PresenceError (`reason`
   * `not_subscribed`, `presence_off`). Sent once the channel is held on an open connection, so
   * it may be called right after subscribe(), or while reconnecting.
   */
  presence(channel: string): Promise<ChannelPresence> {
    if (this.stopped) return Promise.reject(new ClientClosedError());
    const answer = new Promise<ChannelPresence>((resolve, reject) => pushTo(this.presenceWaiting, channel, { resolve, reject }));
    this.sendPresence();
    return answer;
  }

  /**
   * The server could not give a channel's missed events (`recovered: false`, or a new epoch):
   * refetch what that channel feeds. The handler gets the channel and its new position.
   */
  onResync(handler: (e: ResyncEvent) => void): () => void {
    this.resyncHandlers.add(handler);
    return () => this.resyncHandlers.delete(handler);
  }

  /** Calls `handler` for each event of `type`; returns a function that removes it. */
  on<K extends keyof ServerEvents>(type: K, handler: (payload: ServerEvents[K], message: Envelope<ServerEvents[K]>) => void): () => void;
  on(type: string, handler: (payload: unknown, message: Envelope) => void): () => void;
  on(type: string, handler: Handler): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  /** Calls `handler` for every message, known type or not (the catch-all). */
  onAny(handler: AnyHandler): () => void {
    this.anyHandlers.add(handler);
    return () => this.anyHandlers.delete(handler);
  }

  /** Connection state changes, for the UI. */
  onState(handler: (e: StateEvent) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** Errors that never reach the caller otherwise: a handler that threw, a message that is not JSON. */
  onError(handler: (e: unknown) => void): () => void {
    this.errorHandlers.add(handler);
    return () => this.errorHandlers.delete(handler);
  }

  /**
   * Sends a client event. While disconnected it waits in a bounded queue and goes, in order,
   * once the connection is back; resolves when handed to the socket. Rejects with
   * SendQueueFullError when the queue is full, ClientClosedError after close().
   */
  send<K extends keyof ClientEvents>(type: K, payload: ClientEvents[K]): Promise<void> {
    return this.sendRaw({ type, payload });
  }

  /**
   * The chunks of one Ask Zena answer (`ask.response` with this `streamId`), ending at
   * `isComplete`. It keeps listening across reconnects: the chunks missed meanwhile are replayed
   * by the server and duplicates are dropped by position. If the personal channel cannot be
   * recovered (a resync), it throws AskStreamInterruptedError after the chunks it has.
   */
  stream(streamId: string): AsyncIterableIterator<AskResponsePayload> {
    const buffered: AskResponsePayload[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let interrupted = false;
    const offChunks = this.on('ask.response', (payload) => {
      if (payload.streamId !== streamId || finished) return;
      buffered.push(payload);
      if (payload.isComplete || payload.error) finished = true;
      wake?.();
    });
    const fail = () => {
      if (finished) return;
      finished = true;
      interrupted = true;
      wake?.();
    };
    this.streamFailures.add(fail);
    const off = () => {
      offChunks();
      this.streamFailures.delete(fail);
    };
    let done = false;
    const iterator: AsyncIterableIterator<AskResponsePayload> = {
      next: async () => {
        while (!done) {
          const chunk = buffered.shift();
          if (!chunk && interrupted) {
            done = true;
            off();
            throw new AskStreamInterruptedError(streamId);
          }
          if (chunk) {
            if (chunk.error) {
              done = true;
              off();
              throw new AskStreamError(chunk);
            }
            if (chunk.isComplete) {
              done = true;
              off();
            }
            return { value: chunk, done: false };
          }
          await new Promise<void>((resolve) => { wake = resolve; });
          wake = undefined;
        }
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        off();
        wake?.();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * Asks Zena: picks a stream id, listens for its chunks, then calls `start(streamId)` (your
   * request to the backend, which streams the answer with that id), so no chunk can be missed.
   */
  ask(start: (streamId: string) => unknown): AsyncIterableIterator<AskResponsePayload> {
    const streamId = `ask-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const chunks = this.stream(streamId);
    Promise.resolve()
      .then(() => start(streamId))
      .catch((e) => this.reportError(e));
    return chunks;
  }

  /** Reconnects now (for instance with a new token after `unauthorized`). */
  reconnect(): void {
    if (this.stopped) return;
    this.clearTimer('reconnectTimer');
    this.attempt = 0;
    if (this.socket) {
      const s = this.socket;
      this.detach();
      s.close(1000, 'reconnecting');
      this.connectionEnded();
    }
    void this.open();
  }

  /** Closes for good: no reconnect; queued sends are rejected. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer('reconnectTimer');
    this.clearTimer('stableTimer');
    this.clearTimer('refreshTimer');
    this.stopLiveness();
    for (const item of this.queue.splice(0)) item.reject(new ClientClosedError());
    const s = this.socket;
    this.detach();
    s?.close(1000, 'client closed');
    this.connectionEnded();
    this.rejectPendingSubscribes();
    this.rejectPresence();
    this.setState({ state: 'closed', code: 1000, reason: 'client closed', willReconnect: false });
  }

  /** Writes one message on the open socket, in the connection's format. */
  private write(message: ClientMessage): void {
    this.socket!.send(this.codec.encode(message));
  }

  private sendRaw(message: ClientMessage): Promise<void> {
    if (this.stopped) return Promise.reject(new ClientClosedError());
    if (this.currentState === 'open' && this.socket?.readyState === OPEN && this.queue.length === 0) {
      this.write(message);
      return Promise.resolve();
    }
    const limit = this.options.maxQueuedSends ?? 100;
    if (this.queue.length >= limit) return Promise.reject(new SendQueueFullError(limit));
    return new Promise((resolve, reject) => this.queue.push({ message, resolve, reject }));
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState({ state: 'connecting', attempt: this.attempt });
    let token: string;
    let WebSocketImpl: WebSocketConstructor;
    try {
      const source = this.options.token;
      token = typeof source === 'function' ? await source() : source;
      WebSocketImpl = this.options.WebSocket ?? (await defaultWebSocket());
      if (this.options.format === 'msgpack') this.codec = await loadMsgpack();
    } catch (e) {
      this.reportError(e);
      return this.scheduleReconnect();
    }
    if (this.stopped) return;
    if (token === this.refusedToken) {
      // The server refused this token; retrying with it cannot work.
      this.currentState = 'unauthorized';
      this.setState({ state: 'unauthorized', code: CLOSE_CODE.policyViolation, reason: 'the token was refused; waiting for a new one' });
      return;
    }
    this.lastToken = token;
    const urls = Array.isArray(this.options.url) ? this.options.url : [this.options.url];
    const url = new URL(urls[this.connections++ % urls.length] as string);
    const viaQuery = this.options.tokenTransport === 'query';
    if (viaQuery) url.searchParams.set('token', token);
    // The personal channel's position: on the first connection of a page, the user comes from
    // the token (a reload resumes), later from the welcome.
    const claim = tokenClaim(token, this.options.userClaim ?? 'sub');
    if (typeof claim === 'string' && claim !== '') this.personalChannel = `user:${claim}`;
    const personal = this.personalChannel === undefined ? undefined : this.presentedPosition(this.personalChannel);
    if (personal) url.searchParams.set('since', formatPosition(personal));
    const msgpack = this.options.format === 'msgpack';
    const protocols = [msgpack ? SUBPROTOCOL_MSGPACK : SUBPROTOCOL];
    if (!viaQuery) protocols.push(`bearer.${token}`);
    // JSON with the token in the query offers no subprotocol, as before.
    const socket = viaQuery && !msgpack ? new WebSocketImpl(url.toString()) : new WebSocketImpl(url.toString(), protocols);
    if (msgpack) socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onmessage = (ev) => this.onMessage(ev.data);
    socket.onclose = (ev) => this.onClose(ev.code, ev.reason);
    socket.onerror = () => {}; // a close follows, with the code
    socket.on?.('ping', () => this.touch());
  }

  private onMessage(data: unknown): void {
    this.touch();
    let message: Envelope;
    try {
      message = this.codec.decode(data) as Envelope;
      if (typeof message?.type !== 'string') throw new Error('message without a type');
    } catch (e) {
      return this.reportError(e);
    }
    if (message.type === 'connected') return this.onWelcome(message.payload as ConnectedPayload);
    if (message.type === 'pong') return;
    const payload = (message.payload ?? {}) as Record<string, unknown>;
    if (typeof payload.channel === 'string') {
      if (message.type === 'subscribed') this.onSubscribed(payload as SubscribedPayload);
      else if (message.type === 'subscribe.error') this.onSubscribeError(payload as SubscribeErrorPayload);
      else if (message.type === 'unsubscribed') this.onUnsubscribed(payload as UnsubscribedPayload);
      else if (message.type === 'presence.state') this.onPresenceState(payload as PresenceStatePayload);
    }
    if (typeof message.seq === 'number' && typeof message.epoch === 'string') {
      // An event without `channel` (a server before channels) is the personal channel's.
      const channel = typeof message.channel === 'string' ? message.channel : this.personalChannel;
      if (channel !== undefined) {
        const p = this.getPosition(channel);
        if (p && p.epoch === message.epoch && message.seq <= p.seq) return; // seen already (a replay)
        const now = { epoch: message.epoch, seq: message.seq };
        this.setPosition(channel, now);
        // A new epoch: the server lost this channel's history. This connection got every live
        // event, but what the app derived from the old numbering must be refetched.
        if (p && p.epoch !== message.epoch) this.emitResync(channel, now, false);
      }
    }
    for (const handler of this.handlers.get(message.type) ?? []) this.call(() => handler(message.payload, message));
    for (const handler of this.anyHandlers) this.call(() => handler(message.type, message.payload, message));
  }

  private onWelcome(welcome: ConnectedPayload): void {
    this.welcome = welcome;
    this.connection += 1;
    this.personalChannel = typeof welcome.channel === 'string' && welcome.channel !== '' ? welcome.channel : `user:${welcome.userId}`;
    this.heartbeatMs = welcome.heartbeatIntervalMs > 0 ? welcome.heartbeatIntervalMs : 30000;
    this.refusedToken = undefined;
    this.currentState = 'open';
    this.setState({ state: 'open', welcome });
    this.clearTimer('stableTimer');
    this.stableTimer = setTimeout(() => { this.attempt = 0; }, this.backoff.stableMs);
    this.startLiveness();
    this.scheduleRefresh(this.lastToken);
    this.takeAnswer(this.personalChannel, welcome);
    for (const item of this.queue.splice(0)) {
      this.write(item.message);
      item.resolve();
    }
    // Subscribe again to the channels the application asked for, each from its position. The
    // backend's own subscriptions are not: the backend makes them again.
    for (const [channel, entry] of this.subscriptionsByChannel) if (entry.origin === 'client') this.sendSubscribe(channel);
    this.sendPresence();
  }

  // What the welcome or a `subscribed` says about a channel's position.
  private takeAnswer(channel: string, answer: { epoch?: string | null; seq?: number | null; recovered?: boolean | null }): void {
    if (typeof answer.epoch !== 'string' || typeof answer.seq !== 'number') {
      // No position: a server without history, or one whose engine could not tell it. The
      // position presented is kept for the next connection, but what it missed is lost to the
      // application meanwhile when the answer says so.
      const kept = this.getPosition(channel);
      if (answer.recovered === false && kept !== undefined) this.emitResync(channel, kept, true);
      return;
    }
    if (answer.recovered === true) return; // the missed events follow and advance the position
    const now = { epoch: answer.epoch, seq: answer.seq };
    const before = this.getPosition(channel);
    this.setPosition(channel, now);
    // recovered: false, or no position presented although one is stored (an unreadable token
    // before the first welcome, a subscription the backend made again) and the channel moved
    // on: events were missed. No stored position at all (a first connection): nothing to refetch.
    const moved = before !== undefined && (before.epoch !== now.epoch || before.seq !== now.seq);
    if (answer.recovered === false || moved) this.emitResync(channel, now, true);
  }

  private emitResync(channel: string, position: Position, lost: boolean): void {
    // Chunks of an answer may be among what was lost: its stream cannot complete truthfully.
    if (lost && channel === this.personalChannel) for (const fail of [...this.streamFailures]) fail();
    const event: ResyncEvent = { channel, epoch: position.epoch, seq: position.seq };
    for (const handler of this.resyncHandlers) this.call(() => handler(event));
  }

  private onSubscribed(answer: SubscribedPayload): void {
    const { channel } = answer;
    // An answer to a subscribe that unsubscribe() cancelled; the `unsubscribed` follows.
    if (this.pendingUnsubscribes.has(channel)) return;
    let entry = this.subscriptionsByChannel.get(channel);
    if (!entry) this.subscriptionsByChannel.set(channel, (entry = { origin: 'server', retries: 0 }));
    this.clearRetry(entry);
    entry.retries = 0;
    entry.connection = this.connection;
    this.takeAnswer(channel, answer);
    for (const p of takeFrom(this.pendingSubscribes, channel)) p.resolve(answer);
    this.sendPresence();
  }

  // Whether the channel can take presence.get and typing.start now: an open connection, and the
  // channel held on it (a subscription the server confirmed on this connection).
  private holds(channel: string): boolean {
    return this.isOpen() && this.subscriptionsByChannel.get(channel)?.connection === this.connection;
  }

  // Sends the waiting presence requests whose channel is ready: held on this connection, or not
  // subscribed at all (the server answers not_subscribed). A subscription not yet confirmed on
  // this connection (being made, or made again after a reconnect) is waited for.
  private sendPresence(): void {
    if (!this.isOpen()) return;
    for (const [channel, waiting] of [...this.presenceWaiting]) {
      const entry = this.subscriptionsByChannel.get(channel);
      if (entry && entry.connection !== this.connection) continue;
      this.presenceWaiting.delete(channel);
      for (const p of waiting) {
        pushTo(this.presenceSent, channel, p);
        this.write({ type: 'presence.get', payload: { channel } });
      }
    }
  }

  private onPresenceState(state: PresenceStatePayload): void {
    const { channel } = state;
    const sent = this.presenceSent.get(channel);
    const p = sent?.shift();
    if (sent && !sent.length) this.presenceSent.delete(channel);
    if (!p) return;
    if (typeof state.error === 'string') return p.reject(new PresenceError(channel, state.error));
    const answer: ChannelPresence = { channel, count: 0 };
    if (Array.isArray(state.users)) answer.users = [...state.users];
    answer.count = typeof state.count === 'number' ? state.count : (answer.users?.length ?? 0);
    p.resolve(answer);
  }

  private rejectPresence(): void {
    for (const map of [this.presenceSent, this.presenceWaiting]) {
      for (const list of map.values()) for (const p of list) p.reject(new ClientClosedError());
      map.clear();
    }
  }

  private onSubscribeError({ channel, reason }: SubscribeErrorPayload): void {
    if (this.pendingUnsubscribes.has(channel)) return;
    this.subscribeFailed(channel, new SubscribeError(channel, reason), TRANSIENT_SUBSCRIBE_ERRORS.has(reason));
  }

  // A subscribe failed. The caller of subscribe() gets the error and the channel is forgotten;
  // a re-subscribe after a reconnect is tried again later if the cause may pass, and is
  // otherwise forgotten and reported to onError.
  private subscribeFailed(channel: string, error: Error, transient: boolean): void {
    const entry = this.subscriptionsByChannel.get(channel);
    const callers = takeFrom(this.pendingSubscribes, channel);
    if (callers.length) {
      if (entry) this.forget(channel, false);
      for (const p of callers) p.reject(error);
      return;
    }
    if (!entry || entry.origin !== 'client') return;
    if (transient) return this.scheduleRetry(channel, entry);
    this.forget(channel, false);
    this.reportError(error);
  }

  private onUnsubscribed({ channel, reason }: UnsubscribedPayload): void {
    const waiting = this.pendingUnsubscribes.get(channel);
    if (reason == null && waiting?.length) {
      waiting.shift()!.resolve();
      if (!waiting.length) this.pendingUnsubscribes.delete(channel);
      return;
    }
    this.forget(channel); // removed by the backend
  }

  private sendSubscribe(channel: string): void {
    const entry = this.subscriptionsByChannel.get(channel);
    if (!entry || entry.origin !== 'client') return;
    const connection = this.connection;
    const send = (token: string | undefined) => {
      // Superseded: the connection changed (its welcome subscribes again) or the channel was left.
      if (this.connection !== connection || !this.isOpen() || this.subscriptionsByChannel.get(channel) !== entry) return;
      const payload: SubscribePayload = { channel };
      const since = this.presentedPosition(channel);
      if (since) payload.since = formatPosition(since);
      if (token !== undefined) payload.token = token;
      this.write({ type: 'subscribe', payload });
    };
    const source = entry.token;
    if (typeof source !== 'function') return send(source);
    Promise.resolve()
      .then(source)
      .then(send, (e: unknown) => {
        if (this.subscriptionsByChannel.get(channel) !== entry) return;
        // No caller to tell (a re-subscribe): report it; the subscribe is tried again later.
        if (!this.pendingSubscribes.has(channel)) this.reportError(e);
        this.subscribeFailed(channel, e instanceof Error ? e : new Error(String(e)), true);
      })
      .catch((e: unknown) => this.reportError(e));
  }

  private scheduleRetry(channel: string, entry: Subscription): void {
    this.clearRetry(entry);
    const delay = backoffDelay(entry.retries, this.backoff, this.random());
    entry.retries += 1;
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (this.subscriptionsByChannel.get(channel) === entry && this.isOpen()) this.sendSubscribe(channel);
    }, delay);
  }

  private clearRetry(entry: Subscription): void {
    if (entry.retryTimer !== undefined) clearTimeout(entry.retryTimer);
    entry.retryTimer = undefined;
  }

  // Stops tracking a channel; with `position`, its position too (a later subscribe starts afresh).
  private forget(channel: string, position = true): void {
    const entry = this.subscriptionsByChannel.get(channel);
    if (entry) this.clearRetry(entry);
    this.subscriptionsByChannel.delete(channel);
    this.typingSent.delete(channel);
    if (position) this.deletePosition(channel);
    if (this.presenceWaiting.has(channel)) queueMicrotask(() => this.sendPresence());
  }

  // The connection is gone, and with it the subscriptions it held: the backend's are forgotten,
  // the application's wait for the next welcome, and unsubscribes are done.
  private connectionEnded(): void {
    for (const [channel, entry] of [...this.subscriptionsByChannel]) {
      this.clearRetry(entry);
      if (entry.origin === 'server') this.subscriptionsByChannel.delete(channel);
    }
    for (const list of this.pendingUnsubscribes.values()) for (const p of list) p.resolve();
    this.pendingUnsubscribes.clear();
    // Presence requests the connection did not answer are asked again on the next one.
    for (const [channel, sent] of this.presenceSent) this.presenceWaiting.set(channel, [...sent, ...(this.presenceWaiting.get(channel) ?? [])]);
    this.presenceSent.clear();
    this.typingSent.clear();
  }

  private rejectPendingSubscribes(): void {
    for (const list of this.pendingSubscribes.values()) for (const p of list) p.reject(new ClientClosedError());
    this.pendingSubscribes.clear();
  }

  private isOpen(): boolean {
    return this.currentState === 'open' && this.socket?.readyState === OPEN;
  }

  // This client's view of a channel's position: what it has seen or presented.
  private getPosition(channel: string): Position | undefined {
    return this.positions.get(channel) ?? undefined;
  }

  // The position to present as `since`: this client's view, else the store's (a reload), which
  // then becomes the view. Read from the store only here, so that clients sharing a store (tabs
  // on one localStorage) never drop events because another one saw them.
  private presentedPosition(channel: string): Position | undefined {
    let p = this.positions.get(channel);
    if (p === undefined) {
      try {
        p = validPosition(this.store.get(channel)) ?? null;
      } catch (e) {
        this.reportError(e);
        p = null;
      }
      this.positions.set(channel, p);
    }
    return p ?? undefined;
  }

  private setPosition(channel: string, position: Position): void {
    this.positions.set(channel, position);
    try {
      this.store.set(channel, position);
    } catch (e) {
      this.reportError(e);
    }
  }

  private deletePosition(channel: string): void {
    this.positions.set(channel, null);
    try {
      this.store.delete(channel);
    } catch (e) {
      this.reportError(e);
    }
  }

  // Tokens expire during long connections; the server closes at `exp` (1008) unless it got a
  // fresh one in-band. With a token function, ask for one ahead of time and send it.
  private scheduleRefresh(token: string | undefined): void {
    this.clearTimer('refreshTimer');
    const source = this.options.token;
    const exp = token ? tokenExpiry(token) : undefined;
    if (typeof source !== 'function' || exp === undefined) return;
    const left = exp * 1000 - Date.now();
    const lead = Math.min(this.options.refreshBeforeMs ?? 60000, left / 2);
    this.refreshTimer = setTimeout(async () => {
      this.refreshTimer = undefined;
      try {
        const fresh = await source();
        if (fresh === this.lastToken || this.currentState !== 'open' || this.socket?.readyState !== OPEN) return;
        this.lastToken = fresh;
        this.write({ type: 'auth.refresh', payload: { token: fresh } });
        this.scheduleRefresh(fresh);
      } catch (e) {
        this.reportError(e);
      }
    }, Math.max(0, left - lead));
  }

  private onClose(code: number, reason: string): void {
    this.detach();
    this.clearTimer('refreshTimer');
    this.stopLiveness();
    this.clearTimer('stableTimer');
    if (this.stopped) return;
    this.connectionEnded();
    const info = closeCodeInfo(code);
    if (code === CLOSE_CODE.policyViolation || code === CLOSE_CODE.disconnected) {
      // Refused or revoked token: reconnect only with a new one.
      this.refusedToken = this.lastToken;
      this.setState({ state: 'closed', code, reason, willReconnect: typeof this.options.token === 'function' });
      if (typeof this.options.token === 'function') return this.scheduleReconnect();
      this.currentState = 'unauthorized';
      this.setState({ state: 'unauthorized', code, reason });
      return;
    }
    if (info && !info.reconnect) {
      this.setState({ state: 'closed', code, reason, willReconnect: false });
      this.stopped = true;
      for (const item of this.queue.splice(0)) item.reject(new ClientClosedError());
      this.rejectPendingSubscribes();
      this.rejectPresence();
      return;
    }
    this.setState({ state: 'closed', code, reason, willReconnect: true });
    // Going away (a restart): come back soon, spread over a second, without growing the backoff.
    if (code === CLOSE_CODE.goingAway) return this.scheduleReconnect(Math.round(1000 * this.random()));
    this.scheduleReconnect();
  }

  private scheduleReconnect(delayMs?: number): void {
    if (this.stopped) return;
    const delay = delayMs ?? backoffDelay(this.attempt, this.backoff, this.random());
    const attempt = this.attempt;
    if (delayMs === undefined) this.attempt += 1;
    this.currentState = 'reconnecting';
    this.setState({ state: 'reconnecting', delayMs: delay, attempt });
    this.clearTimer('reconnectTimer');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delay);
  }

  // Liveness: browsers cannot see protocol pings, so when nothing has arrived for a heartbeat
  // interval the client sends `ping` and the server answers `pong`. Nothing at all for
  // `livenessIntervals` intervals: the socket is dead, whatever the OS thinks.
  private startLiveness(): void {
    this.stopLiveness();
    this.touch();
    const tick = Math.max(50, Math.floor(this.heartbeatMs / 4));
    this.livenessTimer = setInterval(() => {
      const silent = Date.now() - this.lastActivity;
      if (silent >= this.heartbeatMs * (this.options.livenessIntervals ?? 2)) {
        const s = this.socket;
        this.detach();
        s?.close(1000, 'no sign of life');
        this.onClose(CLOSE_DEAD, 'no message or ping within the liveness window');
        return;
      }
      if (silent >= this.heartbeatMs && !this.pingSent && this.socket?.readyState === OPEN) {
        this.pingSent = true;
        this.write({ type: 'ping', payload: {} });
      }
    }, tick);
  }

  private stopLiveness(): void {
    if (this.livenessTimer !== undefined) clearInterval(this.livenessTimer);
    this.livenessTimer = undefined;
  }

  private touch(): void {
    this.lastActivity = Date.now();
    this.pingSent = false;
  }

  private detach(): void {
    const s = this.socket;
    if (!s) return;
    s.onmessage = null;
    s.onclose = null;
    s.onopen = null;
    this.socket = undefined;
  }

  private setState(event: StateEvent): void {
    if (event.state !== 'closed') this.currentState = event.state;
    else if (!event.willReconnect) this.currentState = 'closed';
    for (const handler of this.stateHandlers) this.call(() => handler(event));
  }

  private clearTimer(name: 'reconnectTimer' | 'stableTimer' | 'refreshTimer'): void {
    const t = this[name];
    if (t !== undefined) clearTimeout(t);
    this[name] = undefined;
  }

  private random(): number {
    return (this.options.random ?? Math.random)();
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.reportError(e);
    }
  }

  private reportError(e: unknown): void {
    if (this.errorHandlers.size === 0) {
      console.error('zena-realtime:', e);
      return;
    }
    for (const handler of this.errorHandlers) {
      try {
        handler(e);
      } catch {
        // an error handler that throws has nowhere left to report to
      }
    }
  }
}

/** A claim of a JWT, read without checking the token: only to know when to refresh, and whose
 * personal channel to resume. */
function tokenClaim(token: string, name: string): unknown {
  try {
    const part = token.split('.')[1];
    if (!part) return undefined;
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json) as unknown;
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>)[name] : undefined;
  } catch {
    return undefined;
  }
}

/** The `exp` claim of a JWT (seconds). */
function tokenExpiry(token: string): number | undefined {
  const exp = tokenClaim(token, 'exp');
  return typeof exp === 'number' ? exp : undefined;
}

function formatPosition(p: Position): string {
  return `${p.epoch}:${p.seq}`;
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function takeFrom<T>(map: Map<string, T[]>, key: string): T[] {
  const list = map.get(key) ?? [];
  map.delete(key);
  return list;
}

/** Connects to the gateway (and keeps reconnecting); see ConnectOptions. */
export function connect(options: ConnectOptions): RealtimeClient {
  return new RealtimeClient(options);
}
