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
