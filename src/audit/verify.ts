/**
 * Recompute the whole log from its bytes and name the first record that does not fit. Nothing
 * the store says about itself (head row, hash column, index columns) is trusted: every leaf is
 * rehashed from the canonical body, every link and signed checkpoint rechecked (AU-9, AU-10).
 */
import { canonicalJson } from './canonical-json.js';
import { parseRecord, type AuditRecord } from './event.js';
import { HASH_BYTES, hashLeaf, MerkleFrontier } from './merkle.js';
import { openNote, parseCheckpoint, type NoteVerifier } from './signed-note.js';
import type { AuditStore, StoredCheckpoint, StoredEvent } from './store/types.js';

export type TamperKind = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'checkpoint';

export interface VerifyProblem {
  readonly kind: TamperKind;
  /** The first bad record's sequence number (for `checkpoint`, the checkpoint's tree size). */
  readonly seq: number;
  readonly id?: string;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Records present (not counting pruned ones). */
  readonly records: number;
  readonly pruned: number;
  readonly checkpoints: number;
  readonly latestCheckpoint?: { readonly size: number; readonly ts: number; readonly signedBy: readonly string[] };
  /** Records after the latest checkpoint: hash-chained but not yet covered by a signature. */
  readonly unsigned: number;
  readonly origin?: string;
  readonly problem?: VerifyProblem;
}

export interface VerifyOptions {
  readonly verifiers: readonly NoteVerifier[];
  /** A checkpoint note kept outside the store (the witness file); it must be consistent with the store. */
  readonly witness?: string;
  /** Page size when reading the log. */
  readonly pageSize?: number;
}

const ZERO = '0'.repeat(64);

interface CheckedCheckpoint {
  readonly size: number;
  readonly ts: number;
  readonly root: Buffer;
  readonly signedBy: readonly string[];
  readonly origin: string;
}

