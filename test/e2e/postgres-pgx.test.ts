/**
 * A Go client through the gateway: jackc/pgx v4, as Debian packages it
 * (golang-github-jackc-pgx-v4-dev, built with Debian's golang-go in GOPATH mode, no module
 * download). pgx differs from libpq: it prepares every statement under its own name and caches
 * it, asks for binary results, pipelines batches, copies in binary format and cancels on context
 * expiry. The client (fixtures/pgx_client.go) prints JSON lines this test reads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mintLocalToken } from '../../src/identity/index.js';
import { startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./fixtures/pgx_client.go', import.meta.url));
/** Debian installs Go libraries as GOPATH sources here. */
const GOPATH = '/usr/share/gocode';

describe('Go pgx v4 through the gateway', () => {
  let s: StandardGateway;
  let binary: string;
  let out: Map<string, unknown>;

  before(async () => {
    s = await startStandardGateway();
    binary = join(s.f.dir, 'pgx-client');
    const goEnv = { ...process.env, GO111MODULE: 'off', GOPATH: `${GOPATH}:${join(s.f.dir, 'gopath')}`, GOCACHE: process.env.GOCACHE ?? join(s.f.dir, 'gocache'), GOFLAGS: '' };
    try {
      await run('go', ['build', '-o', binary, SOURCE], { env: goEnv, timeout: 300_000 });
    } catch (err) {
      const e = err as { code?: string; stderr?: string };
      assert.fail(e.code === 'ENOENT' ? 'go is required for this test (Debian golang-go and golang-github-jackc-pgx-v4-dev; .ci/run installs them)' : `building the pgx client failed: ${e.stderr ?? String(err)}`);
    }
    const env = {
      ...process.env,
      PORT: String(s.port),
      TOKEN: await mintLocalToken(s.config, { role: 'reader', subject: 'pgx@test' }),
      WRITER: await mintLocalToken(s.config, { role: 'writer', subject: 'pgx-writer@test' }),
    };
    const { stdout } = await run(binary, [], { env, timeout: 60_000 }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`the pgx client failed: ${err.stderr ?? ''}\n${err.stdout ?? ''}`);
    });
    out = new Map(
      stdout
        .split('\n')
        .filter((l) => l.startsWith('['))
        .map((l) => JSON.parse(l) as [string, unknown]),
    );
  });
  after(async () => {
    await s?.close();
  });

  it('masks results through named, cached prepared statements, binary results, the simple protocol and a batch', () => {
    assert.deepEqual(out.get('simple'), [
      ['Ada Lovelace', 'a***@example.com', '4111 **** **** 1111'],
      ['Alan Turing', 'a***@example.org', '5500-****-****-0004'],
    ]);
    assert.equal(out.get('params'), '***-**-6789');
    assert.deepEqual(out.get('cached'), ['[REDACTED:github_token]', '[REDACTED:aws_access_key]', '[REDACTED:github_token]']);
    assert.equal(out.get('binary'), 42);
    assert.equal(out.get('simple-protocol'), '5500-****-****-0004');
    assert.deepEqual(out.get('batch'), [1, 'a***@example.org']);
  });

  it('reports a denied statement as a PgError 42501 and keeps the connection usable', () => {
    const [code, message] = out.get('denied') as [string, string];
    assert.equal(code, '42501');
    assert.match(message, /denied by rule "reader-no-writes"/);
    assert.equal(out.get('after-denied'), 50);
    const [ddlCode] = out.get('ddl') as [string, string];
    assert.equal(ddlCode, '42501');
  });

  it('writes through a transaction and a binary COPY, unmasked upstream, masked when read back', async () => {
    assert.equal(out.get('copy'), 2, `copy: ${JSON.stringify(out.get('copy'))}`);
    assert.deepEqual(out.get('written'), [
      ['Copy One', 'o***@example.net', null],
      ['Copy Two', 't***@example.net', null],
      ['Go Gopher', 'g***@example.net', '4012********1881'],
    ]);
    const stored = await s.f.pg.query(`SELECT name, email, card FROM customers WHERE name IN ('Go Gopher', 'Copy One') ORDER BY name`, 'app');
    assert.deepEqual(stored.rows, [
      { name: 'Copy One', email: 'one@example.net', card: null },
      { name: 'Go Gopher', email: 'gopher@example.net', card: '4012888888881881' },
    ]);
  });

  it('cancels a statement when the client\'s context expires, and nothing keeps running upstream', async () => {
    const [failed, ms] = out.get('cancel') as [boolean, number];
    assert.equal(failed, true);
    assert.ok(ms < 5000, `cancelled after ${ms} ms`);
    for (let i = 0; i < 50; i++) {
      const r = await s.f.pg.query("SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'", 'app');
      if (Number(r.rows[0]?.n) === 0) return;
      await new Promise((r2) => setTimeout(r2, 100));
    }
    assert.fail('pg_sleep(10) is still running upstream');
  });
});
