/**
 * A PostgreSQL session ends with the token it signed in with (`identity.onTokenExpiry: end`, the
 * default): an idle session is ended at the expiry, a statement running then finishes and reaches
 * the client, and nothing starts afterwards. With `keep` the session lives on. Real PostgreSQL,
 * the real `pg` client, tokens from the local issuer with a 2 s lifetime and no clock skew allowed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { loadConfigFile, type SluiceConfig } from '../../src/config/index.js';
import { mintShortToken } from '../helpers/tokens.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, endedSessionRecords, fixtureConfig, type Fixture } from '../helpers/gateway.js';
import { msg, rawConnect } from '../helpers/raw-pg.js';

function configFor(f: Fixture, onTokenExpiry?: 'end' | 'keep', grace = '0s', drain?: string): string {
  const yaml = fixtureConfig(f, {
    roles: ['reader'],
    connections: { appdb: { user: 'app_ro' } },
    policies: `  - role: reader
    connection: appdb
    rules:
      - allow: [select, show, transaction]
      - allow: [select, side-effect]
        when: 'sql.functions.all(f, f == "pg_sleep")'
`,
  });
  return yaml.replace(
    'identity:\n',
    `identity:\n  clockSkew: 0s\n  tokenExpiryGrace: ${grace}\n${onTokenExpiry !== undefined ? `  onTokenExpiry: ${onTokenExpiry}\n` : ''}${drain !== undefined ? `  tokenExpiryDrain: ${drain}\n` : ''}`,
  );
}


describe('PostgreSQL: a session ends when its token expires', () => {
  let f: Fixture;
  let config: SluiceConfig;
  let gw: Gateway;
  let port: number;

  before(async () => {
    f = await createFixture();
    config = loadConfigFile(f.writeConfig(configFor(f)));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
  });
  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const connect = async (subject: string): Promise<{ c: pg.Client; expiresAt: number; ended: Promise<Error & { code?: string }> }> => {
    const { token, expiresAt } = await mintShortToken(config, 'reader', subject, 2);
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'reader', database: 'appdb', password: token });
    const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
    await c.connect();
    return { c, expiresAt, ended };
  };

  it('ends an idle session at the expiry with a FATAL the client reads (28000), recorded as "token expired"', async () => {
    const { c, expiresAt, ended } = await connect('idle-expiry@test');
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    const err = await ended;
    assert.ok(Date.now() >= expiresAt, 'not before the token expired');
    assert.equal(err.code, '28000');
    assert.match(err.message, /token this session signed in with expired at .*; connect again with a fresh token/);
    await c.end().catch(() => undefined);
    const records = await endedSessionRecords(gw.audit.store, 'idle-expiry@test');
    const end = records.find((r) => r.type === 'session.end');
    assert.equal((end?.details as { reason?: string } | undefined)?.reason, 'token expired');
  });

  it('lets a statement running at the expiry finish and reach the client, then ends the session', async () => {
    const { c, expiresAt, ended } = await connect('busy-expiry@test');
    const r = await c.query('SELECT pg_sleep(2.5), 42 AS answer');
    assert.ok(Date.now() >= expiresAt, 'the statement ran past the expiry');
    assert.equal(r.rows[0].answer, 42);
    const err = await ended;
    assert.equal(err.code, '28000');
    await assert.rejects(c.query('SELECT 1'));
    await c.end().catch(() => undefined);
    const records = await endedSessionRecords(gw.audit.store, 'busy-expiry@test');
    const result = records.find((x) => x.type === 'command.result' && x.command?.text.includes('pg_sleep'));
    assert.equal(result?.outcome, 'success');
  });

  it('does not run a statement that arrives after the expiry; the one running then is answered first', async () => {
    // A client that does not wait for the running statement's answer (pipelining) sends the next
    // one after the expiry: it is never read, and the session ends once the first is answered.
    const { token, expiresAt } = await mintShortToken(config, 'reader', 'pipelined-expiry@test', 2);
    const raw = await rawConnect(port, 'reader', 'appdb', token);
    // Both answers are collected by one exchange: until the connection closes, which it does.
    const all = raw.exchange([msg.query('SELECT pg_sleep(3), 1 AS n')], 2).then(
      () => '',
      (e: Error) => e.message,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 150));
    raw.send([msg.query("SELECT 'after the expiry' AS n")]);
    const got = await all;
    // The running statement's row, its end, then the FATAL: nothing of the second.
    assert.match(got, /got T D C Z E\(sluice: the token this session signed in with expired at [^ ]*; connect again with a fresh token \(identity\.onTokenExpiry\)\)$/);
    const records = await endedSessionRecords(gw.audit.store, 'pipelined-expiry@test');
    assert.ok(!records.some((r) => r.command?.text.includes('after the expiry')), 'the late statement was not decided or run');
    assert.equal((records.find((r) => r.type === 'session.end')?.details as { reason?: string } | undefined)?.reason, 'token expired');
  });
});

describe('PostgreSQL: identity.tokenExpiryGrace and onTokenExpiry: keep', () => {
  let f: Fixture;

  before(async () => {
    f = await createFixture();
  });
  after(async () => {
    await f?.cleanup();
  });

  interface ExpiringSession {
    readonly config: SluiceConfig;
    readonly gw: Gateway;
    readonly c: pg.Client;
    readonly expiresAt: number;
    /** The client's first error: the FATAL that ends the session. */
    readonly ended: Promise<Error & { code?: string }>;
  }

  /** A gateway on `yaml` and a `pg` client signed in with a 1 s token for `subject`; both closed after `run`. */
  const withExpiringSession = async (yaml: string, subject: string, run: (s: ExpiringSession) => Promise<void>): Promise<void> => {
    const config = loadConfigFile(f.writeConfig(yaml));
    const gw = await startGateway(config, { log: () => undefined });
    try {
      const { token, expiresAt } = await mintShortToken(config, 'reader', subject, 1);
      const c = new pg.Client({ host: '127.0.0.1', port: gw.addresses.postgres?.port as number, user: 'reader', database: 'appdb', password: token });
      const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
      await c.connect();
      try {
        await run({ config, gw, c, expiresAt, ended });
      } finally {
        await c.end().catch(() => undefined);
      }
    } finally {
      await gw.close();
    }
  };

  it('lets a session run tokenExpiryGrace past its token, then ends it, saying until when it could run', async () => {
    await withExpiringSession(configFor(f, undefined, '2s'), 'grace@test', async ({ c, expiresAt, ended }) => {
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 500));
      assert.equal((await c.query('SELECT 8 AS eight')).rows[0].eight, 8, 'within the grace');
      const err = await ended;
      assert.ok(Date.now() >= expiresAt + 2000, 'not before the grace ran out');
      assert.equal(err.code, '28000');
    });
  });

  it('a role\'s own tokenExpiryGrace replaces the gateway\'s for its sessions', async () => {
    // The gateway grants an hour; the role none: its session ends with its token.
    const yaml = configFor(f, undefined, '1h').replace('    - name: reader\n', '    - name: reader\n      tokenExpiryGrace: 0s\n');
    await withExpiringSession(yaml, 'role-grace@test', async ({ config, expiresAt, ended }) => {
      assert.equal(config.identity.roleTokenExpiryGraceMs.get('reader'), 0);
      const err = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, expiresAt - Date.now()) + 8000))]);
      assert.ok(err !== undefined, 'the session outlived its token by more than 8 s (the gateway-wide hour applied)');
      assert.ok(Date.now() >= expiresAt, 'not before its token expired');
      assert.equal(err.code, '28000');
    });
  });

  it('cancels upstream a statement still running tokenExpiryDrain past the deadline, then ends the session', async () => {
    await withExpiringSession(configFor(f, undefined, '0s', '1s'), 'drain@test', async ({ gw, c, expiresAt, ended }) => {
      const started = Date.now();
      const err = await c.query("SELECT pg_sleep(60), 'drain-marker' AS m").then(
        () => assert.fail('a 60 s statement finished'),
        (e: Error & { code?: string }) => e,
      );
      assert.equal(err.code, '57014', `cancelled upstream: ${err.message}`);
      assert.ok(Date.now() >= expiresAt + 1000, 'not before the drain time');
      assert.ok(Date.now() - started < 20_000, 'cancelled, not waited out');
      assert.equal((await ended).code, '28000');
      // PostgreSQL itself stopped it: no backend is still sleeping on it.
      const running = await f.pg.query("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE '%drain-marker%' AND state = 'active' AND pid <> pg_backend_pid()", 'app');
      assert.equal(Number(running.rows[0]?.n), 0);
      const records = await endedSessionRecords(gw.audit.store, 'drain@test');
      const result = records.find((x) => x.type === 'command.result' && x.command?.text.includes('drain-marker'));
      assert.equal(result?.outcome, 'failure');
      assert.equal((records.find((r) => r.type === 'session.end')?.details as { reason?: string } | undefined)?.reason, 'token expired');
    });
  });

  it('keeps a session open after its token expired', async () => {
    await withExpiringSession(configFor(f, 'keep'), 'keep@test', async ({ c, expiresAt }) => {
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 300));
      assert.equal((await c.query('SELECT 7 AS seven')).rows[0].seven, 7);
    });
  });
});
