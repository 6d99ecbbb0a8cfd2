/**
 * The audit writer. `append` resolves only after the record's transaction has committed; every
 * append made in one event-loop turn, or queued while commits are outstanding, joins one commit
 * (group commit), so N concurrent sessions cost one sync, not N. Any failure rejects with
 * SLUICE_AUDIT_UNAVAILABLE and the caller refuses the command (fail closed, DESIGN.md principle 1).
 *
 * `append` builds, masks and serialises the record on the caller's thread; a `Committer` makes it
 * durable: for SQLite, one write to the spool, ingested by a writer thread that computes the hash
 * chain, Merkle tree and checkpoints (commit/spool-committer.ts); inline transactions otherwise
 * (commit/inline-committer.ts).
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { SluiceError } from '../errors.js';
import type { SluiceConfig } from '../config/load-config.js';
import { buildDraft, type AuditEventInput } from './event.js';
import { recordBodyParts } from './record-json.js';
import { openAuditStore, resolveAuditSettings, type AuditSettings } from './open-store.js';
import type { NoteSigner } from './signed-note.js';
import { createSigningKey, loadSigningKey } from './signing-key.js';
import type { AuditStore, SessionFilter, StoredCheckpoint } from './store/types.js';
import type { CommitOutcome, Committer, PreparedRecord } from './commit/batch.js';
import { inlineCommitter } from './commit/inline-committer.js';
import { startSpoolCommitter } from './commit/spool-committer.js';
import { acquireWriterLock, recoverSpool, spoolDirFor, type WriterLock } from './commit/spool.js';
import { MAX_ROWS_PER_COMMIT } from './commit/thread-protocol.js';
import { newUlid } from './ulid.js';
import { applyRetention, type RetentionResult } from './retention.js';

export interface AuditAppendResult {
  readonly seq: number;
  readonly id: string;
}

export interface AuditLog {
  /**
   * Resolves once the record is durable (group commit). Rejects with SluiceError
   * SLUICE_AUDIT_UNAVAILABLE if it cannot be written: the caller then refuses the command. A
   * malformed event (unknown type, negative count) rejects with TypeError.
   */
  append(event: AuditEventInput, options?: AppendOptions): Promise<AuditAppendResult>;
  /** Sign a checkpoint now if records were added since the last one. */
  checkpoint(): Promise<StoredCheckpoint | null>;
  /** The store, for queries in the same process (owned by the log: `close` closes it). */
  readonly store: AuditStore;
  /** Checkpoint origin line. */
  readonly origin: string;
  /**
   * AU-11: remove sealed segments older than `audit.retention` (no-op when unset) and record an
   * `audit.retention` event saying what went.
   */
  applyRetention(now?: number): Promise<RetentionResult>;
  /**
   * Call `listener` with the last seq readable from the store each time committed records become
   * readable (audit streams wake on it instead of polling). It must not throw or block: it is
   * never on the command path. Returns the unsubscribe function.
   */
  onCommit(listener: (lastSeq: number) => void): () => void;
  /** Commits and records so far (group commit shows as records > commits). */
  stats(): AuditLogStats;
  /** Resolves once every record appended so far is readable from the store, also over another connection (the sessions API's reader thread). */
  visible(): Promise<void>;
  /** Flush pending appends, write a final checkpoint and close the store. */
  close(): Promise<void>;
}

export interface AppendOptions {
  /**
   * Nothing waits on this record (a `command.result` written after the client has its answer):
   * it may wait up to DEFER_MS to share the next commit instead of causing one. Default false.
   */
  readonly defer?: boolean;
}

/** Longest a deferred record waits for a commit to join. */
export const DEFER_MS = 5;

