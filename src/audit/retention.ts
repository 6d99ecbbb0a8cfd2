/**
 * AU-11 retention: remove the oldest whole sealed segments (the records between two signed
 * checkpoints) once all of their records are older than the retention period. Their leaf hashes
 * are kept, so the Merkle roots of every later checkpoint still recompute and verify passes.
 */
import { hashLeaf } from './merkle.js';
import type { AuditStore } from './store/types.js';
import { SluiceError } from '../errors.js';

export interface RetentionResult {
  readonly segments: number;
  readonly records: number;
  /** Last seq removed (0 if none). */
  readonly throughSeq: number;
}

export async function applyRetention(store: AuditStore, options: { readonly retentionMs: number; readonly now: number }): Promise<RetentionResult> {
  const cutoff = options.now - options.retentionMs;
  const pruned = await store.readPruned();
  let start = (pruned[pruned.length - 1]?.lastSeq ?? 0) + 1;
  let segments = 0;
  let records = 0;
  for (const cp of await store.readCheckpoints()) {
    if (cp.size < start) continue;
    const events = await store.readEvents(start - 1, cp.size - start + 1);
    if (events.length !== cp.size - start + 1 || events.some((e, i) => e.seq !== start + i)) {
      throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `retention stopped: records ${start}..${cp.size} are incomplete (run audit verify)`);
    }
    if (events.some((e) => e.ts >= cutoff)) break;
    const leaves = events.map((e) => {
      const leaf = hashLeaf(e.body);
      // Keeping a tampered hash would launder the edit; refuse instead.
      if (!leaf.equals(e.hash)) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `retention stopped: record ${e.seq} does not match its hash (run audit verify)`);
      return leaf;
    });
    await store.prune({ firstSeq: start, lastSeq: cp.size, leaves: Buffer.concat(leaves), prunedAt: options.now });
    segments += 1;
    records += events.length;
    start = cp.size + 1;
  }
  return { segments, records, throughSeq: start - 1 };
}
