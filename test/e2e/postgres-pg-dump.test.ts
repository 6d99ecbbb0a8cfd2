/**
 * pg_dump through the gateway (Debian's, from the server's own bin directory): dozens of catalog
 * queries with catalog functions, SETs, set_config('search_path', …), a set_config() whose setting
 * is chosen by a query, SQL PREPARE/EXECUTE, LOCK … IN ACCESS SHARE MODE, a REPEATABLE READ
 * transaction and COPY … TO stdout. The role's rules are the recipe in docs/postgres.md; the data
 * it dumps is masked like any other result.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, fixtureConfig, type Fixture } from '../helpers/gateway.js';
import { findPgBin } from '../helpers/postgres.js';

const run = promisify(execFile);

function config(f: Fixture): string {
  return fixtureConfig(f, {
    roles: ['dumper', 'reader'],
    connections: { appdb: { user: 'app_ro' } },
    policies: `  - role: dumper
    connection: appdb
    rules:
      - allow: [select, show, set, transaction, lock, prepare, execute, copy]
      - allow: [select, side-effect]
        name: pg-dump-set-config
        when: sql.functions.all(f, f == "pg_catalog.set_config" || f == "set_config")
  - role: reader
    connection: appdb
    rules:
      - allow: [select, show]
`,
  });
}

describe('pg_dump through the gateway', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  const pgDump = join(findPgBin(), 'pg_dump');

  const dump = async (role: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const token = await mintLocalToken(gw.config, { role, subject: `${role}@acme` });
    try {
      const r = await run(pgDump, [...args, `host=127.0.0.1 port=${port} user=${role} dbname=appdb sslmode=disable`], { env: { ...process.env, PGPASSWORD: token }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  before(async () => {
    f = await createFixture();
    await f.pg.query('SET ROLE app_rw; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO app_ro', 'app');
    gw = await startGateway(loadConfigFile(f.writeConfig(config(f))), { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  it('dumps the schema', async () => {
    const r = await dump('dumper', ['--schema-only']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CREATE TABLE public\.customers \(\n    id integer NOT NULL,\n    name text NOT NULL,[\s\S]*password text\n\);/);
    assert.match(r.stdout, /ALTER TABLE ONLY public\.orders\s+ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY \(customer_id\) REFERENCES public\.customers\(id\);/);
  });

  it('dumps data masked, as COPY rows', async () => {
    const r = await dump('dumper', ['--data-only', '--table', 'customers']);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.slice(r.stdout.indexOf('FROM stdin;\n') + 'FROM stdin;\n'.length, r.stdout.indexOf('\n\\.\n'));
    assert.equal(
      rows,
      '1\tAda Lovelace\ta***@example.com\t4111 **** **** 1111\t***-**-6789\t[REDACTED:github_token]\t[REDACTED:password]\n' +
        '2\tAlan Turing\ta***@example.org\t5500-****-****-0004\t***-**-1120\t[REDACTED:aws_access_key]\t[REDACTED:password]',
    );
    assert.ok(!r.stdout.includes('hunter2'));
  });

  it('a role without the recipe is refused with the rule that stopped it', async () => {
    const r = await dump('reader', ['--schema-only']);
    assert.notEqual(r.code, 0);
    // Its first set_config() is refused (the role is read-only, and set_config() is not a read).
    assert.match(r.stderr, /sluice: statement denied by rule "read-only-guard"[\s\S]*set_config\('search_path', '', false\)/);
  });
});
