/**
 * More real clients: asyncpg (its own implementation of the protocol, binary formats, named
 * statements, type introspection with a recursive CTE, a pool that resets connections with
 * `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`) and psycopg2 (libpq,
 * client-side parameters, `set_session` that SETs read-only and isolation defaults), and SQLAlchemy
 * over both (connect-time SHOWs, table reflection; LangChain's SQL agents use it). Debian's
 * python3-asyncpg, python3-psycopg2 and python3-sqlalchemy, which `.ci/run` installs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mintLocalToken } from '../../src/identity/index.js';
import { startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const PYTHON = process.env.SLUICE_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = new URL('./fixtures/python_drivers.py', import.meta.url).pathname;

describe('asyncpg, psycopg2 and SQLAlchemy through the gateway', () => {
  let s: StandardGateway;
  let out: Record<string, unknown>;

  before(async () => {
    s = await startStandardGateway({ roles: ['strict'], policies: "  - role: strict\n    connection: appdb\n    rules:\n      - allow: [select]\n      - deny: '*'\n" });
    const reader = await mintLocalToken(s.config, { role: 'reader', subject: 'py-reader@acme' });
    const writer = await mintLocalToken(s.config, { role: 'writer', subject: 'py-writer@acme' });
    const strict = await mintLocalToken(s.config, { role: 'strict', subject: 'py-strict@acme' });
    const { stdout } = await run(PYTHON, [SCRIPT, JSON.stringify({ port: s.port, reader, writer, strict })], { timeout: 90_000 });
    out = JSON.parse(stdout) as Record<string, unknown>;
  });

  after(async () => {
    await s?.close();
  });

  const denied = (v: unknown): void => assert.equal((v as { error?: { sqlstate?: string } }).error?.sqlstate, '42501', JSON.stringify(v));
  const CARDS = ['4111 **** **** 1111', '5500-****-****-0004'];

  it('asyncpg: masked rows in binary format, parameters, prepared statements', () => {
    assert.deepEqual(out['a.fetch'], [
      ['Ada Lovelace', 'a***@example.com', CARDS[0], '[REDACTED:password]'],
      ['Alan Turing', 'a***@example.org', CARDS[1], '[REDACTED:password]'],
    ]);
    assert.equal(out['a.param'], '***-**-1120');
    assert.deepEqual(out['a.prepared'], ['a***@example.com', 'a***@example.org']);
  });

  it("asyncpg: its type introspection (a recursive CTE with a column alias list) is not taken for a masking evasion", () => {
    assert.deepEqual(out['a.introspection'], [[1, 2], '{"k": 1}']);
  });

  it('asyncpg: a denied write leaves the connection usable; portal cursors page through a result', () => {
    denied(out['a.denied']);
    assert.equal(out['a.after denied'], 50);
    assert.deepEqual(out['a.cursor'], Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it("asyncpg: a pool's reset query between acquisitions passes a role whose rules name only the data", () => {
    assert.deepEqual(out['a.pool'], [CARDS[0], CARDS[1], CARDS[0]]);
  });

  it('asyncpg: writes, executemany, COPY in from records and COPY out masked per column', () => {
    assert.equal(out['a.insert'], 'INSERT 0 1');
    assert.equal(out['a.executemany'], null);
    assert.equal(out['a.copy in'], 'COPY 2');
    assert.equal(out['a.copy out'], 'COPY 2');
    assert.equal(out['a.copy out rows'], 'Ada Lovelace\t[REDACTED:github_token]\nAlan Turing\t[REDACTED:aws_access_key]\n');
    assert.equal(out['a.count'], 5);
  });

  it('psycopg2: masked reads, a denial and rollback, a named (server-side) cursor, dict rows', () => {
    assert.deepEqual(out['p.select'], [
      ['Ada Lovelace', 'a***@example.com', CARDS[0]],
      ['Alan Turing', 'a***@example.org', CARDS[1]],
    ]);
    assert.deepEqual(out['p.param'], [['[REDACTED:github_token]']]);
    denied(out['p.denied']);
    assert.deepEqual(out['p.after denied'], [[55]]);
    assert.deepEqual(out['p.named cursor'], [[1, CARDS[0]], [2, CARDS[1]]]);
    assert.deepEqual(out['p.dict'], { email: 'a***@example.org' });
  });

  it('psycopg2: set_session(readonly=True) on a read-only role is allowed (it only confirms read-only)', () => {
    assert.deepEqual(out['p.set_session'], [['on'], ['serializable']]);
  });

  it("SQLAlchemy over psycopg2 and asyncpg, for a role allowed only select: connect-time SHOWs, reflection, masked rows", () => {
    assert.deepEqual(out['s.psycopg2'], ['id', 'name', 'email', 'card', 'ssn', 'api_key', 'password', [['Ada Lovelace', CARDS[0]], ['Alan Turing', CARDS[1]]]]);
    denied(out['s.denied']);
    assert.deepEqual(out['s.asyncpg'], [['a***@example.org']]);
  });

  it('psycopg2: INSERT … RETURNING, execute_values, copy_from and copy_expert out (masked)', () => {
    assert.deepEqual(out['p.insert returning'], ['2000']);
    assert.equal(out['p.execute_values'], null);
    assert.equal(out['p.copy_from'], null);
    assert.equal(out['p.copy out'], 'Ada Lovelace\t***-**-6789\nAlan Turing\t***-**-1120\n');
    assert.equal(out['p.count'], 5);
  });
});