export async function verifyAuditLog(store: AuditStore, options: VerifyOptions): Promise<VerifyReport> {
  const origin = await store.getMeta('origin');
  const pruned = await store.readPruned();
  const stored = await store.readCheckpoints();
  let checkpoints: CheckedCheckpoint[];
  const base = { records: 0, pruned: 0, checkpoints: stored.length, unsigned: 0, ...(origin !== undefined ? { origin } : {}) };

  // 1. Every checkpoint must be signed by a trusted key, for this log, and say what its row says.
  const checked = checkCheckpoints(stored, options.verifiers, origin);
  if ('problem' in checked) return { ok: false, ...base, problem: checked.problem };
  checkpoints = checked.list;
  if (options.witness !== undefined && options.witness.trim() !== '') {
    const w = checkCheckpoints([{ size: -1, ts: 0, root: Buffer.alloc(0), note: options.witness }], options.verifiers, origin, true);
    if ('problem' in w) return { ok: false, ...base, problem: { ...w.problem, message: `witness checkpoint: ${w.problem.message}` } };
    const wc = w.list[0] as CheckedCheckpoint;
    const same = checkpoints.find((c) => c.size === wc.size);
    if (same === undefined) checkpoints = [...checkpoints, wc].sort((a, b) => a.size - b.size);
    else if (!same.root.equals(wc.root)) {
      return { ok: false, ...base, problem: { kind: 'checkpoint', seq: wc.size, message: `the store's checkpoint at size ${wc.size} differs from the witness copy beside the signing key` } };
    }
  }
  const bySize = new Map(checkpoints.map((c) => [c.size, c]));
  const latest = checkpoints[checkpoints.length - 1];

  const frontier = new MerkleFrontier();
  let prevHex = ZERO;
  let prevPrevHex: string | null = null;
  let prevCheckpointSize = 0;
  let prunedCount = 0;

  const atSize = (size: number): VerifyProblem | undefined => {
    const cp = bySize.get(size);
    if (cp === undefined) return undefined;
    const ok = frontier.root().equals(cp.root);
    const from = prevCheckpointSize + 1;
    prevCheckpointSize = size;
    if (ok) return undefined;
    return {
      kind: 'edited',
      seq: from,
      message: `records ${from}..${size} do not match the signed checkpoint at size ${size}: one of them was rewritten with recomputed hashes`,
    };
  };

  // 2. Pruned segments contribute their kept leaf hashes.
  for (const seg of pruned) {
    if (seg.firstSeq !== frontier.size + 1 || seg.leaves.length !== (seg.lastSeq - seg.firstSeq + 1) * HASH_BYTES) {
      return { ok: false, ...base, problem: { kind: 'deleted', seq: frontier.size + 1, message: `retention record for ${seg.firstSeq}..${seg.lastSeq} does not continue the log at ${frontier.size + 1}` } };
    }
    if (!bySize.has(seg.lastSeq)) {
      return { ok: false, ...base, problem: { kind: 'deleted', seq: seg.firstSeq, message: `records ${seg.firstSeq}..${seg.lastSeq} were removed but do not end at a signed checkpoint (not a sealed segment)` } };
    }
    for (let off = 0; off < seg.leaves.length; off += HASH_BYTES) {
      const leaf = Buffer.from(seg.leaves.subarray(off, off + HASH_BYTES));
      frontier.append(leaf);
      prevPrevHex = prevHex;
      prevHex = leaf.toString('hex');
      const p = atSize(frontier.size);
      if (p !== undefined) return { ok: false, ...base, problem: p };
    }
    prunedCount += seg.lastSeq - seg.firstSeq + 1;
  }

  // 3. Present records, in seq order.
  const pageSize = options.pageSize ?? 5000;
  let after = frontier.size;
  let records = 0;
  let prevRow: StoredEvent | undefined;
  let page = await store.readEvents(after, pageSize);
  while (page.length > 0) {
    after = (page[page.length - 1] as StoredEvent).seq;
    // One page of lookahead, so a record can be compared with the one after it across page ends.
    const nextPage = await store.readEvents(after, pageSize);
    for (let i = 0; i < page.length; i++) {
      const row = page[i] as StoredEvent;
      const next = i + 1 < page.length ? page[i + 1] : nextPage[0];
      const expected = frontier.size + 1;
      const problem = checkRow(row, expected, prevHex, prevPrevHex, prevRow, next);
      if (problem !== undefined) return { ok: false, ...base, records, pruned: prunedCount, problem };
      const leaf = hashLeaf(row.body);
      frontier.append(leaf);
      prevPrevHex = prevHex;
      prevHex = leaf.toString('hex');
      prevRow = row;
      records += 1;
      const p = atSize(frontier.size);
      if (p !== undefined) return { ok: false, ...base, records, pruned: prunedCount, problem: p };
    }
    page = nextPage;
  }

  const summary = {
    ...base,
    records,
    pruned: prunedCount,
    unsigned: Math.max(0, frontier.size - (latest?.size ?? 0)),
    ...(latest !== undefined ? { latestCheckpoint: { size: latest.size, ts: latest.ts, signedBy: latest.signedBy } } : {}),
  };
  // 4. Truncation: a signed checkpoint vouches for more records than exist.
  if (latest !== undefined && latest.size > frontier.size) {
    return {
      ok: false,
      ...summary,
      unsigned: 0,
      problem: {
        kind: 'truncated',
        seq: frontier.size + 1,
        message: `the log ends at ${frontier.size} but a signed checkpoint covers ${latest.size} records: records ${frontier.size + 1}..${latest.size} were removed`,
      },
    };
  }
  return { ok: true, ...summary };
}

function checkCheckpoints(
  stored: readonly StoredCheckpoint[],
  verifiers: readonly NoteVerifier[],
  origin: string | undefined,
  witness = false,
): { list: CheckedCheckpoint[] } | { problem: VerifyProblem } {
  const list: CheckedCheckpoint[] = [];
  for (const cp of stored) {
    const fail = (message: string): { problem: VerifyProblem } => ({ problem: { kind: 'checkpoint', seq: cp.size, message: `checkpoint at size ${cp.size}: ${message}` } });
    let signedBy: readonly string[];
    let body;
    try {
      const opened = openNote(cp.note, verifiers);
      signedBy = opened.verifiedBy;
      body = parseCheckpoint(opened.text);
    } catch (err) {
      return fail((err as Error).message);
    }
    if (origin !== undefined && body.origin !== origin) return fail(`origin ${body.origin} is not this log's (${origin})`);
    if (!witness && (body.size !== cp.size || !body.root.equals(cp.root))) return fail('the stored size or root differs from the signed note');
    list.push({ size: body.size, ts: cp.ts, root: body.root, signedBy, origin: body.origin });
  }
  return { list };
}