export interface AuditLogDeps {
  /** Masks free text (command text, errors, previews, details) before it is stored. */
  readonly mask: (text: string) => string;
  /** ms since epoch; injected so tests control timestamps. */
  readonly clock?: () => number;
  /** Node name stamped on records; default `config.node`. */
  readonly node?: string;
  /** An already-open store (tests, or sharing one connection); commits then run inline. */
  readonly store?: AuditStore;
  /** SQLite lock wait before an append fails (default 5000 ms). */
  readonly busyTimeoutMs?: number;
  /**
   * How SQLite commits: `thread` (default: each commit is one write to the spool on this thread and
   * a writer thread ingests the spool into SQLite) or `inline` (SQLite transactions on this thread:
   * one-off CLI writes that should not start a thread). PostgreSQL and injected stores always
   * commit inline.
   */
  readonly writer?: 'thread' | 'inline';
  /** Operator log for trouble off the command path (the writer thread restarting or failing). */
  readonly log?: (line: string) => void;
}

export interface AuditLogStats {
  /** Transactions that wrote records or a checkpoint. */
  readonly commits: number;
  /** Records committed. */
  readonly records: number;
  /** ms the SQLite writer thread has been busy ingesting the spool (absent when commits run inline). */
  readonly writerBusyMs?: number;
}

interface Pending {
  readonly record: PreparedRecord;
  readonly deferred: boolean;
  readonly resolve: (r: AuditAppendResult) => void;
  readonly reject: (e: unknown) => void;
}

/** Cap on records per commit call, so one commit never holds the write lock for long. */
const MAX_BATCH = MAX_ROWS_PER_COMMIT;

export async function openAuditLog(config: SluiceConfig, deps: AuditLogDeps): Promise<AuditLog> {
  if (typeof deps.mask !== 'function') throw new TypeError('openAuditLog: deps.mask is required');
  const settings = resolveAuditSettings(config);
  const busy = deps.busyTimeoutMs !== undefined ? { busyTimeoutMs: deps.busyTimeoutMs } : {};
  const store = deps.store ?? (await openAuditStore(config, busy));
  let committer: Committer | undefined;
  let lock: WriterLock | undefined;
  try {
    const logId = await store.initMeta('log_id', randomBytes(8).toString('hex'));
    const origin = await store.initMeta('origin', settings.origin ?? `sluice.local/audit/${logId}`);
    const signer = await loadOrCreateSigner(store, settings, deps.node ?? config.node);
    const common = { origin, signingKeyPath: settings.signingKeyPath, checkpointEvery: settings.checkpointEvery };
    if (deps.store !== undefined || !('sqlite' in config.store)) {
      committer = inlineCommitter(store, { ...common, signer });
      return new GroupCommitLog(store, committer, settings, origin, { ...deps, node: deps.node ?? config.node });
    }
    // SQLite: this process becomes the log's one writer, and first moves into the store whatever a
    // writer that stopped left in the spool.
    const path = config.store.sqlite;
    const dir = spoolDirFor(path);
    lock = acquireWriterLock(dir);
    await recoverSpool(store, dir, { ...common, signer, now: (deps.clock ?? Date.now)(), force: false }, settings.signingKeyPath);
    committer =
      deps.writer === 'inline'
        ? inlineCommitter(store, { ...common, signer, lock })
        : await startSpoolCommitter({ ...common, path, dir, lock, synchronous: settings.synchronous, busyTimeoutMs: deps.busyTimeoutMs ?? 5000, nextSeq: (await store.readHead()).size + 1, ...(deps.log !== undefined ? { log: deps.log } : {}) });
    return new GroupCommitLog(store, committer, settings, origin, { ...deps, node: deps.node ?? config.node });
  } catch (err) {
    if (committer !== undefined) await committer.close().catch(() => {});
    else lock?.release();
    if (deps.store === undefined) await store.close().catch(() => {});
    if (err instanceof SluiceError) throw err;
    throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store ${store.location} is unavailable`, { cause: err });
  }
}

/**
 * The log's store as its users see it: every read first commits what is queued (deferred records
 * too) and waits until it is in the store (the spool is ingested a few ms behind), so reading
 * right after an append finds it.
 */
function readsAfterAppends(store: AuditStore, visible: () => Promise<void>): AuditStore {
  const after =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      await visible();
      return fn(...a);
    };
  return {
    kind: store.kind,
    location: store.location,
    getMeta: (k) => store.getMeta(k),
    initMeta: (k, v) => store.initMeta(k, v),
    appendBatch: (b) => store.appendBatch(b),
    readHead: after(() => store.readHead()),
    readEvents: after((s: number, l: number) => store.readEvents(s, l)),
    readEventsSince: after((ts: number, s: number, l: number) => store.readEventsSince(ts, s, l)),
    findEvent: after((id: string) => store.findEvent(id)),
    readLeafHashes: after((f: number, t: number) => store.readLeafHashes(f, t)),
    readCheckpoints: after(() => store.readCheckpoints()),
    readPruned: after(() => store.readPruned()),
    prune: (seg) => store.prune(seg),
    sessionStarts: after((f: SessionFilter) => store.sessionStarts(f)),
    sessionStats: after((ids: readonly string[]) => store.sessionStats(ids)),
    sessionEnds: after((ids: readonly string[]) => store.sessionEnds(ids)),
    sessionEvents: after((id: string, s: number, l: number) => store.sessionEvents(id, s, l)),
    lastOfType: after((type: string) => store.lastOfType(type)),
    getCursor: (n) => store.getCursor(n),
    setCursor: (n, s) => store.setCursor(n, s),
    close: () => store.close(),
  };
}

async function loadOrCreateSigner(store: AuditStore, settings: AuditSettings, node: string): Promise<NoteSigner> {
  if (existsSync(settings.signingKeyPath)) return loadSigningKey(settings.signingKeyPath);
  const head = await store.readHead();
  // A log that already has records lost its key: a fresh key could not vouch for that history.
  if (head.size > 0) {
    throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit signing key ${settings.signingKeyPath} is missing but the log already has ${head.size} records; restore the key`);
  }
  const name = `sluice-audit-${node}`.replace(/[\s+]/g, '_');
  return createSigningKey(settings.signingKeyPath, name);
}

