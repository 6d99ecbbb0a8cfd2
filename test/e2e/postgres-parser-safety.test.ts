/**
 * Parser differentials, end to end with psql and a real PostgreSQL. Sluice decides on SQL as
 * libpg-query reads it (UTF-8, standard_conforming_strings on); a session that made the server
 * read the same bytes otherwise could run a DELETE that Sluice saw as a SELECT literal, past the
 * approval its role requires. Each test here ran that DELETE before the guard existed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, fixtureConfig, type Fixture } from '../helpers/gateway.js';
import { msg, rawConnect, type RawMessage } from '../helpers/raw-pg.js';

const run = promisify(execFile);

function config(f: Fixture): string {
  return fixtureConfig(f, {
    roles: ['agent', 'reader'],
    connections: { appdb: { user: 'app_rw' }, 'appdb-ro': { user: 'app_ro' } },
    policies: `  - role: agent
    connection: appdb
    rules:
      - allow: [select, show, set, insert, side-effect]
      - review: [delete]
        name: deletes-need-approval
      - deny: '*'
  - role: reader
    connection: appdb-ro
    rules:
      - allow: [select, show, set]
`,
  });
}

describe('statements the server would read differently from Sluice', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  let agent: string;
  let reader: string;

  const psql = async (user: string, token: string, db: string, commands: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> => {
    const args = ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', db, '-At', ...commands.flatMap((c) => ['-c', c])];
    try {
      const r = await run('psql', args, { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10', ...env }, timeout: 30_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const orders = async (): Promise<number> => Number((await f.pg.query('SELECT count(*)::int AS n FROM orders', 'app')).rows[0]?.n);

  before(async () => {
    f = await createFixture();
    gw = await startGateway(loadConfigFile(f.writeConfig(config(f))), { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    agent = await mintLocalToken(gw.config, { role: 'agent', subject: 'agent@acme' });
    reader = await mintLocalToken(gw.config, { role: 'reader', subject: 'reader@acme' });
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  it('the DELETE needs approval as written plainly (the baseline the attacks try to dodge)', async () => {
    const r = await psql('agent', agent, 'appdb', ['DELETE FROM orders']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /requires approval by rule "deletes-need-approval"/);
    assert.equal(await orders(), 50);
  });

  it('refuses standard_conforming_strings = off, so a backslash-quoted literal stays one literal', async () => {
    const r = await psql('agent', agent, 'appdb', ['SET standard_conforming_strings = off', "SELECT 'x\\''; DELETE FROM orders; --'", 'SELECT count(*) FROM orders']);
    assert.match(r.stderr, /denied by rule "sql-parser-safety"/);
    assert.match(r.stderr, /standard_conforming_strings must stay on/);
    // With the setting refused, the server reads the second command as Sluice does: one literal.
    assert.match(r.stdout, /x\\'; DELETE FROM orders; --/);
    assert.equal(await orders(), 50);
  });

  it('refuses set_config() and pg_settings writes of those settings, even for a role allowed side effects', async () => {
    const r = await psql('agent', agent, 'appdb', [
      "SELECT set_config('standard_conforming_strings', 'off', false)",
      "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
      "SET NAMES 'SJIS'",
      'SHOW standard_conforming_strings',
      'SHOW client_encoding',
    ]);
    assert.equal(r.stderr.match(/denied by rule "sql-parser-safety"/g)?.length, 3, r.stderr);
    assert.equal(r.stdout.trim(), 'on\nUTF8');
  });

  it('refuses every client encoding but UTF8 at startup: SJIS hides a backslash in a character, LATIN1 changes dollar-quote tags', async () => {
    for (const encoding of ['SJIS', 'BIG5', 'LATIN1', 'WIN1252']) {
      const r = await psql('agent', agent, 'appdb', ['SELECT 1'], { PGCLIENTENCODING: encoding });
      assert.notEqual(r.code, 0, encoding);
      assert.match(r.stderr, new RegExp(`client_encoding ${encoding} is not supported through Sluice; use UTF8`));
    }
    // What LATIN1 allowed (it ran the DELETE before): the LATIN1 bytes of $ä$ and $å$ both decode
    // to $\uFFFD$ as UTF-8, so Sluice ended the literal at $å$ and saw `' $ä$ ; DELETE …'` as a
    // second literal, while the server read on to the second $ä$ and ran the DELETE. Sent as
    // UTF-8, Sluice reads the tags as the server does and holds the DELETE.
    const utf8 = await psql('agent', agent, 'appdb', ["SELECT $ä$ x $å$, ' $ä$ ; DELETE FROM orders; -- '", 'SHOW client_encoding'], { PGCLIENTENCODING: 'UTF8' });
    assert.match(utf8.stderr, /statement 2 of 2: rule deletes-need-approval requires approval: delete/);
    assert.equal(utf8.stdout.trim(), 'UTF8');
    // psql in the C locale asks for SQL_ASCII: served over this UTF8 database, which checks the bytes.
    const ascii = await psql('agent', agent, 'appdb', ['SELECT name FROM customers ORDER BY id'], { PGCLIENTENCODING: 'SQL_ASCII' });
    assert.equal(ascii.stdout.trim(), 'Ada Lovelace\nAlan Turing', ascii.stderr);
    assert.equal(await orders(), 50);
  });

  it('ends the session when the server reports a setting changed by other means (a function calling set_config)', async () => {
    await f.pg.query("CREATE FUNCTION lax() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$", 'app');
    try {
      const r = await psql('agent', agent, 'appdb', ['SELECT lax()', "SELECT 'x\\''; DELETE FROM orders; --'"]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /FATAL: +sluice: the session changed how the server reads SQL and was ended \(sql-parser-safety\)/);
      assert.match(r.stderr, /standard_conforming_strings = off/);
      assert.equal(await orders(), 50);
    } finally {
      await f.pg.query('DROP FUNCTION lax()', 'app');
    }
  });

  it('decides a statement pipelined behind one that may run code only once the server has answered it', async () => {
    // The DELETE hidden in a literal (under standard_conforming_strings = off) is sent in the same
    // write as the call that turns the setting off: decided at once, it ran before the server's
    // ParameterStatus could end the session.
    await f.pg.query("CREATE FUNCTION lax() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$", 'app');
    /** Send `frames` in one write on a fresh session: it must end in an error with every order still there. */
    const attack = async (frames: Buffer[], what: string): Promise<RawMessage[]> => {
      const c = await rawConnect(port, 'agent', 'appdb', agent);
      try {
        const got = await c.exchange(frames, 1, (m) => m.some((x) => x.type === 'E'));
        assert.ok(got.some((m) => m.type === 'E'), `${what}: the session is ended`);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(await orders(), 50, `${what}: the DELETE never ran`);
        return got;
      } finally {
        c.close();
      }
    };
    try {
      await attack([msg.query('SELECT lax()'), msg.query("SELECT 'x\\''; DELETE FROM orders; --'")], 'pipelined behind a simple Query');
      // The same behind an extended-protocol batch, pipelined after its Sync (as postgres.js does).
      await attack([msg.parse('', 'SELECT lax()'), msg.bind('', ''), msg.execute(''), msg.sync(), msg.query("SELECT 'x\\''; DELETE FROM orders; --'")], 'behind a batch');
      // Inside one batch the server reports the change only at Sync, after it has parsed what
      // follows: Sluice asks it for the settings first. To Sluice the second Parse is a SELECT of
      // a literal; with standard_conforming_strings off the server reads a DELETE in a CTE.
      const hidden = "WITH t AS (SELECT 'x\\'' ), d AS (DELETE FROM orders RETURNING 1) SELECT 1 --') SELECT 1";
      const inBatch = await attack([msg.parse('', 'SELECT lax()'), msg.bind('', ''), msg.execute(''), msg.parse('', hidden), msg.bind('', ''), msg.execute(''), msg.sync()], 'in the same batch');
      const fatal = inBatch.find((m) => m.type === 'E');
      assert.match(fatal?.body.toString() ?? '', /FATAL[\s\S]*sql-parser-safety[\s\S]*standard_conforming_strings = off/);
      // A Query the server discards (sent in a batch that already failed, before its Sync) gets no
      // answer of its own: nothing behind it waits for one.
      const d = await rawConnect(port, 'agent', 'appdb', agent);
      try {
        const frames = [msg.parse('', 'SELECT 1/0'), msg.bind('', ''), msg.execute(''), msg.query('SELECT pg_sleep(0)'), msg.sync(), msg.query('SELECT 42')];
        const got3 = await d.exchange(frames, 2);
        const rows = got3.filter((m) => m.type === 'D');
        assert.equal(rows.length, 1, got3.map((m) => m.type).join(' '));
        assert.match(rows[0]?.body.toString() ?? '', /42/);
      } finally {
        d.close();
      }
    } finally {
      await f.pg.query('DROP FUNCTION lax()', 'app');
    }
  });

  it("refuses a session whose upstream starts with such a setting (a role's or database's default)", async () => {
    await f.pg.query('ALTER ROLE app_rw SET standard_conforming_strings = off');
    try {
      const r = await psql('agent', agent, 'appdb', ['SELECT 1']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /upstream session cannot be proxied safely: the server reports standard_conforming_strings = off/);
    } finally {
      await f.pg.query('ALTER ROLE app_rw RESET standard_conforming_strings');
    }
    const ok = await psql('agent', agent, 'appdb', ['SELECT 1']);
    assert.equal(ok.stdout.trim(), '1');
  });

  it('refuses a search_path that puts a schema before pg_catalog, where a lower() of its own would run as a read', async () => {
    await f.pg.query("CREATE SCHEMA evil; CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$ DELETE FROM public.orders; SELECT $1 $$; GRANT USAGE ON SCHEMA evil TO app_rw; GRANT EXECUTE ON FUNCTION evil.lower(text) TO app_rw", 'app');
    try {
      const r = await psql('agent', agent, 'appdb', ['SET search_path = evil, pg_catalog', "SELECT lower('X')", "SELECT set_config('search_path', 'evil, pg_catalog', false)"]);
      assert.equal(r.stderr.match(/denied by rule "sql-parser-safety"/g)?.length, 2, r.stderr);
      assert.match(r.stderr, /lists pg_catalog after another schema/);
      assert.equal(r.stdout.trim(), 'x');
      assert.equal(await orders(), 50);
      // As a startup parameter (JDBC's currentSchema sends one) it is refused before authentication.
      await assert.rejects(rawConnect(port, 'agent', 'appdb', agent, { search_path: 'evil,pg_catalog' }), /E\(sluice: search_path evil,pg_catalog lists pg_catalog after another schema\)/);
      const ok = await rawConnect(port, 'agent', 'appdb', agent, { search_path: 'public' });
      ok.close();
    } finally {
      await f.pg.query('DROP SCHEMA evil CASCADE', 'app');
    }
  });

  it("lets drivers reset a read-only session (RESET ALL, DISCARD ALL), which stays read-only", async () => {
    const r = await psql('reader', reader, 'appdb-ro', [
      'SELECT pg_advisory_unlock_all()',
      'CLOSE ALL',
      'UNLISTEN *',
      'RESET ALL',
      'DISCARD ALL',
      'RESET default_transaction_read_only',
      'SHOW default_transaction_read_only',
      'SET default_transaction_read_only = off',
    ]);
    assert.equal(r.stdout.trim().split('\n').at(-1), 'on', r.stdout + r.stderr);
    assert.match(r.stderr, /denied by rule "read-only-guard"/);
    assert.equal(r.stderr.match(/ERROR/g)?.length, 1, r.stderr);
  });
});
