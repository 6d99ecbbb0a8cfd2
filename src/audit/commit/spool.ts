/**
 * The audit spool: the SQLite store's durability point. A commit is one `write()` of the batch's
 * records to an append-only segment file (plus `fdatasync` at `synchronous: full`); the writer
 * thread then ingests the segments into SQLite (hash chain, Merkle tree, checkpoints, indexes) and
 * deletes them. SQLite's per-row cost (~15 µs for a gateway record) is thus paid off the event
 * loop and off every statement's critical path, while a record is still durable before the
 * statement's result is released: a `write()` that returned survives the process dying (as
 * SQLite's WAL at `synchronous=NORMAL` does), `fdatasync` survives power loss too.
 *
 * Format, one record per line (canonical JSON escapes every control character, so the three body
 * parts never hold a tab or a newline; the index columns are JSON-encoded):
 *
 *     [seq,"id",ts,"type",session,subject,connection,outcome] TAB head TAB mid TAB tail LF
 *
 * A line without its LF is a write the process died in: it was never acknowledged and is dropped.
 * Segments are named by their first seq (`0000000000000042.spool`). One process writes a log at a
 * time: `writer.lock` in the spool directory holds its pid, and a lock whose process is gone is
 * taken over (its segments are recovered first).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SluiceError } from '../../errors.js';
import type { AuditStore, StoredCheckpoint } from '../store/types.js';
import { buildBatch, lastCheckpoint, writeWitness, type BatchContext, type PreparedRecord } from './batch.js';
import { MAX_ROWS_PER_COMMIT } from './thread-protocol.js';

export const SEGMENT_SUFFIX = '.spool';
/** A segment is closed and a new one started past this size, so ingested files can be deleted. */
export const SEGMENT_BYTES = 16 * 1024 * 1024;

export function spoolDirFor(sqlitePath: string): string {
  return `${sqlitePath}-spool`;
}

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, '0')}${SEGMENT_SUFFIX}`;
}

/** Segment files in seq order. */
export function listSegments(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^\d{16}\.spool$/.test(f))
    .sort();
}

export function encodeLine(seq: number, r: PreparedRecord): string {
  return `${JSON.stringify([seq, r.id, r.ts, r.type, r.sessionId, r.subject, r.connection, r.outcome])}\t${r.head}\t${r.mid}\t${r.tail}\n`;
}

export interface SpooledRecord extends PreparedRecord {
  readonly seq: number;
}

/**
 * Parse the complete lines of `text` (whatever follows the last LF is left for later, or dropped
 * at recovery). Throws SLUICE_AUDIT_UNAVAILABLE naming `where` for a line that is not a record.
 */
export function parseLines(text: string, where: string): { records: SpooledRecord[]; consumed: number } {
  const records: SpooledRecord[] = [];
  let start = 0;
  for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
    const line = text.slice(start, nl);
    start = nl + 1;
    records.push(parseLine(line, where));
  }
  return { records, consumed: start };
}

function parseLine(line: string, where: string): SpooledRecord {
  const bad = (why: string): SluiceError => new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit spool ${where}: unreadable record (${why}); the file was altered or corrupted`);
  const t1 = line.indexOf('\t');
  const t2 = line.indexOf('\t', t1 + 1);
  const t3 = line.indexOf('\t', t2 + 1);
  if (t1 < 0 || t2 < 0 || t3 < 0 || line.indexOf('\t', t3 + 1) !== -1) throw bad('expected four tab-separated fields');
  let h: unknown;
  try {
    h = JSON.parse(line.slice(0, t1));
  } catch {
    throw bad('header is not JSON');
  }
  const str = (v: unknown): v is string => typeof v === 'string';
  const opt = (v: unknown): v is string | null => v === null || typeof v === 'string';
  if (!Array.isArray(h) || h.length !== 8 || !Number.isSafeInteger(h[0]) || !str(h[1]) || !Number.isFinite(h[2]) || !str(h[3]) || !opt(h[4]) || !opt(h[5]) || !opt(h[6]) || !opt(h[7])) {
    throw bad('header has the wrong shape');
  }
  return {
    seq: h[0] as number,
    id: h[1],
    ts: h[2] as number,
    type: h[3],
    sessionId: h[4],
    subject: h[5],
    connection: h[6],
    outcome: h[7],
    head: line.slice(t1 + 1, t2),
    mid: line.slice(t2 + 1, t3),
    tail: line.slice(t3 + 1),
  };
}

/**
 * Records for the store from spooled ones: those at or below the committed head are already in
 * (a crash between ingest and delete); the rest must follow it without a gap.
 */
export function recordsAfter(records: readonly SpooledRecord[], headSize: number, where: string): SpooledRecord[] {
  const out: SpooledRecord[] = [];
  let expect = headSize + 1;
  for (const r of records) {
    if (r.seq < expect && out.length === 0) continue;
    if (r.seq !== expect) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit spool ${where}: record ${r.seq} does not follow ${expect - 1}; the spool was altered`);
    out.push(r);
    expect += 1;
  }
  return out;
}

/**
 * Ingest `records` (already filtered by `recordsAfter`) in transactions of bounded size. Returns
 * the last checkpoint signed on the way, if any (for the witness file).
 */
export async function ingest(store: AuditStore, records: readonly SpooledRecord[], ctx: BatchContext): Promise<StoredCheckpoint | undefined> {
  let cp: StoredCheckpoint | undefined;
  for (let i = 0; i < records.length; i += MAX_ROWS_PER_COMMIT) {
    const chunk = records.slice(i, i + MAX_ROWS_PER_COMMIT);
    const w = await store.appendBatch((head) => {
      if (head.size + 1 !== chunk[0]?.seq) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store head moved to ${head.size} while ingesting record ${chunk[0]?.seq}: another process wrote the log`);
      return buildBatch(head, chunk, ctx);
    });
    cp = lastCheckpoint(w) ?? cp;
  }
  return cp;
}

