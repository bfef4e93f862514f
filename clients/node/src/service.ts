// The backend's side: publish to users and channels through the gateway's server API (or
// through Redis), with the seed's websocketService method names. Publishes issued in the same
// tick are coalesced into one POST /api/batch; requests go one after another on a keep-alive
// connection, so events published one after the other reach a user in that order. Channel
// history, server-side subscriptions (docs/channels.md) and presence (docs/presence.md) are HTTP
// calls.

import { randomUUID } from 'node:crypto';

import type { PublishableEvents } from './catalog.generated.js';

export type EventType = keyof PublishableEvents & string;

/** The part of a Redis client the publisher uses (node-redis and ioredis both have it). */
export interface RedisPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

export interface RealtimeServiceOptions {
  /** The gateway's base URL, e.g. `http://realtime.internal:3000`. Needed for counts and HTTP publishing. */
  url?: string;
  /** The server API key (`ZENA_API_KEY`). */
  apiKey?: string;
  /** Publish through Redis instead of HTTP: a connected client, and the channel (default `zena:publish`). */
  redis?: { client: RedisPublisher; channel?: string };
  /** Retries of a request that failed on the network or got 502/503/504. Default 3. */
  maxRetries?: number;
  /**
   * Over HTTP, give each publish an idempotency key of its own (a random UUID) unless it has
   * one, so that a retry of a publish the server may have applied (a lost answer, a 503 "may
   * have been applied") is answered as a duplicate instead of delivered twice. Default true.
   */
  idempotencyKeys?: boolean;
  /** First retry delay, doubled each time. Default 100 ms. */
  retryDelayMs?: number;
  /** Time allowed for one request. Default 10000 ms. */
  timeoutMs?: number;
  /** Largest batch sent in one request (the server's `http.max_batch_items`). Default 1000. */
  maxBatchItems?: number;
}

/** The server refused a publish or a call: its status, message, and the field and event at fault. */
export class RealtimeError extends Error {
  readonly status: number;
  readonly field: string | undefined;
  readonly event: string | undefined;
  constructor(status: number, message: string, field?: string, event?: string) {
    super(`zena-realtime refused (${status}): ${message}${field ? ` [field ${field}]` : ''}${event ? ` [event ${event}]` : ''}`);
    this.name = 'RealtimeError';
    this.status = status;
    this.field = field;
    this.event = event;
  }
}

/** Per publish. */
export interface PublishOptions {
  /**
   * Published at most once per channel within the server's `engine.idempotency_window_ms`
   * (a minute): a backend that may send the same event again (a job run twice) passes an id of
   * the event. 1-128 bytes of letters, digits and - _ . : @ = + /. Without it, the service makes
   * one (idempotencyKeys).
   */
  idempotencyKey?: string;
}

export interface PublishResult {
  /** Connections the event was queued to (a broadcast to everyone: the connections on the node
   * when it was published); null when published through Redis (not known). */
  delivered: number | null;
  /** The channel it was published to (a personal channel `user:<id>` for one user). Over HTTP,
   * when the server says: `publish`, and `broadcastToUser`. */
  channel?: string;
  /** The event's position in that channel; absent for an ephemeral event (not stored). */
  epoch?: string;
  seq?: number;
  /** True when the server had already published this idempotency key on every target (this
   * was a retry): nothing was delivered now, and the position is the first publish's. */
  duplicate?: boolean;
}

/** `since` for history: `<epoch>:<seq>` as the client writes it, or a position. */
export type HistorySince = string | { epoch: string; seq: number };

export interface HistoryOptions {
  /** Events after this position; without it, the oldest kept events. */
  since?: HistorySince;
  /** At most this many events, 1–1000 (server default 100). */
  limit?: number;
}

/** One stored event of a channel's history. */
export type HistoryEvent = { [K in EventType]: { type: K; payload: PublishableEvents[K]; seq: number } }[EventType];

export interface HistoryPage {
  channel: string;
  /** The channel's epoch and its newest seq. */
  epoch: string;
  seq: number;
  /** False when `since` could not be served (older than the history, another epoch, ahead):
   * the events are then the oldest kept ones. */
  recovered: boolean;
  /** In order; page on by calling again with the last event's seq as `since`. */
  events: HistoryEvent[];
}

export interface SubscriptionResult {
  userId: string;
  channel: string;
  /** How many of the user's connections were subscribed (or removed). */
  connections: number;
}

/** A user's presence (GET /api/presence). */
export interface UserPresence {
  /** Connected, or disconnected for less than the server's `presence.offline_grace_ms`. */
  online: boolean;
  /** The user's connections now (0 within the grace period). */
  connections?: number;
  /** When the user's last connection closed (Unix ms); absent for a user the server has not
   * seen since it started. */
  lastSeen?: number;
}

