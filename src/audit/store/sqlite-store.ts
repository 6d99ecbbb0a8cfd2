/**
 * Embedded SQLite store (better-sqlite3, WAL). `synchronous=NORMAL` in WAL mode syncs the WAL at
 * checkpoints, not per commit: a committed transaction survives the process dying (kill -9), but
 * the last transactions may be lost on power failure or an OS crash. `synchronous=FULL` syncs the
 * WAL on every commit and survives power loss too; group commit amortises that sync over a batch.
 * (https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html)
 * The append path's statements are prepared once, when the store opens (one multi-row INSERT per
 * batch measured slower: spreading 10 parameters per row costs more than the per-row `run`).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SluiceError } from '../../errors.js';
import { EMPTY_HEAD, type AuditStore, type BatchWrite, type LogHead, type PrunedSegment, type SessionFilter, type SessionStat, type StoredCheckpoint, type StoredEvent } from './types.js';

export interface SqliteStoreOptions {
  readonly synchronous?: 'normal' | 'full';
  readonly busyTimeoutMs?: number;
  readonly readonly?: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  ts INTEGER NOT NULL,
  type TEXT NOT NULL,
  session_id TEXT,
  subject TEXT,
  connection TEXT,
  outcome TEXT,
  body TEXT NOT NULL,
  hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_session ON audit_events(session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_events_type_ts ON audit_events(type, ts);
CREATE INDEX IF NOT EXISTS audit_events_ts ON audit_events(ts);
CREATE TABLE IF NOT EXISTS audit_checkpoints (size INTEGER PRIMARY KEY, ts INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_pruned (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL UNIQUE, leaves BLOB NOT NULL, pruned_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, last_hash BLOB, frontier BLOB NOT NULL, checkpoint_size INTEGER NOT NULL, checkpoint_ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
  WHEN OLD.seq > COALESCE((SELECT MAX(last_seq) FROM audit_pruned), 0)
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only; retention removes only sealed segments'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_pruned_no_update BEFORE UPDATE ON audit_pruned
  BEGIN SELECT RAISE(ABORT, 'audit retention records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_pruned_no_delete BEFORE DELETE ON audit_pruned
  BEGIN SELECT RAISE(ABORT, 'audit retention records are append-only'); END;
`;

interface EventRow {
  seq: number;
  id: string;
  ts: number;
  type: string;
  session_id: string | null;
  subject: string | null;
  connection: string | null;
  outcome: string | null;
  body: string;
  hash: Buffer;
}

const EVENT_COLS = 'seq, id, ts, type, session_id, subject, connection, outcome, body, hash';

function toEvent(r: EventRow): StoredEvent {
  return { seq: r.seq, id: r.id, ts: r.ts, type: r.type, sessionId: r.session_id, subject: r.subject, connection: r.connection, outcome: r.outcome, body: r.body, hash: r.hash };
}

function unavailable(path: string, err: unknown): SluiceError {
  const code = (err as { code?: string }).code ?? 'error';
  return new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store ${path} is unavailable (${code})`, { cause: err });
}

export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): AuditStore {
  let db: Database.Database;
  try {
    if (options.readonly !== true) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    if (options.readonly !== true) {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      // Checkpoint the WAL every ~40 MB instead of every ~4 MB: a commit of the gateway's shape
      // dirties ~15 pages (one per active session in the session index), so the default ran a
      // checkpoint (and, at NORMAL, its fsyncs) inside an append every few hundred events; this
      // cut append p99 from ~3.8 ms to ~1.4 ms (bench/README-audit.md). The limit truncates a WAL
      // that outgrew it (a long reader held a checkpoint back) once it is checkpointed.
      db.pragma('wal_autocheckpoint = 10000');
      db.pragma('journal_size_limit = 67108864');
      db.exec(SCHEMA);
    }
  } catch (err) {
    throw unavailable(path, err);
  }

  const st = {
    head: db.prepare<[], { size: number; last_hash: Buffer | null; frontier: Buffer; checkpoint_size: number; checkpoint_ts: number }>(
      'SELECT size, last_hash, frontier, checkpoint_size, checkpoint_ts FROM audit_head WHERE id = 1',
    ),
    putHead: options.readonly === true ? undefined : db.prepare(
      'INSERT INTO audit_head (id, size, last_hash, frontier, checkpoint_size, checkpoint_ts) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET size = excluded.size, last_hash = excluded.last_hash, frontier = excluded.frontier, checkpoint_size = excluded.checkpoint_size, checkpoint_ts = excluded.checkpoint_ts',
    ),
    insertEvent: options.readonly === true ? undefined : db.prepare(`INSERT INTO audit_events (${EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertCheckpoint: options.readonly === true ? undefined : db.prepare('INSERT INTO audit_checkpoints (size, ts, root, note) VALUES (?, ?, ?, ?)'),
    events: db.prepare<[number, number], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`),
    eventsSince: db.prepare<[number, number, number], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE ts >= ? AND seq > ? ORDER BY seq LIMIT ?`),
    byId: db.prepare<[string], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE id = ?`),
    hashes: db.prepare<[number, number], { seq: number; hash: Buffer }>('SELECT seq, hash FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq'),
    checkpoints: db.prepare<[], StoredCheckpoint>('SELECT size, ts, root, note FROM audit_checkpoints ORDER BY size'),
    pruned: db.prepare<[], { first_seq: number; last_seq: number; leaves: Buffer; pruned_at: number }>('SELECT first_seq, last_seq, leaves, pruned_at FROM audit_pruned ORDER BY first_seq'),
    sessionEvents: db.prepare<[string, number, number], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?`),
    lastOfType: db.prepare<[string], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE type = ? ORDER BY seq DESC LIMIT 1`),
    meta: db.prepare<[string], { value: string }>('SELECT value FROM audit_meta WHERE key = ?'),
    cursor: db.prepare<[string], { seq: number }>('SELECT seq FROM audit_cursors WHERE name = ?'),
  };

  const readHeadSync = (): LogHead => {
    const h = st.head.get();
    if (h === undefined) return EMPTY_HEAD;
    return { size: h.size, lastHash: h.last_hash, frontier: h.frontier, checkpointSize: h.checkpoint_size, checkpointTs: h.checkpoint_ts };
  };

  const writable = (): void => {
    if (options.readonly === true) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store ${path} is open read-only`);
  };

  const appendTx = db.transaction((build: (head: LogHead) => BatchWrite | null): BatchWrite | null => {
    const w = build(readHeadSync());
    if (w === null) return null;
    for (const e of w.events) {
      st.insertEvent!.run(e.seq, e.id, e.ts, e.type, e.sessionId, e.subject, e.connection, e.outcome, e.body, e.hash);
    }
    for (const cp of w.checkpoints) st.insertCheckpoint!.run(cp.size, cp.ts, cp.root, cp.note);
    st.putHead!.run(w.head.size, w.head.lastHash, w.head.frontier, w.head.checkpointSize, w.head.checkpointTs);
    return w;
  });

  const pruneTx = db.transaction((seg: PrunedSegment) => {
    db.prepare('INSERT INTO audit_pruned (first_seq, last_seq, leaves, pruned_at) VALUES (?, ?, ?, ?)').run(seg.firstSeq, seg.lastSeq, seg.leaves, seg.prunedAt);
    db.prepare('DELETE FROM audit_events WHERE seq >= ? AND seq <= ?').run(seg.firstSeq, seg.lastSeq);
  });

  return {
    kind: 'sqlite',
    location: path,
    async getMeta(key) {
      return st.meta.get(key)?.value;
    },
    async initMeta(key, value) {
      writable();
      db.prepare('INSERT OR IGNORE INTO audit_meta (key, value) VALUES (?, ?)').run(key, value);
      return (st.meta.get(key) as { value: string }).value;
    },
    async appendBatch(build) {
      writable();
      try {
        // IMMEDIATE takes the write lock before reading the head, so two writer processes never fork the chain.
        return appendTx.immediate(build);
      } catch (err) {
        if (err instanceof SluiceError || err instanceof TypeError) throw err;
        throw unavailable(path, err);
      }
    },
    async readHead() {
      return readHeadSync();
    },
    async readEvents(afterSeq, limit) {
      return st.events.all(afterSeq, limit).map(toEvent);
    },
    async readEventsSince(sinceTs, afterSeq, limit) {
      return st.eventsSince.all(sinceTs, afterSeq, limit).map(toEvent);
    },
    async findEvent(id) {
      const r = st.byId.get(id);
      return r === undefined ? undefined : toEvent(r);
    },
    async readLeafHashes(fromSeq, toSeq) {
      return st.hashes.all(fromSeq, toSeq).map((r) => r.hash);
    },
    async readCheckpoints() {
      return st.checkpoints.all();
    },
    async readPruned() {
      return st.pruned.all().map((r) => ({ firstSeq: r.first_seq, lastSeq: r.last_seq, leaves: r.leaves, prunedAt: r.pruned_at }));
    },
    async prune(seg) {
      writable();
      try {
        pruneTx.immediate(seg);
      } catch (err) {
        throw unavailable(path, err);
      }
    },
    async sessionStarts(f: SessionFilter) {
      const where = ["type = 'session.start'"];
      const params: (string | number)[] = [];
      if (f.subject !== undefined) {
        where.push('subject = ?');
        params.push(f.subject);
      }
      if (f.connection !== undefined) {
        where.push('connection = ?');
        params.push(f.connection);
      }
      if (f.since !== undefined) {
        where.push('ts >= ?');
        params.push(f.since);
      }
      if (f.until !== undefined) {
        where.push('ts < ?');
        params.push(f.until);
      }
      params.push(f.limit ?? 1000);
      return db.prepare<(string | number)[], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY ts DESC, seq DESC LIMIT ?`).all(...params).map(toEvent);
    },
    async sessionStats(ids) {
      if (ids.length === 0) return [];
      const rows = db
        .prepare<string[], { session_id: string; type: string; outcome: string | null; n: number; last_ts: number }>(
          `SELECT session_id, type, outcome, COUNT(*) AS n, MAX(ts) AS last_ts FROM audit_events WHERE session_id IN (${ids.map(() => '?').join(',')}) GROUP BY session_id, type, outcome`,
        )
        .all(...ids);
      return rows.map((r): SessionStat => ({ sessionId: r.session_id, type: r.type, outcome: r.outcome, count: r.n, lastTs: r.last_ts }));
    },
    async sessionEnds(ids) {
      if (ids.length === 0) return [];
      return db
        .prepare<string[], EventRow>(`SELECT ${EVENT_COLS} FROM audit_events WHERE session_id IN (${ids.map(() => '?').join(',')}) AND type = 'session.end' ORDER BY seq`)
        .all(...ids)
        .map(toEvent);
    },
    async sessionEvents(sessionId, afterSeq, limit) {
      return st.sessionEvents.all(sessionId, afterSeq, limit).map(toEvent);
    },
    async lastOfType(type) {
      const r = st.lastOfType.get(type);
      return r === undefined ? undefined : toEvent(r);
    },
    async getCursor(name) {
      return st.cursor.get(name)?.seq ?? 0;
    },
    async setCursor(name, seq) {
      writable();
      db.prepare('INSERT INTO audit_cursors (name, seq, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at').run(name, seq, Date.now());
    },
    async close() {
      if (db.open) db.close();
    },
  };
}