function checkRow(
  row: StoredEvent,
  expected: number,
  prevHex: string,
  prevPrevHex: string | null,
  prevRow: StoredEvent | undefined,
  next: StoredEvent | undefined,
): VerifyProblem | undefined {
  if (row.seq > expected) {
    return { kind: 'deleted', seq: expected, message: `record ${expected} is missing (the log jumps from ${expected - 1} to ${row.seq})` };
  }
  if (row.seq < expected) {
    return { kind: 'inserted', seq: row.seq, id: row.id, message: `record ${row.seq} appears twice` };
  }
  let rec: AuditRecord;
  try {
    rec = parseRecord(row.body);
    // A body that is not in canonical form was not written by Sluice.
    if (canonicalJson(rec) !== row.body) throw new TypeError('body is not canonical JSON');
  } catch (err) {
    return { kind: 'edited', seq: row.seq, id: row.id, message: `record ${row.seq} is not a valid record: ${(err as Error).message}` };
  }
  const leaf = hashLeaf(row.body);
  if (!leaf.equals(row.hash)) {
    return { kind: 'edited', seq: row.seq, id: row.id, message: `record ${row.seq} was edited: its content no longer matches the hash written with it` };
  }
  if (rec.prev !== prevHex) {
    if (prevPrevHex !== null && rec.prev === prevPrevHex && prevRow !== undefined) {
      return { kind: 'inserted', seq: prevRow.seq, id: prevRow.id, message: `record ${prevRow.seq} was inserted: record ${row.seq} links past it to the record before` };
    }
    if (rec.seq > row.seq && next !== undefined && claimedSeq(next) === row.seq) {
      return { kind: 'reordered', seq: row.seq, id: row.id, message: `records ${row.seq} and ${next.seq} were swapped: position ${row.seq} holds record ${rec.seq}` };
    }
    if (rec.seq > row.seq) {
      return { kind: 'deleted', seq: row.seq, message: `record ${row.seq} is missing: it was deleted (or moved) and later records renumbered (position ${row.seq} holds record ${rec.seq})` };
    }
    if (rec.seq !== row.seq) {
      return { kind: 'reordered', seq: row.seq, id: row.id, message: `record ${row.seq} is out of order: position ${row.seq} holds record ${rec.seq}` };
    }
    if (prevRow !== undefined) {
      return { kind: 'edited', seq: prevRow.seq, id: prevRow.id, message: `record ${prevRow.seq} was edited after record ${row.seq} was chained to it` };
    }
    return { kind: 'edited', seq: row.seq, id: row.id, message: `record ${row.seq} does not link to the start of the log` };
  }
  if (rec.seq !== row.seq) {
    return { kind: 'reordered', seq: row.seq, id: row.id, message: `record ${row.seq} is out of order: position ${row.seq} holds record ${rec.seq}` };
  }
  if (
    rec.id !== row.id ||
    rec.ts !== row.ts ||
    rec.type !== row.type ||
    (rec.session ?? null) !== row.sessionId ||
    (rec.identity?.subject ?? null) !== row.subject ||
    (rec.connection ?? null) !== row.connection ||
    (rec.outcome ?? null) !== row.outcome
  ) {
    return { kind: 'edited', seq: row.seq, id: row.id, message: `record ${row.seq} was edited: its indexed columns differ from its hashed content` };
  }
  return undefined;
}

function claimedSeq(row: StoredEvent): number | undefined {
  try {
    return parseRecord(row.body).seq;
  } catch {
    return undefined;
  }
}
