/**
 * Prepared statements and portals share one namespace between the wire protocol and SQL. These
 * tests send, with a bare wire client, the sequences that would let a statement run under another
 * statement's decision: FETCH of a portal bound to a held DELETE … RETURNING, a protocol Execute of
 * a name redefined by SQL PREPARE, and of a name SQL PREPARE made. Each is refused and recorded;
 * the legitimate forms (FETCH of a read portal, a refused Parse in a pipeline, psycopg's
 * DEALLOCATE ALL after ROLLBACK) keep working.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord } from '../../src/audit/index.js';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, endedSessionRecords, fixtureConfig, type Fixture } from '../helpers/gateway.js';
import { dataRow, errorFields, msg, rawConnect, type RawClient, type RawMessage } from '../helpers/raw-pg.js';

function config(f: Fixture): string {
  return fixtureConfig(f, {
    http: true,
    roles: ['migrator', 'analyst', 'operator', { name: 'dba', approver: true }],
    connections: { appdb: { user: 'app_rw' } },
    policies: `  - role: migrator
    connection: appdb
    rules:
      - allow: [select, show, insert, prepare, transaction]
      - review: [delete]
        name: deletes-need-a-dba
        approval: { approvers: [dba], timeout: 1s }
  - role: analyst
    connection: appdb
    rules:
      - allow: [select]
      - deny: '*'
        name: analyst-reads-only
  - role: operator
    connection: appdb
    rules:
      - review: [delete]
        name: operator-deletes-need-a-dba
        approval: { approvers: [dba], timeout: 1s }
      - allow: '*'
`,
  });
}

const types = (ms: readonly RawMessage[]): string => ms.map((m) => m.type).join(' ');
const errors = (ms: readonly RawMessage[]): Record<string, string>[] => ms.filter((m) => m.type === 'E').map(errorFields);

describe('prepared statement and portal names shared by the protocol and SQL', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  let migrator: string;
  let analyst: string;
  let operator: string;

  before(async () => {
    f = await createFixture();
    const c = loadConfigFile(f.writeConfig(config(f)));
    gw = await startGateway(c, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    migrator = await mintLocalToken(c, { role: 'migrator', subject: 'names-migrator@acme', ttlMs: 600_000 });
    analyst = await mintLocalToken(c, { role: 'analyst', subject: 'names-analyst@acme', ttlMs: 600_000 });
    operator = await mintLocalToken(c, { role: 'operator', subject: 'names-operator@acme', ttlMs: 600_000 });
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const orders = async (): Promise<number> => Number((await f.pg.query('SELECT count(*) AS n FROM orders', 'app')).rows[0]?.n);

  it('refuses FETCH of a portal bound to a held DELETE … RETURNING: nothing is deleted without approval', async () => {
    const before = await orders();
    const c: RawClient = await rawConnect(port, 'migrator', 'appdb', migrator);
    try {
      assert.equal(types(await c.exchange([msg.query('BEGIN')])), 'C Z');
      const out = await c.exchange([msg.parse('held', 'DELETE FROM orders WHERE id < 5 RETURNING id'), msg.bind('p', 'held'), msg.query('FETCH ALL FROM p'), msg.query('MOVE ALL IN p')], 2);
      const errs = errors(out);
      assert.equal(errs.length, 2, types(out));
      for (const e of errs) {
        assert.equal(e.C, '42501');
        assert.match(e.M ?? '', /sql-protocol-statement/);
        assert.match(e.D ?? '', /portal "p" would run its bound statement outside Execute/);
      }
      assert.ok(!out.some((m) => m.type === 'D'), 'no row of the DELETE came back');
      await c.exchange([msg.sync()]);
      await c.exchange([msg.query('COMMIT')]);
    } finally {
      c.close();
    }
    assert.equal(await orders(), before, 'the held DELETE did not run');
    const records = await endedSessionRecords(gw.audit.store, 'names-migrator@acme');
    const fetches = records.filter((r) => r.type === 'command' && /^(FETCH|MOVE)/.test(String(r.command?.text)));
    assert.deepEqual(fetches.map((r) => [r.decision?.effect, r.decision?.rule]), [['deny', 'sql-protocol-statement'], ['deny', 'sql-protocol-statement']]);
  });

  it('refuses SQL EXECUTE of a held protocol statement, even for a role that allows every other verb', async () => {
    const before = await orders();
    const c = await rawConnect(port, 'operator', 'appdb', operator);
    try {
      assert.equal(types(await c.exchange([msg.parse('h', 'DELETE FROM orders WHERE id < 5'), msg.sync()])), '1 Z');
      for (const sql of ['EXECUTE h', 'EXPLAIN ANALYZE EXECUTE h', 'CREATE TABLE stolen AS EXECUTE h']) {
        const out = await c.exchange([msg.query(sql)]);
        const [e] = errors(out);
        assert.match(e?.M ?? '', /sql-protocol-statement/, `${sql}: ${types(out)}`);
        assert.match(e?.D ?? '', /EXECUTE h would run a statement prepared through the protocol outside Execute/);
      }
      // A statement the same role prepares with SQL is decided by its body at PREPARE (held here).
      assert.equal(types(await c.exchange([msg.query('SELECT 1')])), 'T D C Z');
    } finally {
      c.close();
    }
    assert.equal(await orders(), before, 'the held DELETE did not run');
  });

  it('keeps a portal name marked when SQL reuses it: a failed DECLARE rolled back to a savepoint does not unlock FETCH', async () => {
    const before = await orders();
    const c = await rawConnect(port, 'operator', 'appdb', operator);
    try {
      await c.exchange([msg.query('BEGIN')]);
      assert.equal(types(await c.exchange([msg.parse('held2', 'DELETE FROM orders WHERE id < 5 RETURNING id'), msg.bind('p2', 'held2'), msg.sync()])), '1 2 Z');
      const out = await c.exchange([msg.query('SAVEPOINT s'), msg.query('DECLARE p2 CURSOR FOR SELECT 1'), msg.query('ROLLBACK TO SAVEPOINT s'), msg.query('FETCH ALL FROM p2')], 4);
      const errs = errors(out);
      assert.equal(errs[0]?.C, '42P03', 'the DECLARE failed upstream: the portal exists');
      assert.match(errs[1]?.M ?? '', /sql-protocol-statement/, types(out));
      assert.ok(!out.some((m) => m.type === 'D'));
      await c.exchange([msg.query('ROLLBACK')]);
    } finally {
      c.close();
    }
    assert.equal(await orders(), before);
  });

  it('still lets FETCH read a portal bound to a pure read, masked', async () => {
    const c = await rawConnect(port, 'analyst', 'appdb', analyst);
    try {
      const out = await c.exchange([msg.parse('r', 'SELECT email FROM customers ORDER BY id'), msg.bind('q', 'r'), msg.query('FETCH ALL FROM q'), msg.sync()], 2);
      assert.equal(errors(out).length, 0, JSON.stringify(errors(out)));
      assert.deepEqual(out.filter((m) => m.type === 'D').map((m) => dataRow(m)[0]), ['a***@example.com', 'a***@example.org']);
    } finally {
      c.close();
    }
  });

  it('refuses a protocol Execute of a name SQL PREPARE redefined: the INSERT does not run as the SELECT it replaced', async () => {
    const before = await orders();
    const c = await rawConnect(port, 'migrator', 'appdb', migrator);
    try {
      assert.equal(types(await c.exchange([msg.parse('s3', 'SELECT 1'), msg.sync()])), '1 Z');
      assert.equal(types(await c.exchange([msg.query('DEALLOCATE s3')])), 'C Z');
      assert.equal(types(await c.exchange([msg.query('PREPARE s3 AS INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING id')])), 'C Z');
      const out = await c.exchange([msg.bind('', 's3'), msg.execute(''), msg.sync()]);
      const [e] = errors(out);
      assert.equal(e?.C, '42501', types(out));
      assert.match(e?.M ?? '', /sql-untracked-statement/);
      assert.match(e?.D ?? '', /portal "" is bound to a statement Sluice did not see parsed/);
      // A name SQL PREPARE made and the protocol never parsed: refused the same way.
      assert.equal(types(await c.exchange([msg.query('PREPARE s4 AS INSERT INTO orders (customer_id, total) VALUES (1, 2)')])), 'C Z');
      const out4 = await c.exchange([msg.bind('x', 's4'), msg.execute('x'), msg.sync()]);
      assert.match(errors(out4)[0]?.M ?? '', /sql-untracked-statement/, types(out4));
      // The session stays usable.
      const ok = await c.exchange([msg.query('SELECT 42')]);
      assert.deepEqual(dataRow(ok.find((m) => m.type === 'D') as RawMessage), ['42']);
    } finally {
      c.close();
    }
    assert.equal(await orders(), before, 'neither INSERT ran');
    const records = await endedSessionRecords(gw.audit.store, 'names-migrator@acme');
    const refused = records.filter((r: AuditRecord) => r.decision?.rule === 'sql-untracked-statement');
    assert.equal(refused.length, 2);
    assert.ok(refused.every((r) => r.outcome === 'denied' || r.decision?.effect === 'deny'));
  });

  it('stays in step when the client sends the rest of a failed batch after the error came back (pipeline mode with Flush)', async () => {
    const c = await rawConnect(port, 'analyst', 'appdb', analyst);
    try {
      const failed = await c.exchange([msg.parse('', 'SELECT 1'), msg.bind('', ''), msg.execute(''), msg.parse('', 'DELETE FROM orders'), msg.bind('', ''), msg.execute(''), msg.flush()], 0, (m) => m.some((x) => x.type === 'E'));
      assert.match(errorFields(failed.find((m) => m.type === 'E') as RawMessage).M ?? '', /analyst-reads-only/);
      // The upstream now ignores everything up to the Sync; only the Sync is answered.
      const rest = await c.exchange([msg.parse('', 'SELECT 2'), msg.bind('', ''), msg.execute(''), msg.sync()]);
      assert.equal(types(rest), 'Z');
      // Later results are still matched to their statements: a secret-like column is masked by name.
      const after = await c.exchange([msg.query('SELECT password FROM customers ORDER BY id')]);
      assert.deepEqual(after.filter((m) => m.type === 'D').map((m) => dataRow(m)[0]), ['[REDACTED:password]', '[REDACTED:password]'], types(after));
    } finally {
      c.close();
    }
  });

  it('masks by column name for a client that sends Execute without Describe: Sluice describes the portal itself, unseen', async () => {
    const c = await rawConnect(port, 'analyst', 'appdb', analyst);
    try {
      const ext = await c.exchange([msg.parse('', 'SELECT id, password FROM customers ORDER BY id'), msg.bind('', ''), msg.execute(''), msg.sync()]);
      assert.equal(types(ext), '1 2 D D C Z', 'no RowDescription the client did not ask for');
      assert.deepEqual(ext.filter((m) => m.type === 'D').map((m) => dataRow(m)), [['1', '[REDACTED:password]'], ['2', '[REDACTED:password]']]);
      // A statement without result columns: the upstream's NoData to Sluice's Describe stays Sluice's too.
      const none = await c.exchange([msg.parse('', 'BEGIN'), msg.bind('', ''), msg.execute(''), msg.sync()]);
      assert.equal(types(none), '1 2 C Z');
      await c.exchange([msg.query('ROLLBACK')]);
    } finally {
      c.close();
    }
  });

  it('a refused Parse in a pipeline gives one error and one record, as before', async () => {
    const c = await rawConnect(port, 'analyst', 'appdb', analyst);
    try {
      const out = await c.exchange([msg.parse('d', 'DELETE FROM orders'), msg.bind('', 'd'), msg.execute(''), msg.sync()]);
      const errs = errors(out);
      assert.equal(errs.length, 1, types(out));
      assert.match(errs[0]?.M ?? '', /analyst-reads-only/);
    } finally {
      c.close();
    }
    const records = await endedSessionRecords(gw.audit.store, 'names-analyst@acme');
    const denied = records.filter((r) => r.type === 'command' && r.decision?.effect === 'deny');
    assert.deepEqual(denied.map((r) => r.decision?.rule), ['analyst-reads-only']);
  });

  it("lets a driver's session control through a rule list written for the data (BEGIN, ROLLBACK, DEALLOCATE ALL)", async () => {
    const c = await rawConnect(port, 'analyst', 'appdb', analyst);
    try {
      await c.exchange([msg.parse('auto1', 'SELECT 1'), msg.sync()]);
      const out = await c.exchange([msg.query('BEGIN'), msg.query('SELECT 1/0'), msg.query('ROLLBACK'), msg.query('DEALLOCATE ALL'), msg.query('SAVEPOINT x')], 5);
      assert.deepEqual(errors(out).map((e) => e.C), ['22012', '25P01'], types(out));
      // DEALLOCATE ALL dropped auto1 upstream, and Sluice forgot it too.
      const again = await c.exchange([msg.bind('', 'auto1'), msg.execute(''), msg.sync()]);
      assert.deepEqual(errors(again).map((e) => e.C), ['26000']);
    } finally {
      c.close();
    }
  });
});

describe('column names lookup', () => {
  it('a lookup the upstream refuses (its connection limit) leaves the names results give, and the session goes on', async () => {
    const f = await createFixture();
    let gw: Gateway | undefined;
    try {
      await f.pg.query(`CREATE ROLE app_one LOGIN PASSWORD '${f.upstreamPassword}' CONNECTION LIMIT 1; GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_one`, 'app');
      const yaml = config(f).replace('user: app_rw', 'user: app_one');
      const lines: string[] = [];
      gw = await startGateway(loadConfigFile(f.writeConfig(yaml)), { log: (l) => lines.push(l) });
      const token = await mintLocalToken(loadConfigFile(f.configPath), { role: 'analyst', subject: 'limited@acme', ttlMs: 600_000 });
      const c = await rawConnect(gw.addresses.postgres?.port as number, 'analyst', 'appdb', token);
      try {
        const out = await c.exchange([msg.query('SELECT email, password FROM customers ORDER BY id')]);
        assert.deepEqual(out.filter((m) => m.type === 'D').map((m) => dataRow(m)), [
          ['a***@example.com', '[REDACTED:password]'],
          ['a***@example.org', '[REDACTED:password]'],
        ], types(out));
      } finally {
        c.close();
      }
      assert.ok(lines.some((l) => /column names for appdb could not be looked up/.test(l)), lines.join('\n'));
    } finally {
      await gw?.close();
      await f.cleanup();
    }
  });
});
