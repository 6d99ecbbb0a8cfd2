/** What every stream transport implements: deliver one batch, say whether the peer took it. */
import type { StoredEvent } from '../store/types.js';

export interface StreamBatch {
  /** In seq order, gap-free within the batch. */
  readonly events: readonly StoredEvent[];
  /** `events[i]` formatted (jsonl, OCSF or CEF), one line each, no newline. */
  readonly lines: readonly string[];
}

export interface Sender {
  /**
   * Resolves only once the destination acknowledged every record of the batch (HTTP 2xx, TCP
   * write flushed, UDP datagrams handed to the kernel); rejects with DeliveryError otherwise.
   * `signal` aborts it (shutdown after the grace period).
   */
  send(batch: StreamBatch, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * `too_large`: the peer refused the batch's size (HTTP 413): retry with fewer records.
 * `failed`: anything else (refused, timed out, unreachable): retry the same records later.
 */
export type DeliveryFailure = 'too_large' | 'failed';

export class DeliveryError extends Error {
  readonly failure: DeliveryFailure;

  constructor(failure: DeliveryFailure, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DeliveryError';
    this.failure = failure;
  }
}

/** Abort `signal` after `ms` too (one request's timeout on top of shutdown). */
export function withTimeout(signal: AbortSignal, ms: number): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(ms)]);
}

/** A short, secret-free reason for logs: the error code if Node gave one, else the message. */
export function describeError(err: unknown): string {
  if (err instanceof DeliveryError) return err.message;
  const e = err as { name?: unknown; code?: unknown; cause?: { code?: unknown } } | null;
  if (e !== null && typeof e === 'object') {
    if (e.name === 'TimeoutError') return 'timed out';
    if (e.name === 'AbortError') return 'aborted';
    if (typeof e.cause?.code === 'string') return e.cause.code;
    if (typeof e.code === 'string') return e.code;
  }
  return err instanceof Error ? err.message : String(err);
}