/** Who holds a channel (GET /api/channels/{channel}/presence). */
export interface ChannelPresence {
  channel: string;
  /** The users; left out past the server's `presence.max_list`. */
  users?: string[];
  count: number;
}

interface Item {
  body: Record<string, unknown>;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RETRYABLE_STATUS = new Set([502, 503, 504]);
const MAX_PRESENCE_IDS = 1000; // the server's limit per GET /api/presence

export class RealtimeService {
  private readonly options: RealtimeServiceOptions;
  private pending: Item[] = [];
  private flushScheduled = false;
  private sending = false;
  private closed = false;

  constructor(options: RealtimeServiceOptions) {
    if (!options.redis && !options.url) throw new Error('zena-realtime: give url (and apiKey), or redis');
    this.options = options;
  }

  /** The seed's broadcastToUser: every connection of one user. */
  broadcastToUser<K extends EventType>(userId: string, type: K, payload: PublishableEvents[K], options?: PublishOptions): Promise<PublishResult> {
    return this.enqueue({ userId, type, payload }, options);
  }

  /** The seed's broadcastToUsers: every connection of each user, once per user. */
  broadcastToUsers<K extends EventType>(userIds: readonly string[], type: K, payload: PublishableEvents[K], options?: PublishOptions): Promise<PublishResult> {
    return this.enqueue({ userIds: [...userIds], type, payload }, options);
  }

  /** Every connection of every user. Announcements travel on no channel: not stored, not
   * recovered after a reconnect. */
  broadcastToAll<K extends EventType>(type: K, payload: PublishableEvents[K], options?: PublishOptions): Promise<PublishResult> {
    return this.enqueue({ all: true, type, payload }, options);
  }

  /**
   * Publishes to a channel (`deal:123`): every connection subscribed to it. Stored in the
   * channel's history (unless ephemeral), so subscribers that reconnect get it. Coalesced and
   * ordered with the other publishes; alone in its tick it is a POST /api/publish.
   */
  publish<K extends EventType>(channel: string, type: K, payload: PublishableEvents[K], options?: PublishOptions): Promise<PublishResult> {
    return this.enqueue({ channel, type, payload }, options);
  }

  /** A page of a channel's stored events (GET /api/channels/{channel}/history). HTTP only. */
  async history(channel: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    const query = new URLSearchParams();
    const { since, limit } = options;
    if (since !== undefined) query.set('since', typeof since === 'string' ? since : `${since.epoch}:${since.seq}`);
    if (limit !== undefined) query.set('limit', String(limit));
    const qs = query.toString();
    const body = await this.request('GET', `/api/channels/${segment(channel)}/history${qs ? `?${qs}` : ''}`);
    return body as HistoryPage;
  }

  /** Subscribes every current connection of a user to a channel (each gets `subscribed`); for
   * the connections' lives. HTTP only. */
  async subscribeUser(userId: string, channel: string): Promise<SubscriptionResult> {
    const body = await this.request('POST', `/api/users/${segment(userId)}/subscriptions`, { channel });
    return body as SubscriptionResult;
  }

  /** Removes a channel from every connection of a user (each gets `unsubscribed` with reason
   * `server`). HTTP only. */
  async unsubscribeUser(userId: string, channel: string): Promise<SubscriptionResult> {
    const body = await this.request('DELETE', `/api/users/${segment(userId)}/subscriptions/${segment(channel)}`);
    return body as SubscriptionResult;
  }

  /**
   * Whether users are online, by user id (GET /api/presence?userIds=…). More than 1,000 ids go
   * in several requests; no ids, no request. HTTP only.
   */
  async getPresence(userIds: readonly string[]): Promise<Record<string, UserPresence>> {
    const result: Record<string, UserPresence> = {};
    for (let i = 0; i < userIds.length; i += MAX_PRESENCE_IDS) {
      const ids = userIds.slice(i, i + MAX_PRESENCE_IDS).map(encodeURIComponent).join(',');
      Object.assign(result, await this.request('GET', `/api/presence?userIds=${ids}`));
    }
    return result;
  }

  /** The users holding a channel (GET /api/channels/{channel}/presence). HTTP only. */
  async channelPresence(channel: string): Promise<ChannelPresence> {
    const body = await this.request('GET', `/api/channels/${segment(channel)}/presence`);
    return body as ChannelPresence;
  }

  /** The seed's getUserConnectionCount (async here: the connections live in the gateway). */
  async getUserConnectionCount(userId: string): Promise<number> {
    const body = await this.request('GET', `/api/users/${segment(userId)}/connections`);
    return (body as { connections: number }).connections;
  }

  /** The seed's getTotalConnectionCount. */
  async getTotalConnectionCount(): Promise<number> {
    const body = await this.request('GET', '/api/stats');
    return (body as { connections: number }).connections;
  }

