// The Zena Realtime client: one WebSocket to the gateway, typed events from the catalog,
// reconnect with backoff, a bounded send queue, liveness checks, Ask Zena streams and resume
// positions. Works in browsers (global WebSocket) and in Node 20 (the `ws` package).

import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import type { AskResponsePayload, ClientEvents, ConnectedPayload, ServerEvents } from './catalog.generated.js';
import { CLOSE_CODE, closeCodeInfo } from './close_codes.js';

/** The part of the WebSocket API the client uses (browsers' WebSocket and `ws` both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
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
  /** The gateway's WebSocket URL, e.g. `wss://realtime.example.com/ws`. */
  url: string;
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

/** A position in a channel's event sequence (the server's epoch and sequence number). */
export interface Position {
  epoch: string;
  seq: number;
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

type Handler = (payload: any, message: Envelope) => void;
type AnyHandler = (type: string, payload: unknown, message: Envelope) => void;

const OPEN = 1;
const SUBPROTOCOL = 'zena-realtime';
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
  private readonly queue: { data: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private socket: WebSocketLike | undefined;
  private currentState: ConnectionState = 'connecting';
  private attempt = 0;
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
  private readonly positions = new Map<string, Position>(); // by channel; '' is the personal one
  /** The welcome of the current connection. */
  welcome: ConnectedPayload | undefined;

  constructor(options: ConnectOptions) {
    this.options = options;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    void this.open();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /**
   * The last position seen in a channel (from events carrying `epoch` and `seq`; '' or no
   * argument: the personal channel). The personal channel's is presented on reconnect, and
   * events at or before it are dropped as already seen.
   */
  position(channel = ''): Position | undefined {
    return this.positions.get(channel);
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
    return this.sendRaw(JSON.stringify({ type, payload }));
  }

  /** The chunks of one Ask Zena answer (`ask.response` with this `streamId`), ending at `isComplete`. */
  stream(streamId: string): AsyncIterableIterator<AskResponsePayload> {
    const buffered: AskResponsePayload[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const off = this.on('ask.response', (payload) => {
      if (payload.streamId !== streamId || finished) return;
      buffered.push(payload);
      if (payload.isComplete || payload.error) finished = true;
      wake?.();
    });
    let done = false;
    const iterator: AsyncIterableIterator<AskResponsePayload> = {
      next: async () => {
        while (!done) {
          const chunk = buffered.shift();
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
    this.setState({ state: 'closed', code: 1000, reason: 'client closed', willReconnect: false });
  }

  private sendRaw(data: string): Promise<void> {
    if (this.stopped) return Promise.reject(new ClientClosedError());
    if (this.currentState === 'open' && this.socket?.readyState === OPEN && this.queue.length === 0) {
      this.socket.send(data);
      return Promise.resolve();
    }
    const limit = this.options.maxQueuedSends ?? 100;
    if (this.queue.length >= limit) return Promise.reject(new SendQueueFullError(limit));
    return new Promise((resolve, reject) => this.queue.push({ data, resolve, reject }));
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
    const url = new URL(this.options.url);
    const viaQuery = this.options.tokenTransport === 'query';
    if (viaQuery) url.searchParams.set('token', token);
    const personal = this.positions.get('');
    if (personal) url.searchParams.set('since', `${personal.epoch}:${personal.seq}`);
    const socket = viaQuery ? new WebSocketImpl(url.toString()) : new WebSocketImpl(url.toString(), [SUBPROTOCOL, `bearer.${token}`]);
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
      message = JSON.parse(typeof data === 'string' ? data : String(data)) as Envelope;
      if (typeof message?.type !== 'string') throw new Error('message without a type');
    } catch (e) {
      return this.reportError(e);
    }
    if (message.type === 'connected') return this.onWelcome(message.payload as ConnectedPayload);
    if (message.type === 'pong') return;
    if (typeof message.seq === 'number' && typeof message.epoch === 'string') {
      const channel = typeof message.channel === 'string' && !this.isPersonal(message.channel) ? message.channel : '';
      const p = this.positions.get(channel);
      if (p && p.epoch === message.epoch && message.seq <= p.seq) return; // seen before a reconnect
      this.positions.set(channel, { epoch: message.epoch, seq: message.seq });
    }
    for (const handler of this.handlers.get(message.type) ?? []) this.call(() => handler(message.payload, message));
    for (const handler of this.anyHandlers) this.call(() => handler(message.type, message.payload, message));
  }

  private isPersonal(channel: string): boolean {
    return this.welcome !== undefined && channel === `user:${this.welcome.userId}`;
  }

  private onWelcome(welcome: ConnectedPayload): void {
    this.welcome = welcome;
    this.heartbeatMs = welcome.heartbeatIntervalMs > 0 ? welcome.heartbeatIntervalMs : 30000;
    this.refusedToken = undefined;
    this.currentState = 'open';
    this.setState({ state: 'open', welcome });
    this.clearTimer('stableTimer');
    this.stableTimer = setTimeout(() => { this.attempt = 0; }, this.backoff.stableMs);
    this.startLiveness();
    this.scheduleRefresh(this.lastToken);
    for (const item of this.queue.splice(0)) {
      this.socket!.send(item.data);
      item.resolve();
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
        this.socket.send(JSON.stringify({ type: 'auth.refresh', payload: { token: fresh } }));
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
        this.socket.send('{"type":"ping","payload":{}}');
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

/** The `exp` claim of a JWT (seconds), read without checking it: only to know when to refresh. */
function tokenExpiry(token: string): number | undefined {
  try {
    const part = token.split('.')[1];
    if (!part) return undefined;
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** Connects to the gateway (and keeps reconnecting); see ConnectOptions. */
export function connect(options: ConnectOptions): RealtimeClient {
  return new RealtimeClient(options);
}
