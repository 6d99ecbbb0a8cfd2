/**
 * End to end through the gateway with a real PostgreSQL, the `pg` client and `psql`: tokens as
 * passwords, decisions per statement, simple and extended protocol, transactions, read-only
 * sessions, cancel, and the upstream credential never reaching the client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { filesUnder } from '../helpers/files.js';
import { promisify } from 'node:util';
import pg from 'pg';
import { SignJWT } from 'jose';
import { loadConfigFile, type SluiceConfig } from '../../src/config/index.js';
import { LOCAL_ISSUER, mintLocalToken } from '../../src/identity/index.js';
import { loadOrCreateLocalKey } from '../../src/identity/local-key-file.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { cancelRequest, frame, Frontend, startupMessage } from '../../src/connectors/postgres/protocol.js';
import { createFixture, standardConfig, type Fixture } from '../helpers/gateway.js';

const run = promisify(execFile);

describe('PostgreSQL gateway end to end', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  let readerToken: string;
  let writerToken: string;
  let config: SluiceConfig;

  before(async () => {
    f = await createFixture();
    config = loadConfigFile(f.writeConfig(standardConfig(f)));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    readerToken = await mintLocalToken(config, { role: 'reader', subject: 'ci-bot@acme' });
    writerToken = await mintLocalToken(config, { role: 'writer', subject: 'migrator@acme' });
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const client = (user: string, password: string, database = 'appdb'): pg.Client =>
    new pg.Client({ host: '127.0.0.1', port, user, password, database });

  it('lets an allowed SELECT through with the token as the password', async () => {
    const c = client('reader', readerToken);
    await c.connect();
    try {
      const r = await c.query('SELECT name FROM customers ORDER BY id');
      assert.deepEqual(r.rows.map((x) => x.name), ['Ada Lovelace', 'Alan Turing']);
      // Extended protocol with parameters (Parse/Bind/Describe/Execute/Sync).
      const p = await c.query('SELECT count(*)::int AS n FROM orders WHERE customer_id = $1', [1]);
      assert.equal(p.rows[0].n, 25);
    } finally {
      await c.end();
    }
  });

  it('streams large results across many chunks intact, masking included', async () => {
    const c = client('reader', readerToken);
    await c.connect();
    try {
      const r = await c.query(`SELECT g, repeat('x', 200) AS pad, CASE WHEN g % 1000 = 0 THEN '4111 1111 1111 1111' END AS card FROM generate_series(1, 60000) g`);
      assert.equal(r.rowCount, 60000);
      assert.equal(r.rows[59999].g, 60000);
      assert.equal(r.rows[12345].pad, 'x'.repeat(200));
      const cards = r.rows.filter((x) => x.card !== null);
      assert.equal(cards.length, 60);
      assert.ok(cards.every((x) => x.card === '4111 **** **** 1111'), 'masked in every chunk');
    } finally {
      await c.end();
    }
  });

  it('denies a write with a PostgreSQL error naming the rule, and the session stays usable', async () => {
    const c = client('reader', readerToken);
    await c.connect();
    try {
      await assert.rejects(c.query('DELETE FROM orders'), (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /reader-no-writes/);
        return true;
      });
      // Extended protocol denial too.
      await assert.rejects(c.query('INSERT INTO orders (customer_id, total) VALUES ($1, $2)', [1, 5]), /reader-no-writes/);
      const r = await c.query('SELECT count(*)::int AS n FROM orders');
      assert.equal(r.rows[0].n, 50, 'nothing was deleted or inserted, and the session still works');
    } finally {
      await c.end();
    }
  });

  it('refuses a multi-statement query as a whole when any statement is denied', async () => {
    const c = client('reader', readerToken);
    await c.connect();
    try {
      await assert.rejects(c.query('SELECT 1; DROP TABLE orders'), (err: Error & { code?: string }) => err.code === '42501');
      const r = await c.query('SELECT count(*)::int AS n FROM orders');
      assert.equal(r.rows[0].n, 50);
    } finally {
      await c.end();
    }
  });

  it('keeps PostgreSQL transaction semantics around a denied statement', async () => {
    const c = client('writer', writerToken, 'appdb-rw');
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query("INSERT INTO orders (customer_id, total) VALUES (1, 999)");
      await assert.rejects(c.query('DROP TABLE orders'), (err: Error & { code?: string }) => err.code === '42501');
      await assert.rejects(c.query('SELECT 1'), (err: Error & { code?: string }) => err.code === '25P02', 'transaction is aborted like any failed statement');
      await c.query('ROLLBACK');
      const r = await c.query('SELECT count(*)::int AS n FROM orders WHERE total = 999');
      assert.equal(r.rows[0].n, 0);
    } finally {
      await c.end();
    }
  });

  it('holds review statements as "approval required" until approvals exist', async () => {
    const c = client('writer', writerToken, 'appdb-rw');
    await c.connect();
    try {
      await assert.rejects(c.query('DELETE FROM orders WHERE id = 1'), /approval/i);
      const r = await c.query('SELECT count(*)::int AS n FROM orders WHERE id = 1');
      assert.equal(r.rows[0].n, 1);
    } finally {
      await c.end();
    }
  });

  it('opens read-only upstream sessions for read-only roles and refuses to turn that off', async () => {
    const c = client('reader', readerToken);
    await c.connect();
    try {
      const r = await c.query('SHOW default_transaction_read_only');
      assert.equal(r.rows[0].default_transaction_read_only, 'on');
      await assert.rejects(c.query('SET default_transaction_read_only = off'), (err: Error & { code?: string }) => err.code === '42501');
      await assert.rejects(c.query('BEGIN READ WRITE'), (err: Error & { code?: string }) => err.code === '42501');
      const w = client('writer', writerToken, 'appdb-rw');
      await w.connect();
      const rw = await w.query('SHOW default_transaction_read_only');
      assert.equal(rw.rows[0].default_transaction_read_only, 'off');
      await w.end();
    } finally {
      await c.end();
    }
  });

  it('rejects bad tokens, ungranted roles and unknown connections at login', async () => {
    const key = await loadOrCreateLocalKey(config.dataDir);
    const now = Math.floor(Date.now() / 1000);
    const rolelessToken = await new SignJWT({ sluice_roles: ['retired-role'] })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid })
      .setIssuer(LOCAL_ISSUER)
      .setAudience('sluice')
      .setSubject('old-bot@acme')
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(key.privateKey);
    const cases: [string, string, string, RegExp][] = [
      ['reader', 'not-a-token', 'appdb', /SLUICE_TOKEN|token/i],
      ['reader', '', 'appdb', /token/i],
      ['writer', readerToken, 'appdb-rw', /not granted/],
      ['reader', readerToken, 'nope', /not configured/],
      ['reader', readerToken + 'x', 'appdb', /token|signature/i],
      // Correctly signed, but its only role is not (or no longer) defined: no role is granted.
      ['@appdb', rolelessToken, 'appdb', /no role/],
      ['reader', rolelessToken, 'appdb', /not granted .*granted: none/],
    ];
    for (const [user, password, database, pattern] of cases) {
      const c = client(user, password, database);
      await assert.rejects(c.connect(), (err: Error & { code?: string }) => {
        assert.match(err.message, pattern);
        return true;
      });
      await c.end().catch(() => undefined);
    }
  });

  it('works with psql, and psql shows the denial', async () => {
    const env = { ...process.env, PGPASSWORD: readerToken, PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '10' };
    const ok = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'reader', '-d', 'appdb', '-At', '-c', 'SELECT name FROM customers ORDER BY id'], { env });
    assert.equal(ok.stdout.trim(), 'Ada Lovelace\nAlan Turing');
    const denied = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'reader', '-d', 'appdb', '-At', '-c', 'TRUNCATE orders'], { env }).catch((e: { stderr: string; code: number }) => e);
    assert.ok('code' in denied && denied.code !== 0);
    assert.match((denied as { stderr: string }).stderr, /denied by rule "reader-no-writes"/);
  });

  it("runs psql's describe commands for a read-only role (catalog queries with catalog functions)", async () => {
    const env = { ...process.env, PGPASSWORD: readerToken, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' };
    const META = [
      '\\dt', '\\d customers', '\\d+ customers', '\\dS+ pg_class', '\\l+', '\\dn+', '\\df+ now', '\\du', '\\dv', '\\di+', '\\dx+', '\\dp',
      '\\sf now', '\\dT+', '\\dconfig work_mem', '\\drds', '\\dRp+', '\\dRs', '\\dL', '\\dD', '\\dc', '\\dC', '\\dd', '\\des', '\\det',
      '\\deu', '\\dew', '\\dF+', '\\dFd+', '\\dFp', '\\dFt', '\\dl', '\\do', '\\dO', '\\dP', '\\dy', '\\dA', '\\db', '\\dX',
      '\\sv pg_stat_activity', '\\ddp', '\\dE', '\\dm', '\\ds+', '\\dAc', '\\dAf', '\\dAo', '\\dAp',
    ];
    const failed: string[] = [];
    for (const m of META) {
      const r = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'reader', '-d', 'appdb', '-X', '-c', m], { env }).catch((e: { stderr: string }) => ({ stdout: '', stderr: e.stderr }));
      if (/ERROR/.test(r.stderr)) failed.push(`${m}: ${r.stderr.trim().split('\n').slice(0, 2).join(' ')}`);
    }
    assert.deepEqual(failed, []);
    // …and the table description shows the table, not an error.
    const d = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'reader', '-d', 'appdb', '-X', '-c', '\\d customers'], { env });
    assert.match(d.stdout, /Table "public.customers"[\s\S]*api_key/);
  });

  it('cancels only the sender\'s own query through the mapped BackendKeyData', async () => {
    const c = client('writer', writerToken, 'appdb-rw');
    await c.connect();
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const sendCancel = (pid: number, secret: number) =>
      new Promise<void>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.end(cancelRequest(pid, secret)));
        s.on('close', () => resolve());
        s.on('error', () => resolve());
      });
    try {
      // A wrong key cancels nothing.
      const slow = c.query('SELECT pg_sleep(1.5)');
      await new Promise((r) => setTimeout(r, 200));
      await sendCancel(processID, (secretKey ^ 1) | 0);
      await slow;
      // The right key cancels.
      const slow2 = c.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      await sendCancel(processID, secretKey);
      await assert.rejects(slow2, (err: Error & { code?: string }) => err.code === '57014');
      assert.ok(Date.now() - t0 < 10_000);
    } finally {
      await c.end();
    }
  });

  it('cancels upstream the statement a client leaves running when it disconnects', async () => {
    const c = client('writer', writerToken, 'appdb-rw');
    await c.connect();
    c.on('error', () => undefined);
    c.query("SELECT pg_sleep(30), 'left-behind' AS marker").catch(() => undefined);
    const running = async (): Promise<number> => Number((await f.pg.query("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE '%left-behind%' AND state = 'active' AND pid <> pg_backend_pid()", 'app')).rows[0]?.n);
    for (let i = 0; i < 50 && (await running()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await running(), 1, 'the statement is running upstream');
    // The client goes away without a Terminate, as a killed CI job does.
    (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream.destroy();
    const t0 = Date.now();
    while ((await running()) > 0) {
      assert.ok(Date.now() - t0 < 10_000, 'pg_sleep(30) still runs upstream after its client left');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('never sends the upstream credential to the client, nor writes it to the audit log', async () => {
    // A raw client that records every byte it receives.
    const received: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.on('data', (d) => {
        received.push(d);
        const all = Buffer.concat(received);
        // After ReadyForQuery following our queries, terminate.
        if (all.includes(Buffer.from('SELECT 1')) || all.length > 100_000) s.end(frame(Frontend.Terminate, Buffer.alloc(0)));
      });
      s.on('close', () => resolve());
      s.on('error', reject);
      s.write(startupMessage({ user: 'reader', database: 'appdb' }));
      setTimeout(() => {
        s.write(frame(Frontend.Password, Buffer.from(readerToken + '\0')));
        setTimeout(() => {
          s.write(frame(Frontend.Query, Buffer.from("SELECT current_user, current_setting('application_name'); SELECT 1\0")));
        }, 300);
      }, 200);
    });
    const all = Buffer.concat(received);
    assert.ok(all.length > 0);
    assert.ok(!all.includes(Buffer.from(f.upstreamPassword)), 'upstream password reached the client');
    for (const name of filesUnder(`${f.dir}/data`)) {
      const bytes = readFileSync(name);
      assert.ok(!bytes.includes(Buffer.from(f.upstreamPassword)), `upstream password in ${name}`);
    }
  });
});
