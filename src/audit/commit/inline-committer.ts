/**
 * Commits on the caller's thread through any `AuditStore` (PostgreSQL, an injected store, the CLI's
 * one-off writes). One commit at a time: while one is in flight the log gathers what comes next
 * into the following batch, which is what makes group commit pay off over a network round trip.
 */
import type { NoteSigner } from '../signed-note.js';
import type { AuditStore } from '../store/types.js';
import type { WriterLock } from './spool.js';
import { buildBatch, lastCheckpoint, outcomeOf, writeWitness, type CommitOutcome, type Committer, type PreparedRecord } from './batch.js';

export interface InlineCommitterOptions {
  readonly origin: string;
  readonly signer: NoteSigner;
  readonly signingKeyPath: string;
  readonly checkpointEvery: number;
  /** Released when the committer closes. */
  readonly lock?: WriterLock;
}

export function inlineCommitter(store: AuditStore, o: InlineCommitterOptions): Committer {
  let tail: Promise<unknown> = Promise.resolve();
  const once = async (records: readonly PreparedRecord[], now: number, force: boolean): Promise<CommitOutcome | null> => {
    const w = await store.appendBatch((head) => buildBatch(head, records, { origin: o.origin, signer: o.signer, checkpointEvery: o.checkpointEvery, now, force }));
    if (w === null) return null;
    writeWitness(o.signingKeyPath, lastCheckpoint(w));
    return outcomeOf(w);
  };
  let listener: ((lastSeq: number) => void) | undefined;
  return {
    maxInFlight: 1,
    commit(records, { now, force }) {
      const p = tail.then(() => once(records, now, force));
      tail = p.catch(() => undefined);
      // Committed is readable: the store is the durability point.
      if (records.length > 0) void p.then((o) => o !== null && listener?.(o.lastSeq), () => undefined);
      return p;
    },
    visible: () => tail.then(() => undefined),
    onVisible(l) {
      listener = l;
    },
    // The log owns and closes the store.
    close: () => tail.then(() => o.lock?.release()),
  };
}
