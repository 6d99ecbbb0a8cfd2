/**
 * PostgreSQL store, for several gateway replicas sharing one log. Each group commit locks the
 * single head row (`SELECT … FOR UPDATE`), so replicas append in turn and the chain never forks.
 * Every write transaction sets `synchronous_commit = on` itself: the server default may be off
 * (it is in many tuned setups), and an audit record must be on disk before its command runs.
 */
import pg from 'pg';
import { inTransaction, openStorePool } from '../../store/postgres-pool.js';
import { SluiceError } from '../../errors.js';
import { EMPTY_HEAD, type AuditStore, type BatchWrite, type LogHead, type SessionFilter, type StoredEvent } from './types.js';

const SCHEMA = `
SELECT pg_advisory_xact_lock(hashtext('sluice_audit_schema'));
CREATE TABLE IF NOT EXISTS sluice_audit_events (
  seq BIGINT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  ts BIGINT NOT NULL,
  type TEXT NOT NULL,
  session_id TEXT,
  subject TEXT,
  connection TEXT,
  outcome TEXT,
  body TEXT NOT NULL,
  hash BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS sluice_audit_events_session ON sluice_audit_events(session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS sluice_audit_events_type_ts ON sluice_audit_events(type, ts);
CREATE INDEX IF NOT EXISTS sluice_audit_events_ts ON sluice_audit_events(ts);
CREATE TABLE IF NOT EXISTS sluice_audit_checkpoints (size BIGINT PRIMARY KEY, ts BIGINT NOT NULL, root BYTEA NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sluice_audit_pruned (first_seq BIGINT PRIMARY KEY, last_seq BIGINT NOT NULL UNIQUE, leaves BYTEA NOT NULL, pruned_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sluice_audit_head (id INT PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, last_hash BYTEA, frontier BYTEA NOT NULL, checkpoint_size BIGINT NOT NULL, checkpoint_ts BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sluice_audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sluice_audit_cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE OR REPLACE FUNCTION sluice_audit_reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE OR REPLACE FUNCTION sluice_audit_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.seq > COALESCE((SELECT MAX(last_seq) FROM sluice_audit_pruned), 0) THEN
    RAISE EXCEPTION 'audit records are append-only; retention removes only sealed segments' USING ERRCODE = '42501';
  END IF;
  RETURN OLD;
END $$;
CREATE OR REPLACE TRIGGER sluice_audit_events_no_update BEFORE UPDATE ON sluice_audit_events FOR EACH ROW EXECUTE FUNCTION sluice_audit_reject();
CREATE OR REPLACE TRIGGER sluice_audit_events_no_delete BEFORE DELETE ON sluice_audit_events FOR EACH ROW EXECUTE FUNCTION sluice_audit_guard_delete();
CREATE OR REPLACE TRIGGER sluice_audit_events_no_truncate BEFORE TRUNCATE ON sluice_audit_events FOR EACH STATEMENT EXECUTE FUNCTION sluice_audit_reject();
CREATE OR REPLACE TRIGGER sluice_audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON sluice_audit_checkpoints FOR EACH ROW EXECUTE FUNCTION sluice_audit_reject();
CREATE OR REPLACE TRIGGER sluice_audit_checkpoints_no_truncate BEFORE TRUNCATE ON sluice_audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION sluice_audit_reject();
CREATE OR REPLACE TRIGGER sluice_audit_pruned_no_change BEFORE UPDATE OR DELETE ON sluice_audit_pruned FOR EACH ROW EXECUTE FUNCTION sluice_audit_reject();
CREATE OR REPLACE TRIGGER sluice_audit_pruned_no_truncate BEFORE TRUNCATE ON sluice_audit_pruned FOR EACH STATEMENT EXECUTE FUNCTION sluice_audit_reject();
`;

const EVENT_COLS = 'seq, id, ts, type, session_id, subject, connection, outcome, body, hash';

interface EventRow {
  seq: string;
  id: string;
  ts: string;
  type: string;
  session_id: string | null;
  subject: string | null;
  connection: string | null;
  outcome: string | null;
  body: string;
  hash: Buffer;
}

