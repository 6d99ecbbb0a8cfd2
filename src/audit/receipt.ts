/**
 * Receipts: one record, an RFC 9162 inclusion proof and the signed checkpoint it leads to. A
 * receipt verifies offline with only the verifier key (AU-10 non-repudiation for one event).
 */
import { parseRecord, type AuditRecord } from './event.js';
import { HASH_BYTES, hashLeaf, inclusionProof, verifyInclusion } from './merkle.js';
import { openNote, parseCheckpoint, type Checkpoint, type NoteVerifier } from './signed-note.js';
import type { AuditStore } from './store/types.js';

export const RECEIPT_FORMAT = 'sluice-audit-receipt/1';

export interface AuditReceipt {
  readonly format: typeof RECEIPT_FORMAT;
  /** Canonical JSON of the record: the leaf's exact bytes. */
  readonly record: string;
  /** 0-based leaf index (seq - 1). */
  readonly leafIndex: number;
  readonly treeSize: number;
  /** Base64 sibling hashes, leaf to root. */
  readonly proof: readonly string[];
  /** The signed checkpoint note whose root the proof reaches. */
  readonly checkpoint: string;
}

export class ReceiptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReceiptError';
  }
}

/** Build a receipt for event `id` against the latest checkpoint that covers it. */
export async function createReceipt(store: AuditStore, id: string): Promise<AuditReceipt> {
  const ev = await store.findEvent(id);
  if (ev === undefined) throw new ReceiptError(`no audit record with id ${id}`);
  const cps = await store.readCheckpoints();
  const cp = cps[cps.length - 1];
  if (cp === undefined || cp.size < ev.seq) throw new ReceiptError(`record ${ev.seq} is not yet covered by a signed checkpoint`);
  const leaves: Buffer[] = [];
  for (const seg of await store.readPruned()) {
    for (let off = 0; off < seg.leaves.length; off += HASH_BYTES) leaves.push(Buffer.from(seg.leaves.subarray(off, off + HASH_BYTES)));
  }
  leaves.push(...(await store.readLeafHashes(leaves.length + 1, cp.size)));
  if (leaves.length !== cp.size) throw new ReceiptError(`the log has ${leaves.length} of the ${cp.size} records its checkpoint covers (run audit verify)`);
  const proof = inclusionProof(leaves, ev.seq - 1).map((h) => h.toString('base64'));
  return { format: RECEIPT_FORMAT, record: ev.body, leafIndex: ev.seq - 1, treeSize: cp.size, proof, checkpoint: cp.note };
}

export interface VerifiedReceipt {
  readonly record: AuditRecord;
  readonly checkpoint: Checkpoint;
  readonly signedBy: readonly string[];
}

/** Verify a receipt offline. Throws ReceiptError naming what does not hold. */
export function verifyReceipt(receipt: unknown, verifiers: readonly NoteVerifier[]): VerifiedReceipt {
  if (receipt === null || typeof receipt !== 'object') throw new ReceiptError('receipt is not an object');
  const r = receipt as Partial<AuditReceipt>;
  if (r.format !== RECEIPT_FORMAT) throw new ReceiptError(`unknown receipt format ${String(r.format)}`);
  if (typeof r.record !== 'string' || typeof r.leafIndex !== 'number' || typeof r.treeSize !== 'number' || !Array.isArray(r.proof) || typeof r.checkpoint !== 'string') {
    throw new ReceiptError('receipt is missing fields');
  }
  let opened;
  let cp: Checkpoint;
  try {
    opened = openNote(r.checkpoint, verifiers);
    cp = parseCheckpoint(opened.text);
  } catch (err) {
    throw new ReceiptError(`checkpoint: ${(err as Error).message}`);
  }
  if (cp.size !== r.treeSize) throw new ReceiptError('receipt tree size differs from its checkpoint');
  let record: AuditRecord;
  try {
    record = parseRecord(r.record);
  } catch (err) {
    throw new ReceiptError(`record: ${(err as Error).message}`);
  }
  if (record.seq !== r.leafIndex + 1) throw new ReceiptError('record seq does not match its leaf index');
  const proof = r.proof.map((p) => Buffer.from(String(p), 'base64'));
  if (!verifyInclusion(hashLeaf(r.record), r.leafIndex, r.treeSize, proof, cp.root)) {
    throw new ReceiptError('inclusion proof does not lead to the signed root: the record or proof was altered');
  }
  return { record, checkpoint: cp, signedBy: opened.verifiedBy };
}