  /** Closes every connection of a user with 4001 (logout, revoked token); resolves to how many. */
  async disconnectUser(userId: string): Promise<number> {
    const body = await this.request('DELETE', `/api/users/${segment(userId)}/connections`);
    return (body as { closed: number }).closed;
  }

  /** Sends what is pending, then refuses new publishes. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.pending.length || this.sending) await sleep(5);
  }

  private enqueue(body: Record<string, unknown>, options?: PublishOptions): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new Error('zena-realtime: the service was closed'));
    // Through Redis nothing is retried: a key is sent only when the caller gives one.
    const key = options?.idempotencyKey
      ?? (!this.options.redis && (this.options.idempotencyKeys ?? true) ? randomUUID() : undefined);
    if (key !== undefined) body.idempotencyKey = key;
    return new Promise((resolve, reject) => {
      this.pending.push({ body, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Everything published in this tick goes in one request.
        setImmediate(() => {
          this.flushScheduled = false;
          void this.pump();
        });
      }
    });
  }

  // One request at a time, so that order is kept; what piles up meanwhile goes in the next one.
  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.options.maxBatchItems ?? 1000);
        await this.sendBatch(batch);
      }
    } finally {
      this.sending = false;
    }
  }

  private async sendBatch(batch: Item[]): Promise<void> {
    try {
      if (this.options.redis) {
        const { client, channel = 'zena:publish' } = this.options.redis;
        const message = batch.length === 1 ? batch[0]!.body : { items: batch.map((i) => i.body) };
        await client.publish(channel, JSON.stringify(message));
        for (const item of batch) item.resolve({ delivered: null });
        return;
      }
      if (batch.length === 1) {
        const { body } = batch[0]!;
        const { all, ...rest } = body;
        const path = all ? '/api/broadcast-all' : body.channel !== undefined ? '/api/publish' : '/api/broadcast';
        const answer = await this.request('POST', path, all ? rest : body);
        batch[0]!.resolve(publishResult(answer as Answer));
        return;
      }
      const answer = (await this.request('POST', '/api/batch', { items: batch.map((i) => i.body) })) as {
        results: (Answer & { status?: number; error?: string; field?: string; event?: string })[];
      };
      batch.forEach((item, i) => {
        const r = answer.results[i];
        if (r && r.status === undefined) item.resolve(publishResult(r));
        else item.reject(new RealtimeError(r?.status ?? 500, r?.error ?? 'no result for this item', r?.field, r?.event));
      });
    } catch (e) {
      for (const item of batch) item.reject(e as Error);
    }
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const { url, apiKey } = this.options;
    if (!url || !apiKey) throw new Error(`zena-realtime: ${method} ${path} needs url and apiKey`);
    const maxRetries = this.options.maxRetries ?? 3;
    for (let attempt = 0; ; attempt += 1) {
      let response: Response;
      try {
        response = await fetch(new URL(path, url), {
          method,
          headers: {
            authorization: `Bearer ${apiKey}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10000),
        });
      } catch (e) {
        if (attempt < maxRetries) {
          await sleep((this.options.retryDelayMs ?? 100) * 2 ** attempt);
          continue;
        }
        throw new Error(`zena-realtime: ${method} ${path} failed after ${attempt + 1} attempts: ${(e as Error).message}`);
      }
      const text = await response.text();
      if (RETRYABLE_STATUS.has(response.status) && attempt < maxRetries) {
        await sleep((this.options.retryDelayMs ?? 100) * 2 ** attempt);
        continue;
      }
      let parsed: { error?: string; field?: string; event?: string } = {};
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { error: text };
      }
      if (!response.ok) throw new RealtimeError(response.status, parsed.error ?? response.statusText, parsed.field, parsed.event);
      return parsed;
    }
  }
}

interface Answer {
  delivered?: number;
  channel?: unknown;
  epoch?: unknown;
  seq?: unknown;
  duplicate?: unknown;
}

// A publish answer as a PublishResult: the channel and position only when the server gave them.
function publishResult(answer: Answer): PublishResult {
  const result: PublishResult = { delivered: answer.delivered ?? 0 };
  if (typeof answer.channel === 'string') result.channel = answer.channel;
  if (typeof answer.epoch === 'string') result.epoch = answer.epoch;
  if (typeof answer.seq === 'number') result.seq = answer.seq;
  if (answer.duplicate === true) result.duplicate = true;
  return result;
}

// One path segment, percent-encoded. `.` and `..` would be resolved away by the URL parser
// (their percent-encoded forms too), sending the request to another path: refused instead.
function segment(value: string): string {
  if (value === '.' || value === '..') throw new Error(`zena-realtime: '${value}' cannot be sent as a path segment`);
  return encodeURIComponent(value);
}

/** The seed's websocketService, backed by the gateway: `createRealtimeService({ url, apiKey })`. */
export function createRealtimeService(options: RealtimeServiceOptions): RealtimeService {
  return new RealtimeService(options);
}
