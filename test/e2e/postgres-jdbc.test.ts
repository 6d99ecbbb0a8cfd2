/**
 * A fifth real client: pgjdbc (Debian's libpostgresql-jdbc-java on the JDK, which `.ci/run`
 * installs), the driver of every JVM tool. It SETs extra_float_digits and application_name on
 * connect, switches to named server-side statements from a statement's fifth execution, SETs
 * session characteristics for setReadOnly/setTransactionIsolation, reads through portals with a
 * fetch size, and batches inserts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mintLocalToken } from '../../src/identity/index.js';
import { startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const JAVA = process.env.SLUICE_TEST_JAVA ?? 'java';
const DRIVER = process.env.SLUICE_TEST_PGJDBC ?? '/usr/share/java/postgresql.jar';
const SOURCE = new URL('./fixtures/JdbcClient.java', import.meta.url).pathname;

describe('pgjdbc through the gateway', () => {
  let s: StandardGateway;
  const out = new Map<string, string>();

  before(async () => {
    s = await startStandardGateway();
    const reader = await mintLocalToken(s.config, { role: 'reader', subject: 'jdbc-reader@acme' });
    const writer = await mintLocalToken(s.config, { role: 'writer', subject: 'jdbc-writer@acme' });
    const { stdout } = await run(JAVA, ['-cp', DRIVER, SOURCE, String(s.port), reader, writer], { timeout: 120_000 });
    for (const line of stdout.split('\n')) {
      const tab = line.indexOf('\t');
      if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
    }
  });

  after(async () => {
    await s?.close();
  });

  it('connects through its setup queries (SET extra_float_digits, SET application_name) with a role whose rules name no SET', () => {
    // The writer's rules allow no `set`: its connection opening at all is the check.
    assert.equal(out.get('count'), '[[4]]');
  });

  it('masks rows from plain and server-side prepared statements', () => {
    assert.equal(out.get('select'), '[[Ada Lovelace, a***@example.com, 4111 **** **** 1111, [REDACTED:password]], [Alan Turing, a***@example.org, 5500-****-****-0004, [REDACTED:password]]]');
    assert.equal(out.get('prepared'), `[${Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? '4111 **** **** 1111' : '5500-****-****-0004')).join(', ')}]`);
    assert.equal(out.get('masked'), '[[[REDACTED:github_token]], [[REDACTED:aws_access_key]]]');
  });

  it('denies a write with SQLSTATE 42501 and the connection goes on', () => {
    assert.match(out.get('denied') ?? '', /^!! 42501 ERROR: sluice: statement denied by rule "reader-no-writes"/);
    assert.equal(out.get('after denied'), '[[50]]');
  });

  it('setReadOnly, setTransactionIsolation, a transaction with a fetch size, rollback, DatabaseMetaData', () => {
    assert.equal(out.get('setReadOnly'), 'ok');
    assert.equal(out.get('setTransactionIsolation'), 'ok');
    assert.equal(out.get('transaction'), '[[***-**-6789], [***-**-1120]]');
    assert.equal(out.get('fetch size'), '50');
    assert.equal(out.get('rollback'), 'ok');
    assert.equal(out.get('metadata tables'), '[customers, orders]');
    assert.equal(out.get('metadata columns'), '[id, name, email, card, ssn, api_key, password]');
    assert.equal(out.get('metadata keys'), '[pk:id, index:orders_pkey, fk:customer_id->customers, best:id]');
  });

  it('batched inserts and INSERT … RETURNING', () => {
    assert.equal(out.get('insert'), '[1, 1, 1]');
    assert.equal(out.get('returning'), '[[3100]]');
  });
});
