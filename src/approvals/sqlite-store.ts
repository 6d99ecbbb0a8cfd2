/**
 * SQLite approval store: its own table in the gateway's database file, on its own connection.
 * WAL lets the audit writer and this store share the file; each statement is its own transaction,
 * and with `synchronous=NORMAL` a committed transition survives the process dying.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SluiceError } from '../errors.js';
import { parseView, TABLE, type ApprovalStore, type StoredApproval } from './store.js';
import type { ApprovalState, ApprovalView } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  node TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  grant_expires_at INTEGER,
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

export function openSqliteApprovalStore(path: string, options: { busyTimeoutMs?: number } = {}): ApprovalStore {
  let db: Database.Database;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    db.exec(SCHEMA);
  } catch (err) {
    throw new SluiceError('SLUICE_INTERNAL', `approval store ${path} is unavailable (${(err as { code?: string }).code ?? 'error'})`, { cause: err });
  }
  const insert = db.prepare(`INSERT INTO ${TABLE} (id, state, node, created_at, grant_expires_at, version, body) VALUES (?, ?, ?, ?, ?, 1, ?)`);
  const update = db.prepare(`UPDATE ${TABLE} SET state = ?, grant_expires_at = ?, body = ?, version = version + 1 WHERE id = ? AND version = ?`);
  const get = db.prepare<[string], Row>(`SELECT body, version FROM ${TABLE} WHERE id = ?`);
  const listAll = db.prepare<[number], Row>(`SELECT body, version FROM ${TABLE} ORDER BY created_at DESC, id DESC LIMIT ?`);
  const listState = db.prepare<[string, number], Row>(`SELECT body, version FROM ${TABLE} WHERE state = ? ORDER BY created_at DESC, id DESC LIMIT ?`);
  const pendingOf = db.prepare<[string], Row>(`SELECT body, version FROM ${TABLE} WHERE state = 'pending' AND node = ?`);
  const grants = db.prepare<[number], Row>(`SELECT body, version FROM ${TABLE} WHERE state = 'approved' AND grant_expires_at > ?`);
  const stored = (r: Row): StoredApproval => ({ view: parseView(r.body), version: r.version });
  let open = true;
  return {
    shared: false,
    async insert(view) {
      insert.run(view.id, view.state, view.node, view.createdAt, view.grantExpiresAt ?? null, JSON.stringify(view));
    },
    async update(next, version) {
      return update.run(next.state, next.grantExpiresAt ?? null, JSON.stringify(next), next.id, version).changes === 1;
    },
    async get(id) {
      const r = get.get(id);
      return r === undefined ? undefined : stored(r);
    },
    async list(filter) {
      const rows = filter.state === undefined ? listAll.all(filter.limit) : listState.all(filter.state, filter.limit);
      return rows.map((r) => parseView(r.body));
    },
    async pendingOf(node) {
      return pendingOf.all(node).map(stored);
    },
    async states(ids) {
      const out = new Map<string, ApprovalState>();
      for (const id of ids) {
        const r = get.get(id);
        if (r !== undefined) out.set(id, parseView(r.body).state);
      }
      return out;
    },
    async openGrants(now) {
      return grants.all(now).map((r): ApprovalView => parseView(r.body));
    },
    async close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
}
