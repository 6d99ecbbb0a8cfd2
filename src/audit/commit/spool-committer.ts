/**
 * SQLite commits through the spool (`spool.ts`): on the event loop, a commit assigns seqs and
 * writes the batch's lines with one `write()` (then `fdatasync`, grouped, at `synchronous: full`);
 * the writer thread (`ingest-thread.ts`) ingests them into SQLite. A worker round trip costs
 * ~80 µs on a shared VM, so nothing on the statement path waits for the thread: only reads through
 * the log, `checkpoint()` and `close()` do.
 *
 * Fail closed: a failed write is truncated away and its appends rejected (if the truncate fails
 * too, every later append is refused); a writer thread that stopped or fell too far behind makes
 * appends fail instead of letting the spool grow without bound.
 */
import { fdatasync, fdatasyncSync, ftruncateSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { SluiceError } from '../../errors.js';
import type { StoredCheckpoint } from '../store/types.js';
import type { CommitOutcome, Committer, PreparedRecord } from './batch.js';
import { closeSegment, encodeLine, openSegment, SEGMENT_BYTES, type SegmentFile, type WriterLock } from './spool.js';
import { publishWritten, writtenView, type FromWriter, type ToWriter, type WriterThreadData } from './thread-protocol.js';

const ENTRY = new URL('./writer-thread.mjs', import.meta.url);
/** Writer thread restarts allowed within a minute before appends are refused. */
const RESTARTS_PER_MINUTE = 5;
/** Records spooled but not yet in the store before appends are refused (the store is stuck). */
export const MAX_BACKLOG = 200_000;
/**
 * Past this many records not yet in the store, a commit is still written to the spool but
 * resolves only once the writer thread caught up to within it: sustained load above what SQLite
 * ingests slows the commands down instead of growing the spool towards MAX_BACKLOG.
 */
export const SOFT_BACKLOG = 20_000;

interface Reply {
  readonly resolve: (m: Extract<FromWriter, { t: 'reply'; ok: true }>) => void;
  readonly reject: (e: SluiceError) => void;
}

interface VisibleWaiter {
  readonly seq: number;
  /** A read gives up on the writer's first failed attempt; a held commit waits out retries. */
  readonly read: boolean;
  readonly resolve: () => void;
  readonly reject: (e: SluiceError) => void;
}

/** An error the writer thread reported: a bad signing key stays a config error; anything else means the log is unavailable. */
function fromWriter(code: string, message: string): SluiceError {
  return new SluiceError(code === 'SLUICE_CONFIG_INVALID' ? 'SLUICE_CONFIG_INVALID' : 'SLUICE_AUDIT_UNAVAILABLE', message);
}

function unavailable(message: string): SluiceError {
  return new SluiceError('SLUICE_AUDIT_UNAVAILABLE', message);
}

export interface SpoolCommitterOptions extends Omit<WriterThreadData, 'written'> {
  /** The first seq to write (committed head + 1, after recovery). */
  readonly nextSeq: number;
  /** Held for the committer's life; released when it closes. */
  readonly lock: WriterLock;
  /** Records spooled but not in the store before appends are refused (default MAX_BACKLOG). */
  readonly maxBacklog?: number;
  /** Records not in the store past which commits wait for the writer (default SOFT_BACKLOG). */
  readonly softBacklog?: number;
  /** Operator log for writer-thread trouble (restarts, failed ingests); one line per new problem. */
  readonly log?: (line: string) => void;
  /** Test seam: the write call (default `fs.writeSync`). */
  readonly write?: (fd: number, buf: Buffer, offset: number, length: number, position: number) => number;
  /** Test seam: the grouped fdatasync at `synchronous: full` (default `fs.fdatasync`). */
  readonly fdatasync?: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;
}

class SpoolCommitter implements Committer {
  readonly maxInFlight = Number.POSITIVE_INFINITY;
  readonly #o: SpoolCommitterOptions;
  readonly #write: NonNullable<SpoolCommitterOptions['write']>;
  readonly #fdatasync: NonNullable<SpoolCommitterOptions['fdatasync']>;
  readonly #replies = new Map<number, Reply>();
  readonly #visibleWaiters: VisibleWaiter[] = [];
  readonly #written: SharedArrayBuffer;
  readonly #writtenView: BigInt64Array;
  #seg: SegmentFile;
  #nextSeq: number;
  #visibleSeq: number;
  #worker: Worker;
  #workerGone: SluiceError | null = null;
  #idle = false;
  #broken: SluiceError | null = null;
  #closed = false;
  #nextId = 1;
  #listener: ((lastSeq: number) => void) | undefined;
  #restarts: number[] = [];
  #lastError: string | undefined;
  // synchronous: full — one fdatasync at a time; writes made meanwhile wait for the next one.
  #syncing = false;
  /**
   * The segment the fdatasync in flight is on. A rotation meanwhile syncs and would close it: its
   * descriptor stays open until that fdatasync returns (closed under it, the call failed with
   * EBADF and refused the commands it covered, or could have synced a reused descriptor).
   */
  #syncSeg: SegmentFile | undefined;
  #closeAfterSync: SegmentFile[] = [];
  #syncWaiters: { readonly resolve: () => void; readonly reject: (e: SluiceError) => void }[] = [];

  constructor(o: SpoolCommitterOptions, written: SharedArrayBuffer, worker: Worker) {
    this.#o = o;
    this.#written = written;
    this.#writtenView = writtenView(written);
    this.#write = o.write ?? writeSync;
    this.#fdatasync = o.fdatasync ?? fdatasync;
    this.#nextSeq = o.nextSeq;
    this.#visibleSeq = o.nextSeq - 1;
    this.#seg = openSegment(o.dir, o.nextSeq, o.synchronous === 'full');
    publishWritten(this.#writtenView, o.nextSeq, 0);
    this.#worker = worker;
    this.#attach(worker);
  }

  #attach(worker: Worker): void {
    worker.on('message', (m: FromWriter) => {
      if (worker === this.#worker) this.#onMessage(m);
    });
    worker.once('exit', (code) => this.#onExit(worker, code));
  }

  /**
   * The writer thread stopped. Expected at close; otherwise its requests fail and a new writer
   * starts, resuming from the store's committed head (the spool still holds every record), so a
   * crash costs a few ms of ingestion, not the gateway. More than RESTARTS_PER_MINUTE in a minute
   * and appends are refused until restart.
   */
  #onExit(worker: Worker, code: number): void {
    if (worker !== this.#worker || this.#closed) return;
    const err = unavailable(`audit writer thread stopped (exit code ${code})`);
    for (const r of this.#replies.values()) r.reject(err);
    this.#replies.clear();
    for (let i = this.#visibleWaiters.length - 1; i >= 0; i--) {
      const w = this.#visibleWaiters[i] as VisibleWaiter;
      if (!w.read) continue; // held commits wait for the next writer
      this.#visibleWaiters.splice(i, 1);
      w.reject(err);
    }
    const now = Date.now();
    this.#restarts = this.#restarts.filter((t) => now - t < 60_000);
    if (this.#restarts.length >= RESTARTS_PER_MINUTE) {
      this.#workerGone = unavailable(`audit writer thread stopped ${RESTARTS_PER_MINUTE + 1} times within a minute (last exit code ${code}); restart the gateway`);
      this.#o.log?.(`audit: ${this.#workerGone.message}; every command is refused until then`);
      this.#failWaiters(this.#workerGone);
      return;
    }
    this.#o.log?.(`audit: the writer thread stopped (exit code ${code}); starting a new one`);
    this.#restarts.push(now);
    this.#idle = false;
    this.#worker = spawnWriter(this.#o, this.#written);
    this.#attach(this.#worker);
    this.#maybeUnref();
  }

  /** Stop the writer thread abruptly, as a crash would (tests; the committer starts a new one). */
  async terminateWriter(): Promise<void> {
    await this.#worker.terminate();
  }

  #onMessage(m: FromWriter): void {
    switch (m.t) {
      case 'visible': {
        if (this.#lastError !== undefined) this.#o.log?.(`audit: the writer thread ingests again (through record ${m.seq})`);
        this.#lastError = undefined;
        this.#visibleSeq = Math.max(this.#visibleSeq, m.seq);
        this.#releaseVisible();
        this.#listener?.(m.seq);
        return;
      }
      case 'idle':
        this.#idle = true;
        // Written after the writer last looked: wake it now rather than on the next write.
        if (m.seq < this.#nextSeq - 1) this.#wake();
        return;
      case 'error': {
        const e = new SluiceError('SLUICE_AUDIT_UNAVAILABLE', m.message);
        // Retries repeat the same error every backoff step: say it once, and again when it changes.
        if (m.message !== this.#lastError) this.#o.log?.(`audit: the writer thread cannot ingest the spool into ${this.#o.path}: ${m.message} (retrying; records stay in the spool)`);
        this.#lastError = m.message;
        for (let i = this.#visibleWaiters.length - 1; i >= 0; i--) {
          const w = this.#visibleWaiters[i] as VisibleWaiter;
          if (!w.read) continue;
          this.#visibleWaiters.splice(i, 1);
          w.reject(e);
        }
        this.#maybeUnref();
        return;
      }
      case 'reply': {
        const r = this.#replies.get(m.id);
        if (r === undefined) return;
        this.#replies.delete(m.id);
        this.#maybeUnref();
        if (m.ok) r.resolve(m);
        else r.reject(fromWriter(m.code, m.message));
        return;
      }
      default:
        return;
    }
  }

  #failWaiters(e: SluiceError): void {
    for (const r of this.#replies.values()) r.reject(e);
    this.#replies.clear();
    for (const w of this.#visibleWaiters.splice(0)) w.reject(e);
  }

  #releaseVisible(): void {
    for (let i = this.#visibleWaiters.length - 1; i >= 0; i--) {
      const w = this.#visibleWaiters[i] as VisibleWaiter;
      if (w.seq <= this.#visibleSeq) {
        this.#visibleWaiters.splice(i, 1);
        w.resolve();
      }
    }
    this.#maybeUnref();
  }

  /** The writer keeps the process alive only while someone waits on it. */
  #maybeUnref(): void {
    if (this.#replies.size === 0 && this.#visibleWaiters.length === 0) this.#worker.unref();
  }

  #wake(): void {
    if (this.#workerGone !== null) return;
    this.#idle = false;
    this.#worker.postMessage({ t: 'wake' } satisfies ToWriter);
  }

  #request(m: ToWriter & { id: number }): Promise<Extract<FromWriter, { t: 'reply'; ok: true }>> {
    if (this.#workerGone !== null) return Promise.reject(this.#workerGone);
    return new Promise((resolve, reject) => {
      this.#replies.set(m.id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage(m);
    });
  }

  commit(records: readonly PreparedRecord[], opts: { readonly now: number; readonly force: boolean }): Promise<CommitOutcome | null> {
    if (this.#closed) return Promise.reject(unavailable('audit log is closed'));
    if (records.length === 0) return this.#seal(opts.now, opts.force);
    if (this.#broken !== null) return Promise.reject(this.#broken);
    if (this.#workerGone !== null) return Promise.reject(this.#workerGone);
    if (this.#nextSeq - 1 - this.#visibleSeq + records.length > (this.#o.maxBacklog ?? MAX_BACKLOG)) {
      return Promise.reject(unavailable(`audit store ${this.#o.path} is ${this.#nextSeq - 1 - this.#visibleSeq} records behind the spool; refusing more until it catches up`));
    }
    const firstSeq = this.#nextSeq;
    let text = '';
    for (let i = 0; i < records.length; i++) text += encodeLine(firstSeq + i, records[i] as PreparedRecord);
    const buf = Buffer.from(text, 'utf8');
    const seg = this.#seg;
    const start = seg.offset;
    try {
      for (let off = 0; off < buf.length; ) off += this.#write(seg.fd, buf, off, buf.length - off, start + off);
    } catch (err) {
      return Promise.reject(this.#undo(seg, start, err));
    }
    seg.offset += buf.length;
    publishWritten(this.#writtenView, seg.firstSeq, seg.offset);
    this.#nextSeq += records.length;
    const outcome: CommitOutcome = { firstSeq, lastSeq: this.#nextSeq - 1 };
    if (this.#idle) this.#wake();
    if (seg.offset >= (this.#o.segmentBytes ?? SEGMENT_BYTES)) this.#rotate();
    const soft = this.#o.softBacklog ?? SOFT_BACKLOG;
    const behind = this.#nextSeq - 1 - this.#visibleSeq;
    const caughtUp = behind > soft ? this.#visibleAt(this.#nextSeq - 1 - soft, false) : undefined;
    if (this.#o.synchronous !== 'full') return caughtUp === undefined ? Promise.resolve(outcome) : caughtUp.then(() => outcome);
    return Promise.all([this.#durable(), caughtUp]).then(() => outcome);
  }

  /** Cut a failed write back off the segment so the spool stays whole; if that fails, refuse from now on. */
  #undo(seg: SegmentFile, start: number, err: unknown): SluiceError {
    const e = unavailable(`audit spool ${seg.path} could not be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    try {
      ftruncateSync(seg.fd, start);
    } catch {
      this.#broken = unavailable(`audit spool ${seg.path} is damaged by a failed write and could not be repaired; restart the gateway`);
    }
    return e;
  }

  #rotate(): void {
    const old = this.#seg;
    try {
      this.#seg = openSegment(this.#o.dir, this.#nextSeq, this.#o.synchronous === 'full');
    } catch {
      return; // keep appending to the current segment; try again after the next write
    }
    publishWritten(this.#writtenView, this.#seg.firstSeq, 0);
    if (this.#o.synchronous === 'full') {
      try {
        fdatasyncSync(old.fd);
      } catch {
        // the next fdatasync on the new segment reports the device's state
      }
    }
    if (this.#syncing && this.#syncSeg === old) this.#closeAfterSync.push(old);
    else closeSegment(old);
  }

  #durable(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#syncWaiters.push({ resolve, reject });
      if (!this.#syncing) this.#startSync();
    });
  }

  #startSync(): void {
    this.#syncing = true;
    const group = this.#syncWaiters.splice(0);
    const seg = this.#seg;
    this.#syncSeg = seg;
    this.#fdatasync(seg.fd, (err) => {
      this.#syncing = false;
      this.#syncSeg = undefined;
      for (const old of this.#closeAfterSync.splice(0)) closeSegment(old);
      for (const w of group) {
        if (err === null) w.resolve();
        else w.reject(unavailable(`audit spool ${seg.path} could not be synced (${err.code ?? err.message})`));
      }
      if (this.#syncWaiters.length > 0) this.#startSync();
    });
  }

  async #seal(now: number, force: boolean): Promise<CommitOutcome | null> {
    const upTo = this.#nextSeq - 1;
    if (this.#idle) this.#wake();
    const r = await this.#request({ t: 'sync', id: this.#nextId++, upTo, force, now });
    if (r.checkpoint === undefined) return null;
    return { firstSeq: upTo + 1, lastSeq: upTo, checkpoint: revive(r.checkpoint) };
  }

  visible(): Promise<void> {
    return this.#visibleAt(this.#nextSeq - 1, true);
  }

  /** Resolves once records through `seq` are in the store. */
  #visibleAt(seq: number, read: boolean): Promise<void> {
    if (seq <= this.#visibleSeq) return Promise.resolve();
    if (this.#workerGone !== null) return Promise.reject(this.#workerGone);
    return new Promise((resolve, reject) => {
      this.#visibleWaiters.push({ seq, read, resolve, reject });
      this.#worker.ref();
      if (this.#idle) this.#wake();
    });
  }

  onVisible(listener: (lastSeq: number) => void): void {
    this.#listener = listener;
  }

  writerBusyMs(): number {
    return this.#workerGone === null ? this.#worker.performance.eventLoopUtilization().active : 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#worker;
    try {
      if (this.#workerGone === null) {
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        await this.#request({ t: 'close', id: this.#nextId++, upTo: this.#nextSeq - 1 }).catch(() => undefined);
        // The writer stops by itself once its store is closed; terminate covers one that hung.
        const timer = setTimeout(() => void w.terminate(), 10_000);
        await exited;
        clearTimeout(timer);
      }
    } finally {
      closeSegment(this.#seg);
      for (const old of this.#closeAfterSync.splice(0)) closeSegment(old);
      this.#o.lock.release();
    }
  }
}

function revive(cp: StoredCheckpoint): StoredCheckpoint {
  const root = cp.root as Uint8Array;
  return { ...cp, root: Buffer.from(root.buffer, root.byteOffset, root.byteLength) };
}

/**
 * Start the writer thread (it opens the store and loads the signing key) and open the first
 * segment at `nextSeq`. Rejects with SLUICE_AUDIT_UNAVAILABLE if the thread cannot start.
 */
function spawnWriter(o: SpoolCommitterOptions, written: SharedArrayBuffer): Worker {
  const data: WriterThreadData = { path: o.path, dir: o.dir, synchronous: o.synchronous, busyTimeoutMs: o.busyTimeoutMs, signingKeyPath: o.signingKeyPath, origin: o.origin, checkpointEvery: o.checkpointEvery, written, ...(o.segmentBytes !== undefined ? { segmentBytes: o.segmentBytes } : {}) };
  return new Worker(ENTRY, { workerData: data });
}

export type SpoolCommitterHandle = Committer & { terminateWriter(): Promise<void> };

export async function startSpoolCommitter(o: SpoolCommitterOptions): Promise<SpoolCommitterHandle> {
  // Nothing published yet reads as "no bytes written for good" in any segment.
  const written = new SharedArrayBuffer(16);
  const worker = spawnWriter(o, written);
  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: FromWriter): void => {
      if (m.t === 'ready') {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve();
      } else if (m.t === 'fatal') reject(fromWriter(m.code, m.message));
    };
    const onExit = (code: number): void => reject(unavailable(`audit writer thread exited during start (code ${code})`));
    worker.on('message', onMessage);
    worker.once('exit', onExit);
  });
  let c: SpoolCommitter;
  try {
    c = new SpoolCommitter(o, written, worker);
  } catch (err) {
    await worker.terminate();
    throw unavailable(`audit spool ${o.dir} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // Held only while someone waits on it: an idle writer does not keep the process alive.
  worker.unref();
  return c;
}
