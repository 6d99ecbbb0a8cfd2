/**
 * PostgreSQL approval store, for replicas sharing one database. Transitions are compare-and-set on
 * `version`, and `synchronous_commit` is forced on per write: a reviewer's approval must be durable
 * before the held statement is released.
 */
import pg from 'pg';
import { SluiceError } from '../errors.js';
import { inTransaction, openStorePool } from '../store/postgres-pool.js';
import { parseView, TABLE, type ApprovalStore, type StoredApproval } from './store.js';
import type { ApprovalState, ApprovalView } from './types.js';

const SCHEMA = `
SELECT pg_advisory_xact_lock(hashtext('${TABLE}_schema'));
CREATE TABLE IF NOT EXISTS ${TABLE} (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  node TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  grant_expires_at BIGINT,
  version INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ${TABLE}_state ON ${TABLE}(state, created_at);
CREATE INDEX IF NOT EXISTS ${TABLE}_grant ON ${TABLE}(grant_expires_at) WHERE grant_expires_at IS NOT NULL;
`;

interface Row {
  body: string;
  version: number;
}

export async function openPostgresApprovalStore(connectionString: string): Promise<ApprovalStore> {
  let pool: pg.Pool;
  try {
    pool = await openStorePool(connectionString, SCHEMA);
  } catch (err) {
    throw new SluiceError('SLUICE_INTERNAL', `approval store (PostgreSQL) is unavailable (${(err as { code?: string }).code ?? 'error'})`, { cause: err });
  }
  const write = (sql: string, params: unknown[]): Promise<number> => inTransaction(pool, async (c) => (await c.query(sql, params)).rowCount ?? 0);
  const stored = (r: Row): StoredApproval => ({ view: parseView(r.body), version: r.version });
  let open = true;
  return {
    shared: true,
    async insert(view) {
      await write(`INSERT INTO ${TABLE} (id, state, node, created_at, grant_expires_at, version, body) VALUES ($1, $2, $3, $4, $5, 1, $6)`, [
        view.id,
        view.state,
        view.node,
        view.createdAt,
        view.grantExpiresAt ?? null,
        JSON.stringify(view),
      ]);
    },
    async update(next, version) {
      const n = await write(`UPDATE ${TABLE} SET state = $1, grant_expires_at = $2, body = $3, version = version + 1 WHERE id = $4 AND version = $5`, [
        next.state,
        next.grantExpiresAt ?? null,
        JSON.stringify(next),
        next.id,
        version,
      ]);
      return n === 1;
    },
    async get(id) {
      const r = await pool.query<Row>(`SELECT body, version FROM ${TABLE} WHERE id = $1`, [id]);
      const row = r.rows[0];
      return row === undefined ? undefined : stored(row);
    },
    async list(filter) {
      const r =
        filter.state === undefined
          ? await pool.query<Row>(`SELECT body, version FROM ${TABLE} ORDER BY created_at DESC, id DESC LIMIT $1`, [filter.limit])
          : await pool.query<Row>(`SELECT body, version FROM ${TABLE} WHERE state = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, [filter.state, filter.limit]);
      return r.rows.map((row) => parseView(row.body));
    },
    async pendingOf(node) {
      const r = await pool.query<Row>(`SELECT body, version FROM ${TABLE} WHERE state = 'pending' AND node = $1`, [node]);
      return r.rows.map(stored);
    },
    async states(ids) {
      const out = new Map<string, ApprovalState>();
      if (ids.length === 0) return out;
      const r = await pool.query<{ id: string; state: ApprovalState }>(`SELECT id, state FROM ${TABLE} WHERE id = ANY($1::text[])`, [ids]);
      for (const row of r.rows) out.set(row.id, row.state);
      return out;
    },
    async openGrants(now) {
      const r = await pool.query<Row>(`SELECT body, version FROM ${TABLE} WHERE state = 'approved' AND grant_expires_at > $1`, [now]);
      return r.rows.map((row): ApprovalView => parseView(row.body));
    },
    async close() {
      if (!open) return;
      open = false;
      await pool.end();
    },
  };
}