// BIGINT arrives as a string from pg; seq and ms timestamps fit in a double for 285,000 years.
function toEvent(r: EventRow): StoredEvent {
  return { seq: Number(r.seq), id: r.id, ts: Number(r.ts), type: r.type, sessionId: r.session_id, subject: r.subject, connection: r.connection, outcome: r.outcome, body: r.body, hash: r.hash };
}

function unavailable(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const code = (err as { code?: string }).code ?? 'error';
  return new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `audit store postgres is unavailable (${code})`, { cause: err });
}

export async function openPostgresStore(connectionString: string): Promise<AuditStore> {
  let pool: pg.Pool;
  try {
    pool = await openStorePool(connectionString, SCHEMA);
  } catch (err) {
    throw unavailable(err);
  }

  const q = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> => {
    try {
      return (await pool.query<R>(text, params)).rows;
    } catch (err) {
      throw unavailable(err);
    }
  };

  const tx = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    try {
      return await inTransaction(pool, fn);
    } catch (err) {
      if (err instanceof TypeError) throw err;
      throw unavailable(err);
    }
  };

  const headOf = (r: { size: string; last_hash: Buffer | null; frontier: Buffer; checkpoint_size: string; checkpoint_ts: string } | undefined): LogHead =>
    r === undefined ? EMPTY_HEAD : { size: Number(r.size), lastHash: r.last_hash, frontier: r.frontier, checkpointSize: Number(r.checkpoint_size), checkpointTs: Number(r.checkpoint_ts) };

  return {
    kind: 'postgres',
    location: 'postgres',
    async getMeta(key) {
      return (await q<{ value: string }>('SELECT value FROM sluice_audit_meta WHERE key = $1', [key]))[0]?.value;
    },
    async initMeta(key, value) {
      await q('INSERT INTO sluice_audit_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
      return (await q<{ value: string }>('SELECT value FROM sluice_audit_meta WHERE key = $1', [key]))[0]?.value as string;
    },
    async appendBatch(build) {
      return tx(async (c) => {
        // Insert-if-missing first so FOR UPDATE always has a row to lock, even on the first append.
        await c.query(`INSERT INTO sluice_audit_head (id, size, last_hash, frontier, checkpoint_size, checkpoint_ts) VALUES (1, 0, NULL, '\\x', 0, 0) ON CONFLICT (id) DO NOTHING`);
        const head = headOf((await c.query('SELECT size, last_hash, frontier, checkpoint_size, checkpoint_ts FROM sluice_audit_head WHERE id = 1 FOR UPDATE')).rows[0]);
        const w: BatchWrite | null = build(head);
        if (w === null) return null;
        if (w.events.length > 0) {
          const ev = w.events;
          await c.query(
            `INSERT INTO sluice_audit_events (${EVENT_COLS})
             SELECT seq, id, ts, type, session_id, subject, connection, outcome, body, decode(hash, 'hex')
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
               AS t(seq, id, ts, type, session_id, subject, connection, outcome, body, hash)`,
            [
              ev.map((e) => e.seq),
              ev.map((e) => e.id),
              ev.map((e) => e.ts),
              ev.map((e) => e.type),
              ev.map((e) => e.sessionId),
              ev.map((e) => e.subject),
              ev.map((e) => e.connection),
              ev.map((e) => e.outcome),
              ev.map((e) => e.body),
              ev.map((e) => e.hash.toString('hex')),
            ],
          );
        }
        for (const cp of w.checkpoints) {
          await c.query('INSERT INTO sluice_audit_checkpoints (size, ts, root, note) VALUES ($1, $2, $3, $4)', [cp.size, cp.ts, cp.root, cp.note]);
        }
        await c.query('UPDATE sluice_audit_head SET size = $1, last_hash = $2, frontier = $3, checkpoint_size = $4, checkpoint_ts = $5 WHERE id = 1', [
          w.head.size,
          w.head.lastHash,
          w.head.frontier,
          w.head.checkpointSize,
          w.head.checkpointTs,
        ]);
        return w;
      });
    },
    async readHead() {
      return headOf((await q<{ size: string; last_hash: Buffer | null; frontier: Buffer; checkpoint_size: string; checkpoint_ts: string }>('SELECT size, last_hash, frontier, checkpoint_size, checkpoint_ts FROM sluice_audit_head WHERE id = 1'))[0]);
    },
    async readEvents(afterSeq, limit) {
      return (await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit])).map(toEvent);
    },
    async readEventsSince(sinceTs, afterSeq, limit) {
      return (await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE ts >= $1 AND seq > $2 ORDER BY seq LIMIT $3`, [sinceTs, afterSeq, limit])).map(toEvent);
    },
    async findEvent(id) {
      const r = (await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE id = $1`, [id]))[0];
      return r === undefined ? undefined : toEvent(r);
    },
    async readLeafHashes(fromSeq, toSeq) {
      return (await q<{ hash: Buffer }>('SELECT hash FROM sluice_audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq', [fromSeq, toSeq])).map((r) => r.hash);
    },
    async readCheckpoints() {
      return (await q<{ size: string; ts: string; root: Buffer; note: string }>('SELECT size, ts, root, note FROM sluice_audit_checkpoints ORDER BY size')).map((r) => ({
        size: Number(r.size),
        ts: Number(r.ts),
        root: r.root,
        note: r.note,
      }));
    },
    async readPruned() {
      return (await q<{ first_seq: string; last_seq: string; leaves: Buffer; pruned_at: string }>('SELECT first_seq, last_seq, leaves, pruned_at FROM sluice_audit_pruned ORDER BY first_seq')).map((r) => ({
        firstSeq: Number(r.first_seq),
        lastSeq: Number(r.last_seq),
        leaves: r.leaves,
        prunedAt: Number(r.pruned_at),
      }));
    },
    async prune(seg) {
      await tx(async (c) => {
        await c.query('INSERT INTO sluice_audit_pruned (first_seq, last_seq, leaves, pruned_at) VALUES ($1, $2, $3, $4)', [seg.firstSeq, seg.lastSeq, seg.leaves, seg.prunedAt]);
        await c.query('DELETE FROM sluice_audit_events WHERE seq >= $1 AND seq <= $2', [seg.firstSeq, seg.lastSeq]);
      });
    },
    async sessionStarts(f: SessionFilter) {
      const where = ["type = 'session.start'"];
      const params: unknown[] = [];
      const add = (sql: string, v: unknown): void => {
        params.push(v);
        where.push(sql.replace('?', `$${params.length}`));
      };
      if (f.subject !== undefined) add('subject = ?', f.subject);
      if (f.connection !== undefined) add('connection = ?', f.connection);
      if (f.since !== undefined) add('ts >= ?', f.since);
      if (f.until !== undefined) add('ts < ?', f.until);
      params.push(f.limit ?? 1000);
      return (await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE ${where.join(' AND ')} ORDER BY ts DESC, seq DESC LIMIT $${params.length}`, params)).map(toEvent);
    },
    async sessionStats(ids) {
      if (ids.length === 0) return [];
      const rows = await q<{ session_id: string; type: string; outcome: string | null; n: string; last_ts: string }>(
        'SELECT session_id, type, outcome, COUNT(*) AS n, MAX(ts) AS last_ts FROM sluice_audit_events WHERE session_id = ANY($1::text[]) GROUP BY session_id, type, outcome',
        [ids],
      );
      return rows.map((r) => ({ sessionId: r.session_id, type: r.type, outcome: r.outcome, count: Number(r.n), lastTs: Number(r.last_ts) }));
    },
    async sessionEnds(ids) {
      if (ids.length === 0) return [];
      return (await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE session_id = ANY($1::text[]) AND type = 'session.end' ORDER BY seq`, [ids])).map(toEvent);
    },
    async sessionEvents(sessionId, afterSeq, limit) {
      return (await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [sessionId, afterSeq, limit])).map(toEvent);
    },
    async lastOfType(type) {
      const [r] = await q<EventRow>(`SELECT ${EVENT_COLS} FROM sluice_audit_events WHERE type = $1 ORDER BY seq DESC LIMIT 1`, [type]);
      return r === undefined ? undefined : toEvent(r);
    },
    async getCursor(name) {
      const r = (await q<{ seq: string }>('SELECT seq FROM sluice_audit_cursors WHERE name = $1', [name]))[0];
      return r === undefined ? 0 : Number(r.seq);
    },
    async setCursor(name, seq) {
      await q('INSERT INTO sluice_audit_cursors (name, seq, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at', [name, seq, Date.now()]);
    },
    async close() {
      await pool.end().catch(() => {});
    },
  };
}
