/**
 * The audit writer thread: tails the spool segments the event loop appends to and ingests their
 * records into SQLite — hash chain, Merkle frontier, signed checkpoints, indexes — then deletes the
 * segments. Nothing waits on it per statement (the spool write is the durability point); reads
 * through the log, `checkpoint()` and `close()` wait for it with a `sync`.
 *
 * Polling: every 20 ms while records arrive (each poll ingests everything spooled since, in one
 * transaction per 2000 records); after a few empty polls it reports `idle` and polls
 * every 500 ms until the event loop sends `wake` (on its next write) or a `sync`.
 */
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { SluiceError } from '../../errors.js';
import { loadSigningKey } from '../signing-key.js';
import type { NoteSigner } from '../signed-note.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { AuditStore } from '../store/types.js';
import { buildBatch, lastCheckpoint, writeWitness } from './batch.js';
import { ingest, listSegments, parseLines, recordsAfter, SEGMENT_BYTES, type SpooledRecord } from './spool.js';
import { writtenView, writtenIn, type FromWriter, type ToWriter, type WriterThreadData } from './thread-protocol.js';

const port = parentPort as MessagePort;
const data = workerData as WriterThreadData;
const post = (m: FromWriter): void => port.postMessage(m);

function failure(err: unknown): { code: string; message: string } {
  if (err instanceof SluiceError) return { code: err.code, message: err.message };
  const code = (err as { code?: string })?.code;
  return { code: 'SLUICE_AUDIT_UNAVAILABLE', message: `audit store ${data.path} is unavailable (${code ?? (err as Error)?.message ?? String(err)})` };
}

let store: AuditStore;
let signer: NoteSigner;
let ingested: number;
try {
  store = openSqliteStore(data.path, { synchronous: data.synchronous, busyTimeoutMs: data.busyTimeoutMs });
  signer = loadSigningKey(data.signingKeyPath);
  ingested = (await store.readHead()).size;
} catch (err) {
  post({ t: 'fatal', ...failure(err) });
  process.exit(1);
}

/** The segment being read: bytes after the last complete line wait in `rest`. */
interface Reading {
  readonly name: string;
  readonly firstSeq: number;
  readonly fd: number;
  offset: number;
  rest: Buffer;
}

let cur: Reading | null = null;
/** Fully read segments, deleted once their records are in the store. */
const finished: string[] = [];
/** Parsed, not yet ingested (kept across a failed ingest). */
let backlog: SpooledRecord[] = [];
const syncs: Extract<ToWriter, { t: 'sync' }>[] = [];
let closing: Extract<ToWriter, { t: 'close' }> | null = null;
let timer: NodeJS.Timeout | null = null;
let emptyPolls = 0;
let failures = 0;
let running = false;
const written = writtenView(data.written);

/** Poll interval while records arrive: longer polls mean bigger transactions (SQLite commit cost is per transaction). */
const ACTIVE_POLL_MS = 20;
const CHUNK = 4 * 1024 * 1024;
/** Parsed records held for the store at most (a read is up to CHUNK bytes past it). */
const MAX_BUFFERED = 20_000;
const scratch = Buffer.alloc(CHUNK);

function openNext(): boolean {
  const next = listSegments(data.dir).find((f) => !finished.includes(f));
  if (next === undefined) return false;
  cur = { name: next, firstSeq: Number(next.slice(0, next.indexOf('.'))), fd: openSync(join(data.dir, next), 'r'), offset: 0, rest: Buffer.alloc(0) };
  return true;
}

/**
 * The bytes of the segment that can be read: what the event loop published as written for good
 * (`writtenIn`), never a failed write that it is about to cut back off and write again.
 */
function readable(r: Reading): number {
  return Math.min(fstatSync(r.fd).size, writtenIn(written, r.firstSeq));
}

