/**
 * The audit writer. `append` resolves only after the record's transaction has committed; every
 * append queued while a commit is pending joins the next one (group commit), so N concurrent
 * sessions cost one sync, not N. Any failure rejects with SLUICE_AUDIT_UNAVAILABLE and the caller
 * refuses the command (fail closed, DESIGN.md principle 1).
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { SluiceError } from '../errors.js';
import type { SluiceConfig } from '../config/load-config.js';
import { buildDraft, type AuditDraft, type AuditEventInput } from './event.js';
import { hashLeaf, MerkleFrontier } from './merkle.js';
import { joinRecordBody, recordBodyParts, type RecordBodyParts } from './record-json.js';
import { openAuditStore, resolveAuditSettings, type AuditSettings } from './open-store.js';
import { formatCheckpoint, signNote, type NoteSigner } from './signed-note.js';
import { createSigningKey, loadSigningKey, witnessPath } from './signing-key.js';
import type { AuditStore, BatchWrite, LogHead, StoredCheckpoint, StoredEvent } from './store/types.js';
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
  append(event: AuditEventInput): Promise<AuditAppendResult>;
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
   * Call `listener` with the last committed seq after every commit that added records (audit
   * streams wake on it instead of polling). It runs after the appends of that commit resolved and
   * must not throw or block: it is never on the command path. Returns the unsubscribe function.
   */
  onCommit(listener: (lastSeq: number) => void): () => void;
  /** Flush pending appends, write a final checkpoint and close the store. */
  close(): Promise<void>;
}

export interface AuditLogDeps {
  /** Masks free text (command text, errors, previews, details) before it is stored. */
  readonly mask: (text: string) => string;
  /** ms since epoch; injected so tests control timestamps. */
  readonly clock?: () => number;
  /** Node name stamped on records; default `config.node`. */
  readonly node?: string;
  /** An already-open store (tests, or sharing one connection). */
  readonly store?: AuditStore;
  /** SQLite lock wait before an append fails (default 5000 ms). */
  readonly busyTimeoutMs?: number;
}

/** A prepared record: everything but `seq` and `prev`, which the commit assigns. */
interface Prepared {
  readonly draft: AuditDraft;
  readonly body: RecordBodyParts;
}

interface Pending extends Prepared {
  readonly resolve: (r: AuditAppendResult) => void;
  readonly reject: (e: unknown) => void;
}

/** Cap on records per transaction, so one commit never holds the write lock for long. */
const MAX_BATCH = 2000;
const ZERO_HASH = '0'.repeat(64);

