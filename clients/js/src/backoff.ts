// The reconnect schedule: the seed's 1, 2, 4, 8, 16, 30 s (doubling, capped) plus jitter, so
// that thousands of clients dropped at once do not come back at once.

export interface BackoffOptions {
  /** First delay. Default 1000 ms. */
  initialMs?: number;
  /** Cap of the doubling. Default 30000 ms. */
  maxMs?: number;
  /** Up to this fraction of the delay is added at random. Default 0.2. */
  jitter?: number;
  /** A connection open this long resets the schedule. Default 10000 ms. */
  stableMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 1000, maxMs: 30000, jitter: 0.2, stableMs: 10000 };

/** The delay before reconnect attempt `attempt` (0 for the first), with `random` in [0, 1). */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>, random: number): number {
  const base = Math.min(options.initialMs * 2 ** Math.min(attempt, 30), options.maxMs);
  return Math.round(base * (1 + options.jitter * random));
}
