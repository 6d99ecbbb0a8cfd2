/**
 * What a commit writes, computed once for both ways of committing (on the event loop, or on the
 * writer thread): from the committed head and records prepared at append time, the rows with their
 * `seq`, `prev` chain, leaf hashes, the new Merkle frontier and, when due, a signed checkpoint.
 * Pure but for the clock value passed in; it runs inside the store's write transaction.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { hashLeaf, MerkleFrontier } from '../merkle.js';
import { joinRecordBody, type RecordBodyParts } from '../record-json.js';
import { formatCheckpoint, signNote, type NoteSigner } from '../signed-note.js';
import type { BatchWrite, LogHead, StoredCheckpoint, StoredEvent } from '../store/types.js';
import { witnessPath } from '../signing-key.js';

/**
 * A record as `append` prepared it: the store's index columns and the canonical body minus `seq`
 * and `prev` (`head` + prev + `mid` + seq + `tail`). Plain strings and numbers, so it is written
 * to the spool (and read back by the writer thread) without the event object.
 */
export type PreparedRecord = Pick<StoredEvent, 'id' | 'ts' | 'type' | 'sessionId' | 'subject' | 'connection' | 'outcome'> & RecordBodyParts;

export interface BatchContext {
  readonly origin: string;
  readonly signer: NoteSigner;
  /** Sign a checkpoint once this many records are past the last one. */
  readonly checkpointEvery: number;
  /** ms since epoch, stamped on a forced checkpoint (an every-N one takes its last record's time). */
  readonly now: number;
  /** Sign a checkpoint if any record is past the last one (the T timer, close, `checkpoint()`). */
  readonly force: boolean;
}

const ZERO_HASH = '0'.repeat(64);

export function buildBatch(head: LogHead, records: readonly PreparedRecord[], ctx: BatchContext): BatchWrite | null {
  const frontier = MerkleFrontier.deserialize(head.size, head.frontier);
  let prev = head.lastHash;
  const events: StoredEvent[] = [];
  const checkpoints: StoredCheckpoint[] = [];
  let sealed = head.checkpointSize;
  const sign = (ts: number): void => {
    const size = frontier.size;
    const root = frontier.root();
    checkpoints.push({ size, ts, root, note: signNote(formatCheckpoint({ origin: ctx.origin, size, root, extensions: [] }), ctx.signer) });
    sealed = size;
  };
  for (const r of records) {
    const seq = frontier.size + 1;
    // Byte-identical to canonicalJson({ ...draft, seq, prev }), which is what verify recomputes.
    const body = joinRecordBody(r, seq, prev === null ? ZERO_HASH : prev.toString('hex'));
    const hash = hashLeaf(body);
    frontier.append(hash);
    prev = hash;
    events.push({ seq, id: r.id, ts: r.ts, type: r.type, sessionId: r.sessionId, subject: r.subject, connection: r.connection, outcome: r.outcome, body, hash });
    // Every N records exactly, however the records were batched; stamped with the record's time.
    if (frontier.size - sealed >= ctx.checkpointEvery) sign(r.ts);
  }
  if (ctx.force && frontier.size > sealed) sign(ctx.now);
  if (events.length === 0 && checkpoints.length === 0) return null;
  const last = checkpoints[checkpoints.length - 1];
  return {
    events,
    checkpoints,
    head: {
      size: frontier.size,
      lastHash: prev,
      frontier: frontier.serialize(),
      checkpointSize: sealed,
      checkpointTs: last?.ts ?? head.checkpointTs,
    },
  };
}

/**
 * Best effort: the latest checkpoint note beside the signing key catches a store truncated
 * together with its checkpoints. The store's copy is authoritative for the writer.
 */
export function writeWitness(signingKeyPath: string, checkpoint: StoredCheckpoint | undefined): void {
  if (checkpoint === undefined) return;
  try {
    const path = witnessPath(signingKeyPath);
    writeFileSync(`${path}.tmp`, checkpoint.note, { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  } catch {
    // ignore: verify still has the store's checkpoints
  }
}

/** What one commit wrote: records `firstSeq`..`lastSeq` in the order given, and a checkpoint if one was due. */
export interface CommitOutcome {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly checkpoint?: StoredCheckpoint;
}

export function outcomeOf(w: BatchWrite): CommitOutcome {
  const firstSeq = w.head.size - w.events.length + 1;
  const cp = lastCheckpoint(w);
  return { firstSeq, lastSeq: w.head.size, ...(cp !== undefined ? { checkpoint: cp } : {}) };
}

export function lastCheckpoint(w: BatchWrite | null): StoredCheckpoint | undefined {
  return w?.checkpoints[w.checkpoints.length - 1];
}

/**
 * Where commits happen. `commit` calls complete in call order; each resolves once its records are
 * durable, with null when there was nothing to write. An empty `commit` with `force` signs a
 * checkpoint over everything committed before it.
 */
export interface Committer {
  commit(records: readonly PreparedRecord[], opts: { readonly now: number; readonly force: boolean }): Promise<CommitOutcome | null>;
  /**
   * How many commits the log keeps outstanding before it holds new records back to batch them
   * into the next one.
   */
  readonly maxInFlight: number;
  /** Resolves once every record committed so far can be read from the store. */
  visible(): Promise<void>;
  /** `listener(lastSeq)` after records became readable from the store. */
  onVisible(listener: (lastSeq: number) => void): void;
  /** ms the writer thread has spent working (not idle), when there is one. */
  writerBusyMs?(): number;
  close(): Promise<void>;
}