export async function openAuditLog(config: SluiceConfig, deps: AuditLogDeps): Promise<AuditLog> {
  if (typeof deps.mask !== 'function') throw new TypeError('openAuditLog: deps.mask is required');
  const settings = resolveAuditSettings(config);
  const store = deps.store ?? (await openAuditStore(config, deps.busyTimeoutMs !== undefined ? { busyTimeoutMs: deps.busyTimeoutMs } : {}));
  try {
    const logId = await store.initMeta('log_id', randomBytes(8).toString('hex'));
    const origin = await store.initMeta('origin', settings.origin ?? `sluice.local/audit/${logId}`);
    const signer = await loadOrCreateSigner(store, settings, deps.node ?? config.node);
    return new GroupCommitLog(store, settings, signer, origin, { ...deps, node: deps.node ?? config.node });
  } catch (err) {
    if (deps.store === undefined) await store.close().catch(() => {});
    if (err instanceof SluiceError) throw err;
    throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store ${store.location} is unavailable`, { cause: err });
  }
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
  readonly #settings: AuditSettings;
  readonly #signer: NoteSigner;
  readonly #mask: (text: string) => string;
  readonly #clock: () => number;
  readonly #node: string;
  #queue: Pending[] = [];
  #scheduled = false;
  #flushing: Promise<void> | null = null;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #commitListeners = new Set<(lastSeq: number) => void>();

  constructor(store: AuditStore, settings: AuditSettings, signer: NoteSigner, origin: string, deps: AuditLogDeps) {
    this.store = store;
    this.origin = origin;
    this.#settings = settings;
    this.#signer = signer;
    this.#mask = deps.mask;
    this.#clock = deps.clock ?? Date.now;
    this.#node = deps.node ?? 'sluice';
    if (settings.checkpointIntervalMs > 0) {
      this.#timer = setInterval(() => {
        this.checkpoint().catch(() => {
          // The next append reports the store failure to its caller; a timer has no one to tell.
        });
      }, settings.checkpointIntervalMs);
      this.#timer.unref();
    }
  }

  append(event: AuditEventInput): Promise<AuditAppendResult> {
    if (this.#closed) return Promise.reject(new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit log is closed'));
    let draft: AuditDraft;
    let body: RecordBodyParts;
    try {
      const ts = this.#clock();
      draft = buildDraft(event, {
        mask: this.#mask,
        node: this.#node,
        ts,
        id: newUlid(ts),
        previewRows: this.#settings.previewRows,
        previewBytes: this.#settings.previewBytes,
      });
      // Serialised here, outside the commit: the transaction only splices in seq and prev.
      body = recordBodyParts(draft);
    } catch (err) {
      if (err instanceof TypeError) return Promise.reject(err);
      // The masker failing is not the caller's bug, but the record cannot be stored safely.
      return Promise.reject(new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit record could not be prepared', { cause: err }));
    }
    return new Promise<AuditAppendResult>((resolve, reject) => {
      this.#queue.push({ draft, body, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing !== null) return;
    this.#scheduled = true;
    const run = (): void => {
      this.#scheduled = false;
      void this.#flush();
    };
    // setImmediate gathers every append made in this turn of the event loop into one commit.
    if (this.#settings.commitWindowMs > 0) setTimeout(run, this.#settings.commitWindowMs);
    else setImmediate(run);
  }

  #flush(): Promise<void> {
    if (this.#flushing !== null) return this.#flushing;
    this.#flushing = (async () => {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          const written = await this.store.appendBatch((head) => this.#build(head, batch, false));
          this.#afterCommit(written);
          const events = written?.events ?? [];
          batch.forEach((p, i) => {
            const e = events[i] as StoredEvent;
            p.resolve({ seq: e.seq, id: e.id });
          });
          const last = events[events.length - 1];
          if (last !== undefined) this.#notifyCommit(last.seq);
        } catch (err) {
          const e = err instanceof SluiceError ? err : new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store ${this.store.location} is unavailable`, { cause: err });
          const failure = e.code === 'SLUICE_AUDIT_UNAVAILABLE' ? e : new SluiceError('SLUICE_AUDIT_UNAVAILABLE', e.message, { cause: e });
          for (const p of batch) p.reject(failure);
        }
      }
    })().finally(() => {
      this.#flushing = null;
      if (this.#queue.length > 0) this.#schedule();
    });
    return this.#flushing;
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

  /** Pure: from the committed head and drafts, the rows to write. Runs inside the store's transaction. */
  #build(head: LogHead, prepared: readonly Prepared[], forceCheckpoint: boolean): BatchWrite | null {
    const frontier = MerkleFrontier.deserialize(head.size, head.frontier);
    let prev = head.lastHash;
    const events: StoredEvent[] = [];
    for (const { draft: d, body: parts } of prepared) {
      const seq = frontier.size + 1;
      // Byte-identical to canonicalJson({ ...d, seq, prev }), which is what verify recomputes.
      const body = joinRecordBody(parts, seq, prev === null ? ZERO_HASH : prev.toString('hex'));
      const hash = hashLeaf(body);
      frontier.append(hash);
      prev = hash;
      events.push({
        seq,
        id: d.id,
        ts: d.ts,
        type: d.type,
        sessionId: d.session ?? null,
        subject: d.identity?.subject ?? null,
        connection: d.connection ?? null,
        outcome: d.outcome ?? null,
        body,
        hash,
      });
    }
    const now = this.#clock();
    const size = frontier.size;
    // Every N records here; every T by the interval timer, which forces one.
    const due = size > head.checkpointSize && (forceCheckpoint || size - head.checkpointSize >= this.#settings.checkpointEvery);
    if (events.length === 0 && !due) return null;
    let checkpoint: StoredCheckpoint | undefined;
    if (due) {
      const root = frontier.root();
      const note = signNote(formatCheckpoint({ origin: this.origin, size, root, extensions: [] }), this.#signer);
      checkpoint = { size, ts: now, root, note };
    }
    return {
      events,
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      head: {
        size,
        lastHash: prev,
        frontier: frontier.serialize(),
        checkpointSize: checkpoint?.size ?? head.checkpointSize,
        checkpointTs: checkpoint?.ts ?? head.checkpointTs,
      },
    };
  }

  #afterCommit(written: BatchWrite | null): void {
    if (written?.checkpoint === undefined) return;
    // Best effort: the witness copy beside the key catches a store truncated together with its
    // checkpoints. The store's copy is authoritative for the writer.
    try {
      const path = witnessPath(this.#settings.signingKeyPath);
      writeFileSync(`${path}.tmp`, written.checkpoint.note, { mode: 0o644 });
      renameSync(`${path}.tmp`, path);
    } catch {
      // ignore: verify still has the store's checkpoints
    }
  }

  async checkpoint(): Promise<StoredCheckpoint | null> {
    if (this.#closed && this.#flushing === null) return null;
    await this.#flush();
    const written = await this.store.appendBatch((head) => this.#build(head, [], true));
    this.#afterCommit(written);
    return written?.checkpoint ?? null;
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
    try {
      await this.#flush();
      const written = await this.store.appendBatch((head) => this.#build(head, [], true));
      this.#afterCommit(written);
    } finally {
      await this.store.close();
    }
  }
}
