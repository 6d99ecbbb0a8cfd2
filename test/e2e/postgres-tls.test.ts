/**
 * TLS on both legs: clients reach Sluice over TLS (psql sslmode=verify-full, pg with a CA), and
 * Sluice reaches a real PostgreSQL with ssl=on, verifying its certificate against the configured CA.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const run = promisify(execFile);

describe('TLS to the client and to the upstream', () => {
  let dir: string;
  let certs: TestCerts;
  let wrong: TestCerts;
  let upstream: TestPostgres;
  let gw: Gateway;
  let port: number;
  let token: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
    certs = makeCerts(dir);
    const other = join(dir, 'other');
    mkdirSync(other);
    wrong = makeCerts(other);
    upstream = await startPostgres({ tls: certs });
    await upstream.query(`CREATE ROLE app_ro LOGIN PASSWORD 'tls-upstream-secret'`);
    writeFileSync(join(dir, 'pw'), 'tls-upstream-secret');
    writeFileSync(
      join(dir, 'sluice.yaml'),
      `
listen: { postgres: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
tls: { cert: ${certs.cert}, key: ${certs.key} }
identity:
  issuers: [ { local: true } ]
  roles: [ { name: reader } ]
connections:
  - name: secure
    type: postgres
    upstream: { host: localhost, port: ${upstream.port}, database: postgres, user: app_ro, password: file:${dir}/pw, sslmode: verify-full, ca: ${certs.ca} }
  - name: wrong-ca
    type: postgres
    upstream: { host: localhost, port: ${upstream.port}, database: postgres, user: app_ro, password: file:${dir}/pw, sslmode: verify-full, ca: ${wrong.ca} }
policies:
  - role: reader
    connection: '*'
    rules: [ { allow: [select, show] } ]
`,
    );
    const config = loadConfigFile(join(dir, 'sluice.yaml'));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    token = await mintLocalToken(config, { role: 'reader', ttlMs: 3_600_000 });
  });

  after(async () => {
    await gw?.close();
    await upstream?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves TLS to clients and uses verified TLS upstream', async () => {
    const c = new pg.Client({ host: 'localhost', port, user: 'reader', database: 'secure', password: token, ssl: { ca: readFileSync(certs.ca), rejectUnauthorized: true } });
    await c.connect();
    try {
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
      const r = await upstream.query(`SELECT bool_and(s.ssl) AS all_ssl, count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'app_ro'`);
      assert.equal(r.rows[0].n >= 1, true);
      assert.equal(r.rows[0].all_ssl, true, 'the upstream leg is encrypted');
    } finally {
      await c.end();
    }
  });

  it('works with psql sslmode=verify-full', async () => {
    const out = await run('psql', [`host=localhost port=${port} user=reader dbname=secure sslmode=verify-full sslrootcert=${certs.ca}`, '-At', '-c', 'SELECT 42'], { env: { ...process.env, PGPASSWORD: token } });
    assert.equal(out.stdout.trim(), '42');
  });

  it('refuses an upstream whose certificate does not verify', async () => {
    const c = new pg.Client({ host: 'localhost', port, user: 'reader', database: 'wrong-ca', password: token, ssl: { ca: readFileSync(certs.ca) } });
    await assert.rejects(c.connect(), (err: Error & { code?: string }) => {
      assert.equal(err.code, '08006');
      assert.match(err.message, /TLS to upstream/);
      return true;
    });
    await c.end().catch(() => undefined);
  });
});
