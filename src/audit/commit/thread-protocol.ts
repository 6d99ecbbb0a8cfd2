/** Messages between the event loop (`spool-committer.ts`) and the audit writer thread (`ingest-thread.ts`). */
import type { StoredCheckpoint } from '../store/types.js';

export interface WriterThreadData {
  /** The SQLite database. */
  readonly path: string;
  /** Its spool directory. */
  readonly dir: string;
  readonly synchronous: 'normal' | 'full';
  readonly busyTimeoutMs: number;
  readonly signingKeyPath: string;
  readonly origin: string;
  readonly checkpointEvery: number;
  /** Start a new spool segment past this size (default SEGMENT_BYTES). */
  readonly segmentBytes?: number;
  /** Where the event loop publishes how far the spool is written for good (`publishWritten`). */
  readonly written: SharedArrayBuffer;
}

/**
 * How far the spool is written for good, shared between the event loop and the writer thread:
 * the open segment's first seq and its length after the last write that succeeded. A write that
 * fails is cut back off the segment and its seqs are written again, so the bytes past this point
 * may still change: the writer thread reads only up to it. Costs two atomic stores per commit.
 */
export function writtenView(buf: SharedArrayBuffer): BigInt64Array {
  return new BigInt64Array(buf, 0, 2);
}

export function publishWritten(w: BigInt64Array, segmentFirstSeq: number, bytes: number): void {
  // Segment first, then length: a reader that sees the new segment sees its length or a later one.
  Atomics.store(w, 0, BigInt(segmentFirstSeq));
  Atomics.store(w, 1, BigInt(bytes));
}

/**
 * The bytes of the segment starting at `firstSeq` that are written for good: all of an earlier
 * segment, the published length of the open one, none of one not yet published.
 */
export function writtenIn(w: BigInt64Array, firstSeq: number): number {
  for (;;) {
    const seg = Number(Atomics.load(w, 0));
    const bytes = Number(Atomics.load(w, 1));
    // The length belongs to `seg` only if no rotation happened between the two loads.
    if (Number(Atomics.load(w, 0)) !== seg) continue;
    if (firstSeq < seg) return Number.POSITIVE_INFINITY;
    return firstSeq === seg ? bytes : 0;
  }
}

/** Cap on records per transaction, so one commit never holds the write lock for long. */
export const MAX_ROWS_PER_COMMIT = 2000;

export type ToWriter =
  /** Records were spooled while the writer was idle. */
  | { readonly t: 'wake' }
  /** Reply once everything through `upTo` is in the store; with `force`, sign a checkpoint over it. */
  | { readonly t: 'sync'; readonly id: number; readonly upTo: number; readonly force: boolean; readonly now: number }
  /** Ingest through `upTo`, delete the spool segments, close the store and stop. */
  | { readonly t: 'close'; readonly id: number; readonly upTo: number };

export type FromWriter =
  | { readonly t: 'ready' }
  | { readonly t: 'fatal'; readonly code: string; readonly message: string }
  /** Records through `seq` are in the store. */
  | { readonly t: 'visible'; readonly seq: number }
  /** Nothing new in the spool for a while; the writer now waits for `wake`. */
  | { readonly t: 'idle'; readonly seq: number }
  /** An ingest attempt failed; the writer retries with backoff and keeps the spool. */
  | { readonly t: 'error'; readonly code: string; readonly message: string }
  | { readonly t: 'reply'; readonly id: number; readonly ok: true; readonly seq: number; readonly checkpoint?: StoredCheckpoint }
  | { readonly t: 'reply'; readonly id: number; readonly ok: false; readonly code: string; readonly message: string };
