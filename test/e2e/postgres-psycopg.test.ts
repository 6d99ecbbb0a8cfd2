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

  it('copies in and out (masked), pipelines executemany, and cancels a running statement', () => {
    assert.equal(out['copy in'], 200);
    assert.equal(out['copy out'], 'a***@example.com\t4111 **** **** 1111\na***@example.org\t5500-****-****-0004\n');
    assert.equal(out.executemany, 30);
    assert.deepEqual(out.cancel, { cancelled: '57014' });
    denied(out['writer denied']);
    assert.equal(out['writer after denial'], 4);
  });
});
