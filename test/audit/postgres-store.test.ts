/** The PostgreSQL store against a real server: same interface, same guarantees, several writers. */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { listSessions, openAuditLog, verifyConfiguredLog } from '../../src/audit/index.js';
import { SluiceError } from '../../src/errors.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { recordScenario, tempConfig, testMask, type TempConfig } from './helpers.js';

let pg: TestPostgres;
let t: TempConfig;

before(async () => {
  pg = await startPostgres();
  await pg.query('CREATE DATABASE audit');
  t = tempConfig('{ checkpointEvery: 7 }', `{ postgres: "postgres://${pg.superuser}:${pg.password}@127.0.0.1:${pg.port}/audit" }`);
});

after(async () => {
  await pg?.stop();
  t?.cleanup();
});

test('two replicas append concurrently into one chain that verifies', async () => {
  const a = await openAuditLog(t.config, { mask: testMask, node: 'replica-a' });
  const b = await openAuditLog(t.config, { mask: testMask, node: 'replica-b' });
  let now = Date.now();
  await recordScenario(a, (ms) => (now += ms));
  const acks = await Promise.all(
    Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).append({ type: 'command', command: { text: `SELECT ${i}` }, outcome: 'success' })),
  );
  const seqs = acks.map((r) => r.seq).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 60 }, (_, i) => i + 10), 'no seq is lost or repeated across replicas');
  await a.close();
  await b.close();
  const report = await verifyConfiguredLog(t.config);
  assert.equal(report.ok, true, JSON.stringify(report.problem));
  assert.equal(report.records, 69);
  assert.equal(report.latestCheckpoint?.size, 69);

  const { openAuditStore } = await import('../../src/audit/index.js');
  const store = await openAuditStore(t.config);
  const sessions = await listSessions(store, { subject: 'repo:acme/app:ref:refs/heads/main' });
  await store.close();
  assert.equal(sessions.length, 1);
  assert.equal(sessions[0]?.commands, 3);
  assert.equal(sessions[0]?.denied, 1);
  assert.equal(sessions[0]?.endReason, 'client closed', 'how it ended, from its session.end record');
});

test('PostgreSQL triggers reject UPDATE, DELETE and TRUNCATE of records and checkpoints', async () => {
  await assert.rejects(pg.query("UPDATE sluice_audit_events SET body = 'x' WHERE seq = 1", 'audit'), /append-only/);
  await assert.rejects(pg.query('DELETE FROM sluice_audit_events WHERE seq = 1', 'audit'), /append-only/);
  await assert.rejects(pg.query('TRUNCATE sluice_audit_events', 'audit'), /append-only/);
  await assert.rejects(pg.query('DELETE FROM sluice_audit_checkpoints', 'audit'), /append-only/);
});

test('an edit made with the triggers disabled is named by verify', async () => {
  await pg.query('ALTER TABLE sluice_audit_events DISABLE TRIGGER USER', 'audit');
  await pg.query("UPDATE sluice_audit_events SET body = replace(body, 'SELECT 30', 'SELECT 31') WHERE body LIKE '%SELECT 30\"%'", 'audit');
  await pg.query('ALTER TABLE sluice_audit_events ENABLE TRIGGER USER', 'audit');
  const report = await verifyConfiguredLog(t.config);
  assert.equal(report.ok, false);
  assert.equal(report.problem?.kind, 'edited');
});

test('fail closed: with the store unreachable, append rejects with SLUICE_AUDIT_UNAVAILABLE, and recovers', async () => {
  const log = await openAuditLog(t.config, { mask: testMask });
  await log.append({ type: 'gateway.start' });
  // Cut the gateway off: no new connections to the audit database, existing ones terminated.
  await pg.query('ALTER DATABASE audit ALLOW_CONNECTIONS false');
  await pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'audit'");
  await assert.rejects(log.append({ type: 'command', command: { text: 'SELECT 1' } }), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE');
  await pg.query('ALTER DATABASE audit ALLOW_CONNECTIONS true');
  assert.ok((await log.append({ type: 'command', command: { text: 'SELECT 2' } })).seq > 0);
  await log.close();
});

test('a store connection terminated in the middle of a transaction rejects that write and does not crash the process', async () => {
  const { openStorePool, inTransaction } = await import('../../src/store/postgres-pool.js');
  const pool = await openStorePool(`postgres://${pg.superuser}:${pg.password}@127.0.0.1:${pg.port}/audit`, 'SELECT 1');
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    await assert.rejects(
      inTransaction(pool, async (c) => {
        const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
        // Let the socket's end arrive while this client is still checked out, then use it.
        const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
        await pg.query(`SELECT pg_terminate_backend(${Number(pid)})`);
        await ended;
        await c.query('SELECT 1');
      }),
      /not queryable|terminated/i,
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(uncaught, [], 'the checked-out client\'s error event was handled');
    assert.equal((await inTransaction(pool, (c) => c.query('SELECT 1 AS one'))).rows[0]?.one, 1, 'the pool recovers with a fresh connection');
  } finally {
    process.off('uncaughtException', onUncaught);
    await pool.end();
  }
});
