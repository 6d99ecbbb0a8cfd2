/**
 * A third real client: psycopg 3 (Debian's python3-psycopg, on libpq). It behaves unlike `pg`
 * and postgres.js: it opens transactions with BEGIN, prepares statements it runs often (named
 * protocol statements) and sends DEALLOCATE ALL when it rolls back with any prepared, has a
 * pipeline mode, server-side cursors over DECLARE/FETCH, COPY and out-of-band cancel.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mintLocalToken } from '../../src/identity/index.js';
import { startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const PYTHON = process.env.SLUICE_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = new URL('./fixtures/psycopg_client.py', import.meta.url).pathname;

type Result = unknown;

describe('psycopg 3 through the gateway', () => {
  let s: StandardGateway;
  let out: Record<string, Result>;

  before(async () => {
    s = await startStandardGateway();
    // COPY of a table with a generated column sends fewer columns than SELECT * describes.
    await s.f.pg.query("CREATE TABLE generated (id int, a text, b text GENERATED ALWAYS AS (a || '!') STORED); INSERT INTO generated (id, a) VALUES (1, 'x'); GRANT SELECT ON generated TO app_rw", 'app');
    const reader = await mintLocalToken(s.config, { role: 'reader', subject: 'psycopg-reader@acme' });
    const writer = await mintLocalToken(s.config, { role: 'writer', subject: 'psycopg-writer@acme' });
    const { stdout } = await run(PYTHON, [SCRIPT, JSON.stringify({ port: s.port, reader, writer })], { timeout: 60_000 });
    out = JSON.parse(stdout) as Record<string, Result>;
  });

  after(async () => {
    await s?.close();
  });

  const denied = (v: Result): void => assert.equal((v as { error?: { sqlstate?: string } }).error?.sqlstate, '42501', JSON.stringify(v));

  it('reads masked rows with simple, parameterised, binary and prepared statements', () => {
    assert.deepEqual(out.select, [
      ['Ada Lovelace', 'a***@example.com', '4111 **** **** 1111'],
      ['Alan Turing', 'a***@example.org', '5500-****-****-0004'],
    ]);
    assert.deepEqual(out.params, [['4111 **** **** 1111']]);
    assert.deepEqual(out.binary, [['***-**-1120']]);
    assert.deepEqual(out.prepared, ['a***@example.com', 'a***@example.org', 'a***@example.com', 'a***@example.org']);
  });

  it('denies a write inside its implicit transaction, and the connection recovers with ROLLBACK', () => {
    denied(out.denied);
    assert.equal(out['rollback after denial'], 50);
  });

  it('works in pipeline mode, a denied statement in the pipeline included', () => {
    assert.deepEqual(out.pipeline, [[[50]], [['a***@example.com']]]);
    assert.deepEqual(out['pipeline with a denied statement'], { raised: '42501' });
    assert.equal(out['after the pipeline'], 3);
  });

  it('reads through a server-side cursor (DECLARE/FETCH), masked', () => {
    assert.deepEqual(out['server-side cursor'], [
      [1, 'a***@example.com'],
      [2, 'a***@example.org'],
    ]);
  });

  it('rolls back a failed transaction with prepared statements (DEALLOCATE ALL) and prepares again', () => {
    assert.deepEqual(out['writer prepared'], ['1', '2']);
    assert.equal((out['failed statement'] as { error: { sqlstate: string } }).error.sqlstate, '22012');
    assert.equal(out['rollback with prepared statements'], 'ok');
    assert.equal(out['prepared again'], '3');
  });

  it('masks COPY output by column (the password column) in text, csv and binary', () => {
    assert.equal(out['copy text by column'], 'Ada Lovelace\t[REDACTED:password]\nAlan Turing\t[REDACTED:password]\n');
    assert.equal(out['copy csv by column'], 'name,password,card\nAda Lovelace,"[REDACTED:password]","4111 **** **** 1111"\nAlan Turing,"[REDACTED:password]","5500-****-****-0004"\n');
    const hex = (t: string): string => Buffer.from(t).toString('hex');
    assert.deepEqual(out['copy binary by column'], [
      ['00000001', hex('[REDACTED:password]'), hex('a***@example.com')],
      ['00000002', hex('[REDACTED:password]'), hex('a***@example.org')],
    ]);
  });

  it('withholds COPY rows it cannot match to the described columns, with an error, and the session goes on', () => {
    const r = out['copy with columns it cannot match'] as { error?: { sqlstate: string; message: string } };
    assert.equal(r.error?.sqlstate, '42501', JSON.stringify(r));
    assert.match(r.error?.message ?? '', /COPY output withheld/);
    assert.equal(out['after the withheld copy'], 5);
  });

  it('copies in and out (masked), pipelines executemany, and cancels a running statement', () => {
    assert.equal(out['copy in'], 200);
    assert.equal(out['copy out'], 'a***@example.com\t4111 **** **** 1111\na***@example.org\t5500-****-****-0004\n');
    assert.equal(out.executemany, 30);
    assert.deepEqual(out.cancel, { cancelled: '57014' });
    denied(out['writer denied']);
    assert.equal(out['writer after denial'], 4);
  });
});