/** Read what was appended since the last poll; move past segments the event loop has left. */
function readNew(): number {
  let added = 0;
  for (;;) {
    // While the store refuses records, the rest waits in the spool files rather than in memory.
    if (backlog.length >= MAX_BUFFERED) return added;
    if (cur === null && !openNext()) return added;
    const r = cur as Reading;
    const size = readable(r);
    if (size > r.offset) {
      const n = readSync(r.fd, scratch, 0, Math.min(CHUNK, size - r.offset), r.offset);
      r.offset += n;
      const buf = r.rest.length === 0 ? scratch.subarray(0, n) : Buffer.concat([r.rest, scratch.subarray(0, n)]);
      const end = buf.lastIndexOf(0x0a) + 1;
      // Only whole lines are decoded, so a multi-byte character is never split across reads.
      const { records } = parseLines(buf.toString('utf8', 0, end), join(data.dir, r.name));
      r.rest = Buffer.from(buf.subarray(end));
      for (const rec of records) backlog.push(rec);
      added += records.length;
      continue;
    }
    // At the end of this segment. The event loop starts a new one only past SEGMENT_BYTES; a later
    // one means it moved on, and its last write here happened before the next file was created,
    // so one more read sees everything.
    if (r.offset < (data.segmentBytes ?? SEGMENT_BYTES) && closing === null) return added;
    const names = listSegments(data.dir);
    if (!names.some((f) => f > r.name)) return added;
    if (readable(r) > r.offset) continue;
    // The next segment exists but is not published yet: this one may still be written.
    if (fstatSync(r.fd).size > r.offset) return added;
    if (r.rest.length > 0) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit spool ${join(data.dir, r.name)} ends inside a record`);
    closeSync(r.fd);
    finished.push(r.name);
    cur = null;
  }
}

async function ingestBacklog(): Promise<void> {
  if (backlog.length > 0) {
    // From the store's head, not our count: a failed attempt may have committed its first chunks.
    ingested = Math.max(ingested, (await store.readHead()).size);
    const todo = recordsAfter(backlog, ingested, data.dir);
    writeWitness(data.signingKeyPath, await ingest(store, todo, { origin: data.origin, signer, checkpointEvery: data.checkpointEvery, now: Date.now(), force: false }));
    const last = backlog[backlog.length - 1] as SpooledRecord;
    ingested = Math.max(ingested, last.seq);
    backlog = [];
    post({ t: 'visible', seq: ingested });
  }
  for (const name of finished.splice(0)) {
    try {
      unlinkSync(join(data.dir, name));
    } catch {
      // gone already
    }
  }
}

async function answerSyncs(): Promise<void> {
  while (syncs.length > 0 && (syncs[0] as (typeof syncs)[number]).upTo <= ingested) {
    const s = syncs.shift() as (typeof syncs)[number];
    if (!s.force) {
      post({ t: 'reply', id: s.id, ok: true, seq: ingested });
      continue;
    }
    try {
      const w = await store.appendBatch((head) => buildBatch(head, [], { origin: data.origin, signer, checkpointEvery: data.checkpointEvery, now: s.now, force: true }));
      const cp = lastCheckpoint(w);
      writeWitness(data.signingKeyPath, cp);
      post({ t: 'reply', id: s.id, ok: true, seq: ingested, ...(cp !== undefined ? { checkpoint: cp } : {}) });
    } catch (err) {
      post({ t: 'reply', id: s.id, ok: false, ...failure(err) });
    }
  }
}

async function finishClose(c: Extract<ToWriter, { t: 'close' }>): Promise<void> {
  if (cur !== null) closeSync(cur.fd);
  for (const f of listSegments(data.dir)) unlinkSync(join(data.dir, f));
  await store.close();
  post({ t: 'reply', id: c.id, ok: true, seq: ingested });
  port.close();
}

async function cycle(): Promise<void> {
  if (running) return;
  running = true;
  if (timer !== null) clearTimeout(timer);
  timer = null;
  let added = 0;
  try {
    added = readNew();
    await ingestBacklog();
    failures = 0;
  } catch (err) {
    failures += 1;
    const f = failure(err);
    post({ t: 'error', ...f });
    // Waiters hear about it now instead of waiting out the retries.
    for (const s of syncs.splice(0)) post({ t: 'reply', id: s.id, ok: false, ...f });
    if (closing !== null) {
      const c = closing;
      closing = null;
      post({ t: 'reply', id: c.id, ok: false, ...f });
    }
  }
  await answerSyncs();
  running = false;
  if (closing !== null && closing.upTo <= ingested && backlog.length === 0) {
    await finishClose(closing);
    return;
  }
  const waiting = syncs.length > 0 || closing !== null;
  if (failures > 0) {
    schedule(Math.min(1000, 10 * 2 ** Math.min(failures, 7)));
  } else if (added > 0 || waiting) {
    emptyPolls = 0;
    schedule(waiting && added === 0 ? 1 : ACTIVE_POLL_MS);
  } else if (++emptyPolls === 4) {
    post({ t: 'idle', seq: ingested });
    schedule(500);
  } else schedule(emptyPolls > 4 ? 500 : 2);
}

function schedule(ms: number): void {
  if (timer !== null) clearTimeout(timer);
  timer = setTimeout(() => void cycle(), ms);
}

function now(): void {
  emptyPolls = 0;
  if (running) return; // the running cycle reschedules itself
  if (timer !== null) clearTimeout(timer);
  timer = null;
  void cycle();
}

port.on('message', (m: ToWriter) => {
  if (m.t === 'sync') syncs.push(m);
  else if (m.t === 'close') closing = m;
  now();
});
post({ t: 'ready' });
schedule(2);
