/**
 * Retry delays for audit streams: exponential, capped, with "equal jitter" (half fixed, half
 * random), so a fleet of gateways that lost the same collector does not retry in lockstep, and a
 * delay never drops below half its step (AWS Architecture Blog, "Exponential Backoff and Jitter").
 */

export interface BackoffPolicy {
  /** First retry step, ms. */
  readonly baseMs: number;
  /** Largest delay, ms: a collector that is down for hours is retried at this pace. */
  readonly maxMs: number;
}

/** Delay before retry number `attempt` (1-based), in [step/2, step] with step = min(max, base·2^(attempt-1)). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new TypeError(`backoffDelay: attempt must be a positive integer (got ${attempt})`);
  // 2^31 already exceeds any sane cap; stop the exponent there so it never overflows to Infinity.
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 31));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(step / 2 + (step / 2) * r);
}
