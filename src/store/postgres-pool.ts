/**
 * How Sluice's own PostgreSQL-backed stores (the audit log, approvals) use their database, written
 * once: a small pool whose idle-client errors cannot crash the gateway, the store's schema applied
 * in one transaction before first use, and durable write transactions (`synchronous_commit` on,
 * whatever the server's default) that roll back on any error and drop their connection.
 */
import pg from 'pg';

/** Open a pool and apply `schema`; on failure the pool is closed and the driver's error thrown. */
export async function openStorePool(connectionString: string, schema: string): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString, max: 4, connectionTimeoutMillis: 5000 });
  // A client losing its server (a restart, pg_terminate_backend) must not crash the gateway; the
  // query in flight or the next one reports it. The pool listens only on idle clients, and a
  // checked-out client whose socket ends emits 'error' besides rejecting its query, so every
  // client gets a listener of its own for its whole life.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    await inTransaction(pool, (c) => c.query(schema), { durable: false });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return pool;
}

/**
 * Run `fn` in a transaction on a pooled client; `durable` (the default) forces
 * `synchronous_commit` on, so the commit returns only once the write is on disk. Any error rolls
 * back and is rethrown as it came (connecting included).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, opts: { readonly durable?: boolean } = {}): Promise<T> {
  const c = await pool.connect();
  let failed = false;
  try {
    await c.query('BEGIN');
    if (opts.durable !== false) await c.query('SET LOCAL synchronous_commit TO on');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    failed = true;
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    // After a failure the client is dropped, not pooled: its connection may be the thing that broke.
    c.release(failed);
  }
}
