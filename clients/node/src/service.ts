// The backend's side: publish to users through the gateway's server API (or through Redis),
// with the seed's websocketService method names. Publishes issued in the same tick are
// coalesced into one POST /api/batch; requests go one after another on a keep-alive
// connection, so events published one after the other reach a user in that order.

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

export interface PublishResult {
  /** Connections the event was queued to; null when published through Redis (not known). */
  delivered: number | null;
}

interface Item {
  body: Record<string, unknown>;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RETRYABLE_STATUS = new Set([502, 503, 504]);

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
  broadcastToUser<K extends EventType>(userId: string, type: K, payload: PublishableEvents[K]): Promise<PublishResult> {
    return this.enqueue({ userId, type, payload });
  }

  /** The seed's broadcastToUsers: every connection of each user, once per user. */
  broadcastToUsers<K extends EventType>(userIds: readonly string[], type: K, payload: PublishableEvents[K]): Promise<PublishResult> {
    return this.enqueue({ userIds: [...userIds], type, payload });
  }

  /** Every connection of every user. */
  broadcastToAll<K extends EventType>(type: K, payload: PublishableEvents[K]): Promise<PublishResult> {
    return this.enqueue({ all: true, type, payload });
  }

  /** The seed's getUserConnectionCount (async here: the connections live in the gateway). */
  async getUserConnectionCount(userId: string): Promise<number> {
    const body = await this.request('GET', `/api/users/${encodeURIComponent(userId)}/connections`);
    return (body as { connections: number }).connections;
  }

  /** The seed's getTotalConnectionCount. */
  async getTotalConnectionCount(): Promise<number> {
    const body = await this.request('GET', '/api/stats');
    return (body as { connections: number }).connections;
  }

  /** Closes every connection of a user with 4001 (logout, revoked token); resolves to how many. */
  async disconnectUser(userId: string): Promise<number> {
    const body = await this.request('DELETE', `/api/users/${encodeURIComponent(userId)}/connections`);
    return (body as { closed: number }).closed;
  }

  /** Sends what is pending, then refuses new publishes. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.pending.length || this.sending) await sleep(5);
  }

  private enqueue(body: Record<string, unknown>): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new Error('zena-realtime: the service was closed'));
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
        const answer = await this.request('POST', all ? '/api/broadcast-all' : '/api/broadcast', all ? rest : body);
        batch[0]!.resolve({ delivered: (answer as { delivered: number }).delivered });
        return;
      }
      const answer = (await this.request('POST', '/api/batch', { items: batch.map((i) => i.body) })) as {
        results: { delivered?: number; status?: number; error?: string; field?: string; event?: string }[];
      };
      batch.forEach((item, i) => {
        const r = answer.results[i];
        if (r && r.status === undefined) item.resolve({ delivered: r.delivered ?? 0 });
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

/** The seed's websocketService, backed by the gateway: `createRealtimeService({ url, apiKey })`. */
export function createRealtimeService(options: RealtimeServiceOptions): RealtimeService {
  return new RealtimeService(options);
}
