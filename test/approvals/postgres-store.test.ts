/**
 * The approval service on a real PostgreSQL store, as several gateway replicas would share it:
 * decisions made through one replica release the client held by another, racing reviewers on two
 * replicas both count, and a restarting replica withdraws only what it held.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createApprovalService, type ApprovalService } from '../../src/approvals/index.js';
import { findPgBin, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { identity, recorder, requestInput, session, SPEC, tempConfig, type Recorder } from './helpers.js';

let pg: TestPostgres;
let dir: string;
const services: ApprovalService[] = [];

before(async () => {
  pg = await startPostgres();
  await pg.query('CREATE DATABASE sluice_state');
  dir = mkdtempSync(join(tmpdir(), 'sluice-approvals-pg-'));
});
after(async () => {
  for (const s of services) await s.close();
  stopServer(pg);
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Stop the server with pg_ctl first: run as root, the helper starts postgres under runuser, which
 * does not pass SIGINT on, so stop() would wait 10 s and then orphan the postmaster (holding the
 * test's stderr pipe until it notices its data directory is gone, about a minute later).
 */
function stopServer(server: TestPostgres): void {
  const pgCtl = join(findPgBin(), 'pg_ctl');
  const args = ['-D', join(server.dir, 'data'), 'stop', '-m', 'fast', '-w'];
  try {
    if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args], { stdio: 'ignore' });
    else execFileSync(pgCtl, args, { stdio: 'ignore' });
  } catch {
    // stop() below still stops it the slow way.
  }
}

async function replica(node: string): Promise<{ svc: ApprovalService; rec: Recorder }> {
  const env = { SLUICE_STATE_DSN: `postgres://${pg.superuser}:${encodeURIComponent(pg.password)}@127.0.0.1:${pg.port}/sluice_state` };
  const cfg = tempConfig(`node: ${node}\n`, { env, store: 'store: { postgres: env:SLUICE_STATE_DSN }', dir });
  const rec = recorder();
  const svc = await createApprovalService(cfg.config, { record: (e) => rec.record(e), pollIntervalMs: 50 });
  services.push(svc);
  return { svc, rec };
}

const alice = identity('alice@example.com', ['dba']);
const bob = identity('bob@example.com', ['sre']);

test('PostgreSQL store: an approval through another replica releases the held client', async () => {
  const a = await replica('gw-a');
  const b = await replica('gw-b');
  const h = await a.svc.request(requestInput(session()));
  assert.equal((await b.svc.get(h.id))?.state, 'pending');
  assert.equal((await b.svc.get(h.id))?.node, 'gw-a');
  await b.svc.approve(h.id, alice);
  assert.deepEqual(await h.outcome, { state: 'approved', approvers: ['alice@example.com'] });
  assert.equal(b.rec.ofType('approval.approved').length, 1);
  const rows = await pg.query(`SELECT state, node FROM sluice_approvals WHERE id = '${h.id}'`, 'sluice_state');
  assert.deepEqual(rows.rows, [{ state: 'approved', node: 'gw-a' }]);
});

test('PostgreSQL store: reviewers racing on two replicas both count (compare-and-set)', async () => {
  const a = await replica('gw-c');
  const b = await replica('gw-d');
  const h = await a.svc.request(requestInput(session(), { spec: { ...SPEC, required: 2 } }));
  await Promise.all([a.svc.approve(h.id, alice), b.svc.approve(h.id, bob)]);
  const outcome = await h.outcome;
  assert.equal(outcome.state, 'approved');
  assert.deepEqual([...outcome.approvers].sort(), ['alice@example.com', 'bob@example.com']);
  await assert.rejects(b.svc.deny(h.id, alice, 'late'), (err: Error & { code?: string }) => err.code === 'SLUICE_APPROVAL_FORBIDDEN');
});

test('PostgreSQL store: a restarted replica withdraws what it held, not what others hold; grants persist', async () => {
  const a = await replica('gw-e');
  const b = await replica('gw-f');
  const held = await a.svc.request(requestInput(session()));
  const other = await b.svc.request(requestInput(session()));
  const s = session(identity('grant-bot', ['agent']));
  const granted = await b.svc.request(requestInput(s, { fingerprint: 'fp-grant', spec: { ...SPEC, grantMs: 60_000 } }));
  await a.svc.approve(granted.id, alice);

  const a2 = await replica('gw-e');
  assert.equal((await a2.svc.get(held.id))?.state, 'withdrawn');
  assert.equal((await a2.svc.get(held.id))?.reason, 'gateway restarted');
  assert.equal(a2.rec.ofType('approval.withdrawn')[0]?.approval.id, held.id);
  assert.equal((await a2.svc.get(other.id))?.state, 'pending');
  assert.equal(a2.svc.findGrant(s, 'fp-grant')?.id, granted.id);
  assert.equal(a2.svc.findGrant(s, 'fp-other'), undefined);
  // The stale replica's waiter learns of the withdrawal by polling the shared store.
  assert.deepEqual(await held.outcome, { state: 'withdrawn', approvers: [], reason: 'gateway restarted' });
  const fresh = await a2.svc.request(requestInput(session()));
  await b.svc.approve(fresh.id, bob);
  assert.equal((await fresh.outcome).state, 'approved');
});