class GroupCommitLog implements AuditLog {
  readonly store: AuditStore;
  readonly origin: string;
  readonly #committer: Committer;
  readonly #settings: AuditSettings;
  readonly #mask: (text: string) => string;
  readonly #clock: () => number;
  readonly #node: string;
  #queue: Pending[] = [];
  #scheduled = false;
  #deferTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #commits = 0;
  #records = 0;
  readonly #commitListeners = new Set<(lastSeq: number) => void>();

  constructor(store: AuditStore, committer: Committer, settings: AuditSettings, origin: string, deps: AuditLogDeps) {
    this.store = readsAfterAppends(store, () => this.visible());
    this.origin = origin;
    this.#committer = committer;
    this.#settings = settings;
    this.#mask = deps.mask;
    this.#clock = deps.clock ?? Date.now;
    this.#node = deps.node ?? 'sluice';
    committer.onVisible((lastSeq) => this.#notifyCommit(lastSeq));
    if (settings.checkpointIntervalMs > 0) {
      this.#timer = setInterval(() => {
        this.checkpoint().catch(() => {
          // The next append reports the store failure to its caller; a timer has no one to tell.
        });
      }, settings.checkpointIntervalMs);
      this.#timer.unref();
    }
  }

  append(event: AuditEventInput, options: AppendOptions = {}): Promise<AuditAppendResult> {
    if (this.#closed) return Promise.reject(new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit log is closed'));
    let record: PreparedRecord;
    try {
      const ts = this.#clock();
      const d = buildDraft(event, {
        mask: this.#mask,
        node: this.#node,
        ts,
        id: newUlid(ts),
        previewRows: this.#settings.previewRows,
        previewBytes: this.#settings.previewBytes,
      });
      // Serialised here, outside the commit: the transaction only splices in seq and prev.
      const body = recordBodyParts(d);
      record = {
        id: d.id,
        ts: d.ts,
        type: d.type,
        sessionId: d.session ?? null,
        subject: d.identity?.subject ?? null,
        connection: d.connection ?? null,
        outcome: d.outcome ?? null,
        head: body.head,
        mid: body.mid,
        tail: body.tail,
      };
    } catch (err) {
      if (err instanceof TypeError) return Promise.reject(err);
      // The masker failing is not the caller's bug, but the record cannot be stored safely.
      return Promise.reject(new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit record could not be prepared', { cause: err }));
    }
    const deferred = options.defer === true;
    return new Promise<AuditAppendResult>((resolve, reject) => {
      this.#queue.push({ record, deferred, resolve, reject });
      this.#schedule(!deferred);
    });
  }

  /** Commit soon: at the end of this event-loop turn when something waits (`urgent`), else within DEFER_MS. */
  #schedule(urgent: boolean): void {
    // A commit in flight at the limit reschedules when it completes.
    if (this.#scheduled || this.#inFlight >= this.#committer.maxInFlight) return;
    if (!urgent) {
      this.#deferTimer ??= setTimeout(this.#run, DEFER_MS);
      return;
    }
    this.#scheduled = true;
    // setImmediate gathers every append made in this turn of the event loop into one commit.
    if (this.#settings.commitWindowMs > 0) setTimeout(this.#run, this.#settings.commitWindowMs);
    else setImmediate(this.#run);
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    if (this.#deferTimer !== undefined) clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    this.#send(false);
  };

  /** Hand queued records to the committer: up to its in-flight limit, or all of them (`drain`). */
  #send(drain: boolean): void {
    while (this.#queue.length > 0 && (drain || this.#inFlight < this.#committer.maxInFlight)) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      this.#inFlight += 1;
      this.#committer
        .commit(
          batch.map((p) => p.record),
          { now: this.#clock(), force: false },
        )
        .then(
          (o) => {
            this.#counted(o);
            if (o === null || o.lastSeq - o.firstSeq + 1 !== batch.length) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit commit wrote a different number of records than it was given');
            batch.forEach((p, i) => p.resolve({ seq: o.firstSeq + i, id: p.record.id }));
          },
        )
        .catch((err: unknown) => {
          const failure = err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE' ? err : new SluiceError('SLUICE_AUDIT_UNAVAILABLE', err instanceof Error ? err.message : `audit store ${this.store.location} is unavailable`, { cause: err });
          for (const p of batch) p.reject(failure);
        })
        .finally(() => {
          this.#inFlight -= 1;
          if (this.#queue.length > 0) this.#schedule(this.#queue.some((p) => !p.deferred));
        });
    }
  }

  #counted(o: CommitOutcome | null): void {
    if (o === null) return;
    this.#commits += 1;
    this.#records += Math.max(0, o.lastSeq - o.firstSeq + 1);
  }

  visible(): Promise<void> {
    this.#send(true);
    return this.#committer.visible();
  }

  stats(): AuditLogStats {
    const busy = this.#committer.writerBusyMs?.();
    return { commits: this.#commits, records: this.#records, ...(busy !== undefined ? { writerBusyMs: busy } : {}) };
  }

  #notifyCommit(lastSeq: number): void {
    for (const listener of this.#commitListeners) {
      try {
        listener(lastSeq);
      } catch {
        // A listener's bug must not turn a committed record into a failed append.
      }
    }
  }

  onCommit(listener: (lastSeq: number) => void): () => void {
    this.#commitListeners.add(listener);
    return () => {
      this.#commitListeners.delete(listener);
    };
  }

  /** Send everything queued, then a forced checkpoint behind it (commits complete in order). */
  async #sealNow(): Promise<StoredCheckpoint | null> {
    this.#send(true);
    const o = await this.#committer.commit([], { now: this.#clock(), force: true });
    this.#counted(o);
    return o?.checkpoint ?? null;
  }

  async checkpoint(): Promise<StoredCheckpoint | null> {
    if (this.#closed) return null;
    return this.#sealNow();
  }

  async applyRetention(now?: number): Promise<RetentionResult> {
    const retentionMs = this.#settings.retentionMs;
    if (retentionMs === undefined) return { segments: 0, records: 0, throughSeq: 0 };
    // Seal what is pending first, so the newest old records can go in this run too.
    await this.checkpoint();
    const result = await applyRetention(this.store, { retentionMs, now: now ?? this.#clock() });
    if (result.segments > 0) {
      await this.append({ type: 'audit.retention', outcome: 'success', details: { segments: result.segments, records: result.records, throughSeq: result.throughSeq, retentionMs } });
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#deferTimer !== undefined) clearTimeout(this.#deferTimer);
    try {
      await this.#sealNow();
    } finally {
      await this.#committer.close().catch(() => {});
      await this.store.close();
    }
  }
}
