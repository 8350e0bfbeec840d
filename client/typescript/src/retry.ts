/**
 * How idempotent calls are retried on transient failures.
 *
 * Failed attempt `n` (1-based) waits `min(initialBackoffMs * multiplier^(n-1), maxBackoffMs)`,
 * spread by ±`jitter` (a fraction), before attempt `n + 1`. Retries stop after
 * `maxAttempts` attempts in total, or when the next attempt could not start
 * before the call's deadline. Non-idempotent calls are never retried.
 */
export interface RetryPolicy {
  /** Attempts in total, including the first; 1 disables retries (0 means unlimited, for watches). */
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  /** Random spread of each wait, from 0 (none) to 1. */
  readonly jitter: number;
}

/** 4 attempts, waiting about 100, 200 and 400 ms (±20%). */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  multiplier: 2,
  jitter: 0.2,
});

/** Never retry. */
export const NO_RETRY: RetryPolicy = Object.freeze({ ...DEFAULT_RETRY, maxAttempts: 1 });

/** Reconnects of image-facts watches: 100 ms doubling to 5 s, never giving up. */
export const WATCH_BACKOFF: RetryPolicy = Object.freeze({
  maxAttempts: 0,
  initialBackoffMs: 100,
  maxBackoffMs: 5000,
  multiplier: 2,
  jitter: 0.2,
});

/** Milliseconds to wait after failed attempt `attempt` (1-based), jitter applied. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const base = policy.initialBackoffMs * Math.max(policy.multiplier, 1) ** Math.max(attempt - 1, 0);
  const capped = Math.min(base, policy.maxBackoffMs);
  const jitter = Math.min(Math.max(policy.jitter, 0), 1);
  return Math.max(capped * (1 - jitter + Math.random() * 2 * jitter), 0);
}

/** Resolves after `ms`, or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