/**
 * Move what a stopped writer left in the spool into the store and delete the segments. Runs with
 * the writer lock held. A trailing line without LF was never acknowledged and is dropped.
 */
export async function recoverSpool(store: AuditStore, dir: string, ctx: BatchContext, signingKeyPath?: string): Promise<number> {
  let n = 0;
  for (const f of listSegments(dir)) {
    const path = join(dir, f);
    const { records } = parseLines(readFileSync(path, 'utf8'), path);
    const todo = recordsAfter(records, (await store.readHead()).size, path);
    const cp = await ingest(store, todo, ctx);
    if (signingKeyPath !== undefined) writeWitness(signingKeyPath, cp);
    n += todo.length;
    unlinkSync(path);
  }
  return n;
}

// ---- writer lock ----

const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface WriterLock {
  release(): void;
}

/** The log's writer lock is held by a live process (a running gateway, or this process). */
export class WriterLockHeld extends SluiceError {
  /** Who holds it, for messages (`audit log is being written by process 42 (…/writer.lock)`). */
  readonly holder: string;

  constructor(holder: string, advice?: string) {
    super('SLUICE_AUDIT_UNAVAILABLE', advice === undefined ? holder : `${holder}; ${advice}`);
    this.holder = holder;
  }
}

/**
 * Take the spool's writer lock, or throw SLUICE_AUDIT_UNAVAILABLE naming the process that holds
 * it (WriterLockHeld when that process is alive here). A lock left by a process that is gone
 * (same host) is taken over.
 */
export function acquireWriterLock(dir: string): WriterLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'writer.lock');
  if (heldHere.has(path)) throw new WriterLockHeld(`audit log ${dir} is already open for writing in this process`);
  const me = `${process.pid} ${hostname()}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, me, { flag: 'wx', mode: 0o600 });
      heldHere.add(path);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          heldHere.delete(path);
          try {
            unlinkSync(path);
          } catch {
            // already gone: nothing to release
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `cannot create audit writer lock ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    let holder = '';
    try {
      holder = readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile: try again
    }
    const [pidText, host] = holder.trim().split(' ');
    const pid = Number(pidText);
    if (Number.isSafeInteger(pid) && pid > 0 && host === hostname() && alive(pid)) {
      throw new WriterLockHeld(`audit log is being written by process ${pid} (${path})`, 'one gateway writes a SQLite audit log at a time — use the PostgreSQL store for several, or remove the lock file if that process is not a Sluice gateway');
    }
    if (host !== undefined && host !== hostname()) {
      throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit log is locked by process ${pidText ?? '?'} on host ${host} (${path}); remove the lock file once that gateway is stopped`);
    }
    try {
      unlinkSync(path); // stale: its process is gone
    } catch {
      // someone else removed it first
    }
  }
  throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `cannot take audit writer lock ${path}`);
}

/**
 * For readers and one-off tools: if a writer died and left segments, and no live process holds the
 * lock, move them into the store now (without signing a checkpoint: the next writer signs). Returns
 * the number of records recovered; 0 when there was nothing to do or a writer is running.
 */
export async function recoverAbandonedSpool(sqlitePath: string, open: () => AuditStore): Promise<number> {
  const dir = spoolDirFor(sqlitePath);
  if (listSegments(dir).length === 0) return 0;
  let lock: WriterLock;
  try {
    lock = acquireWriterLock(dir);
  } catch {
    return 0; // a live writer owns the spool and ingests it itself
  }
  try {
    const store = open();
    try {
      return await recoverSpool(store, dir, NO_CHECKPOINT);
    } finally {
      await store.close();
    }
  } catch {
    // A reader without write access, or a damaged spool: read what the store has. The next
    // writer recovers the spool, or refuses to start and names the problem.
    return 0;
  } finally {
    lock.release();
  }
}

/** Ingest without signing: for recovery by a process that does not hold the signing key. */
const NO_CHECKPOINT: BatchContext = {
  origin: '',
  signer: undefined as never,
  checkpointEvery: Number.POSITIVE_INFINITY,
  now: 0,
  force: false,
};

/** An open segment the event loop appends to. */
export interface SegmentFile {
  readonly fd: number;
  readonly path: string;
  /** The seq of its first record (its name). */
  readonly firstSeq: number;
  offset: number;
}

export function openSegment(dir: string, firstSeq: number, syncDir = false): SegmentFile {
  const path = join(dir, segmentName(firstSeq));
  const fd = openSync(path, 'wx', 0o600);
  if (syncDir) {
    // synchronous: full — the new file's directory entry must survive power loss too.
    const d = openSync(dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  }
  return { fd, path, firstSeq, offset: 0 };
}

export function closeSegment(s: SegmentFile): void {
  try {
    closeSync(s.fd);
  } catch {
    // already closed
  }
}
