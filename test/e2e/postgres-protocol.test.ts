/**
 * Protocol coverage beyond queries: md5 upstream authentication, COPY FROM STDIN through psql,
 * the connection limit, and refusing replication connections.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const run = promisify(execFile);

describe('PostgreSQL protocol coverage', () => {
  let dir: string;
  let upstream: TestPostgres;
  let gw: Gateway;
  let port: number;
  let token: string;
  let siem: Server;
  const received: Record<string, unknown>[] = [];

  before(async () => {
    // A SIEM stand-in on loopback receiving the live audit stream (JSON lines).
    siem = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        for (const line of body.split('\n')) if (line.trim() !== '') received.push(JSON.parse(line) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => siem.listen(0, '127.0.0.1', () => r()));
    const siemPort = (siem.address() as { port: number }).port;
    dir = mkdtempSync(join(tmpdir(), 'sluice-proto-'));
    upstream = await startPostgres({ hbaPrepend: 'host all legacy_md5 127.0.0.1/32 md5' });
    await upstream.query(`SET password_encryption = 'md5'; CREATE ROLE legacy_md5 LOGIN PASSWORD 'md5-upstream-secret'`);
    await upstream.query(`CREATE TABLE items (id int, label text); GRANT SELECT, INSERT ON items TO legacy_md5`);
    writeFileSync(join(dir, 'pw'), 'md5-upstream-secret');
    writeFileSync(
      join(dir, 'sluice.yaml'),
      `
listen: { postgres: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
limits: { maxConnections: 3, idleTimeout: 400ms }
audit:
  stream: [ { http: "http://127.0.0.1:${siemPort}/ingest" } ]
identity:
  issuers: [ { local: true } ]
  roles: [ { name: loader } ]
connections:
  - name: legacy
    type: postgres
    upstream: { host: 127.0.0.1, port: ${upstream.port}, database: postgres, user: legacy_md5, password: file:${dir}/pw }
policies:
  - role: loader
    connection: legacy
    rules: [ { allow: [select, insert, copy, show] } ]
`,
    );
    const config = loadConfigFile(join(dir, 'sluice.yaml'));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    token = await mintLocalToken(config, { role: 'loader', ttlMs: 3_600_000 });
  });

  after(async () => {
    await gw?.close();
    await new Promise((r) => siem?.close(r));
    await upstream?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (): pg.Client => new pg.Client({ host: '127.0.0.1', port, user: 'loader', database: 'legacy', password: token });

  it('authenticates upstream with md5 when the server asks for it', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query('SELECT current_user AS u');
      assert.equal(r.rows[0].u, 'legacy_md5');
    } finally {
      await c.end();
    }
  });

  it('streams COPY FROM STDIN through the gateway (psql \\copy)', async () => {
    const csv = join(dir, 'items.csv');
    writeFileSync(csv, Array.from({ length: 500 }, (_, i) => `${i},item ${i}`).join('\n') + '\n');
    const env = { ...process.env, PGPASSWORD: token };
    const out = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'loader', '-d', 'legacy', '-c', `\\copy items FROM '${csv}' WITH (FORMAT csv)`], { env });
    assert.match(out.stdout, /COPY 500/);
    const n = await upstream.query('SELECT count(*)::int AS n FROM items');
    assert.equal(n.rows[0].n, 500);
  });

  it('enforces the connection limit with SQLSTATE 53300', async () => {
    const open: pg.Client[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = client();
        await c.connect();
        open.push(c);
      }
      const extra = client();
      await assert.rejects(extra.connect(), (err: Error & { code?: string }) => err.code === '53300');
      await extra.end().catch(() => undefined);
    } finally {
      await Promise.all(open.map((c) => c.end()));
    }
    // Capacity comes back when sessions end.
    await new Promise((r) => setTimeout(r, 100));
    const again = client();
    await again.connect();
    await again.end();
  });

  it('streams audit records live to the configured HTTP endpoint', async () => {
    const c = client();
    await c.connect();
    await c.query('SELECT 7 AS seven');
    await c.end();
    for (let i = 0; i < 100 && !received.some((r) => r.type === 'session.end'); i++) await new Promise((r) => setTimeout(r, 50));
    const types = new Set(received.map((r) => r.type));
    for (const t of ['gateway.start', 'auth.success', 'session.start', 'command', 'command.result', 'session.end']) assert.ok(types.has(t), `no ${t} streamed`);
    const seqs = received.map((r) => r.seq as number);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in log order');
  });

  it('ends idle sessions after limits.idleTimeout, and only idle ones', async () => {
    const busy = client();
    await busy.connect();
    for (let i = 0; i < 8; i++) {
      await busy.query('SELECT 1');
      await new Promise((r) => setTimeout(r, 150));
    }
    await busy.end();
    const idle = client();
    const ended = new Promise<Error>((resolve) => idle.on('error', resolve));
    await idle.connect();
    const err = await ended;
    assert.match(err.message, /idle/);
    await idle.end().catch(() => undefined);
  });

  it('refuses replication connections', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'loader', database: 'legacy', password: token, replication: 'database' } as pg.ClientConfig);
    await assert.rejects(c.connect(), /replication connections are not allowed/);
    await c.end().catch(() => undefined);
  });
});
