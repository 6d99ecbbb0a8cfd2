/**
 * Just-in-time approval end to end: a real PostgreSQL, the `pg` client holding in place (simple and
 * extended protocol), reviewers approving through the REST API with their own tokens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { loadConfigFile, type SluiceConfig } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { cancelRequest } from '../../src/connectors/postgres/protocol.js';
import { createFixture, fixtureConfig, type Fixture } from '../helpers/gateway.js';

function approvalsConfig(f: Fixture): string {
  return fixtureConfig(f, {
    http: true,
    roles: ['migrator', { name: 'dba', approver: true }, { name: 'lead', approver: true }],
    connections: { appdb: { user: 'app_rw' } },
    policies: `  - role: migrator
    connection: appdb
    rules:
      - allow: [select, show, transaction, insert]
      - review: [delete]
        name: deletes-need-a-dba
        approval: { approvers: [dba], timeout: 2s, explain: true }
      - review: [update]
        name: updates-need-two
        approval: { approvers: [dba, lead], required: 2, timeout: 30s }
      - review: [ddl]
        name: ddl-grant
        approval: { approvers: [dba], grant: 10m, timeout: 30s }
  - role: dba
    connection: appdb
    rules:
      - allow: [select]
`,
  });
}

describe('approvals through the PostgreSQL gateway', () => {
  let f: Fixture;
  let config: SluiceConfig;
  let gw: Gateway;
  let port: number;
  let api: string;
  const tokens: Record<string, string> = {};

  const start = async (): Promise<void> => {
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    api = `http://127.0.0.1:${gw.addresses.http?.port}/api/v1/approvals`;
  };

  before(async () => {
    f = await createFixture();
    f.writeConfig('');
    writeFileSync(f.configPath, approvalsConfig(f));
    config = loadConfigFile(f.configPath);
    await start();
    tokens.agent = await mintLocalToken(config, { role: 'migrator', subject: 'release-bot', ttlMs: 3_600_000 });
    tokens.agentAsDba = await mintLocalToken(config, { role: ['migrator', 'dba'], subject: 'release-bot', ttlMs: 3_600_000 });
    tokens.alice = await mintLocalToken(config, { role: 'dba', subject: 'alice', ttlMs: 3_600_000 });
    tokens.bob = await mintLocalToken(config, { role: 'lead', subject: 'bob', ttlMs: 3_600_000 });
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const agent = async (): Promise<{ c: pg.Client; notices: string[] }> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'migrator', database: 'appdb', password: tokens.agent });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.connect();
    return { c, notices };
  };

  const call = async (path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${api}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  /** Wait until the agent's notice names a request id. */
  const heldId = async (notices: string[], skip = 0): Promise<string> => {
    for (let i = 0; i < 500; i++) {
      const m = notices.slice(skip).map((n) => /approval ([A-Za-z0-9_-]+)/.exec(n)).find((x) => x !== null);
      if (m) return m[1] as string;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('no hold notice');
  };

  const count = async (where: string): Promise<number> => (await f.pg.query(`SELECT count(*)::int AS n FROM orders WHERE ${where}`, 'app')).rows[0].n as number;

  it('holds a delete in place, tells the client where to approve, and runs it once approved', async () => {
    const { c, notices } = await agent();
    try {
      const pending = c.query('DELETE FROM orders WHERE id = 1');
      const id = await heldId(notices);
      assert.match(notices[0] as string, /sluice approve/);
      assert.equal(await count('id = 1'), 1, 'nothing ran while held');
      // The rule asks for the planner's estimate: reviewers see it (EXPLAIN, never executed).
      const view = await call(`/${id}`, tokens.alice as string);
      assert.equal(typeof view.json.estimatedRows, 'number', JSON.stringify(view.json));
      const t0 = performance.now();
      const res = await call(`/${id}/approve`, tokens.alice as string, { comment: 'ok' });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const r = await pending;
      const latency = performance.now() - t0;
      assert.equal(r.rowCount, 1);
      assert.equal(await count('id = 1'), 0);
      assert.ok(latency < 1000, `approval to result took ${latency} ms`);
      process.stdout.write(`# approval-to-result latency: ${latency.toFixed(1)} ms\n`);
      // The approval covered that statement only: the next delete is held again.
      const second = c.query('DELETE FROM orders WHERE id = 2');
      const id2 = await heldId(notices, 1);
      assert.notEqual(id2, id);
      await call(`/${id2}/deny`, tokens.alice as string, { reason: 'one is enough' });
      await assert.rejects(second, (err: Error & { code?: string }) => err.code === '42501' && /denied/.test(err.message) && /one is enough/.test(err.message));
      // The session stays usable.
      assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1);
    } finally {
      await c.end();
    }
  });

  it('binds an extended-protocol approval to the exact bound parameters', async () => {
    const { c, notices } = await agent();
    try {
      const pending = c.query('DELETE FROM orders WHERE id = $1', [3]);
      const id = await heldId(notices);
      const view = await call(`/${id}`, tokens.alice as string);
      assert.equal(view.status, 200);
      await call(`/${id}/approve`, tokens.alice as string, {});
      assert.equal((await pending).rowCount, 1);
      const again = c.query('DELETE FROM orders WHERE id = $1', [4]);
      const id2 = await heldId(notices, 1);
      assert.notEqual(id2, id, 'different parameters need a new approval');
      await call(`/${id2}/deny`, tokens.alice as string, { reason: 'no' });
      await assert.rejects(again, /denied/);
      assert.equal(await count('id = 4'), 1);
    } finally {
      await c.end();
    }
  });

  it('refuses self-approval and approval by the agent role, and expires unanswered requests', async () => {
    const { c, notices } = await agent();
    try {
      const pending = c.query('DELETE FROM orders WHERE id = 5');
      const id = await heldId(notices);
      const self = await call(`/${id}/approve`, tokens.agentAsDba as string, {});
      assert.equal(self.status, 403, 'the requester may not approve its own request');
      const agentRole = await call(`/${id}/approve`, tokens.agent as string, {});
      assert.ok(agentRole.status === 403 || agentRole.status === 404, `agent role approving: ${agentRole.status}`);
      await assert.rejects(pending, (err: Error & { code?: string }) => err.code === '42501' && /expired/.test(err.message));
      assert.equal(await count('id = 5'), 1);
    } finally {
      await c.end();
    }
  });

  it('needs two distinct approvers for updates (N of M)', async () => {
    const { c, notices } = await agent();
    try {
      const pending = c.query('UPDATE orders SET total = 0 WHERE id = 6');
      const id = await heldId(notices);
      await call(`/${id}/approve`, tokens.alice as string, {});
      const twice = await call(`/${id}/approve`, tokens.alice as string, {});
      assert.ok(twice.status >= 400 || (twice.json.state as string) === 'pending');
      assert.equal((await call(`/${id}`, tokens.alice as string)).json.state, 'pending');
      await call(`/${id}/approve`, tokens.bob as string, {});
      assert.equal((await pending).rowCount, 1);
      assert.equal(await count('id = 6 AND total = 0'), 1);
    } finally {
      await c.end();
    }
  });

  it('withdraws a held request when the client cancels it', async () => {
    const { c, notices } = await agent();
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    try {
      const pending = c.query('DELETE FROM orders WHERE id = 7');
      const id = await heldId(notices);
      await new Promise<void>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.end(cancelRequest(processID, secretKey)));
        s.on('close', () => resolve());
      });
      await assert.rejects(pending, (err: Error & { code?: string }) => err.code === '57014');
      const view = await call(`/${id}`, tokens.alice as string);
      assert.equal(view.json.state, 'withdrawn');
      assert.equal(await count('id = 7'), 1);
    } finally {
      await c.end();
    }
  });

  it('opens a grant window for the same statement fingerprint', async () => {
    const { c, notices } = await agent();
    try {
      const first = c.query('CREATE TABLE IF NOT EXISTS scratch (x int)');
      const id = await heldId(notices);
      await call(`/${id}/approve`, tokens.alice as string, {});
      await first;
      const before = notices.length;
      await c.query('CREATE TABLE IF NOT EXISTS scratch (x int)');
      // IF NOT EXISTS on an existing table raises a NOTICE from PostgreSQL itself, but no hold notice.
      assert.ok(!notices.slice(before).some((n) => /held for approval/.test(n)), 'covered by the grant: not held again');
    } finally {
      await c.end();
    }
  });

  it('holds 200 sessions at once while unrelated queries keep flowing', async () => {
    const held: { c: pg.Client; notices: string[]; q: Promise<unknown> }[] = [];
    for (let i = 0; i < 200; i++) {
      const a = await agent();
      // Settle into a value right away: the rejections are expected and checked below.
      held.push({ ...a, q: a.c.query(`UPDATE orders SET total = total WHERE id = ${1000 + i}`).then((r) => r, (e: unknown) => e) });
    }
    const ids = await Promise.all(held.map((h) => heldId(h.notices)));
    // Other traffic is unaffected.
    const { c } = await agent();
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) await c.query('SELECT count(*) FROM orders');
    const perQuery = (performance.now() - t0) / 50;
    assert.ok(perQuery < 50, `unrelated queries slowed to ${perQuery} ms`);
    await c.end();
    await Promise.all(ids.map((id) => call(`/${id}/deny`, tokens.alice as string, { reason: 'load test' })));
    const results = await Promise.all(held.map((h) => h.q));
    assert.ok(results.every((r) => r instanceof Error && /denied/.test(r.message)));
    await Promise.all(held.map((h) => h.c.end()));
  });

  it('tells held clients when the gateway restarts, and a fresh request can be approved after', async () => {
    const { c, notices } = await agent();
    c.on('error', () => undefined);
    const pending = c.query('DELETE FROM orders WHERE id = 8').catch((e: Error) => e);
    const id = await heldId(notices);
    await gw.close();
    const err = await pending;
    assert.ok(err instanceof Error);
    assert.match(String(err.message), /restart|shutting down|withdrawn|terminat/i);
    await c.end().catch(() => undefined);
    await start();
    const old = await call(`/${id}`, tokens.alice as string);
    assert.equal(old.json.state, 'withdrawn');
    const again = await agent();
    try {
      const q = again.c.query('DELETE FROM orders WHERE id = 8');
      const id2 = await heldId(again.notices);
      await call(`/${id2}/approve`, tokens.alice as string, {});
      assert.equal((await q).rowCount, 1);
    } finally {
      await again.c.end();
    }
  });
});
