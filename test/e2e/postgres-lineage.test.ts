/**
 * Column rules follow a table's columns into the relations derived from it, with a real
 * PostgreSQL: views (renamed columns, views of views, computed columns), materialized views,
 * inheritance children and partitions. Without lineage.ts each of these showed the masked
 * column in clear, or let a statement compute on it under the view's own name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, fixtureConfig, type Fixture } from '../helpers/gateway.js';

const run = promisify(execFile);

const DERIVED_SQL = `
CREATE VIEW cust_v AS SELECT id, name, email AS contact, ssn AS tax_id, password AS pw FROM customers;
CREATE VIEW cust_vv AS SELECT v.pw AS secret, upper(c.name) AS shout FROM cust_v v JOIN customers c USING (id);
CREATE VIEW cust_up AS SELECT id, upper(password) AS up, name FROM customers;
CREATE MATERIALIZED VIEW cust_mv AS SELECT name, password AS p FROM customers;
CREATE TABLE vip () INHERITS (customers);
INSERT INTO vip (name, email, ssn, password) VALUES ('Grace Hopper', 'grace@navy.mil', '219-09-9999', 'cobol');
CREATE TABLE notes (id int, body text, at date) PARTITION BY RANGE (at);
CREATE TABLE notes_2026 PARTITION OF notes FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO notes VALUES (1, 'the merger closes friday', '2026-05-01');
CREATE SCHEMA billing;
CREATE TABLE billing.accounts (id int, iban text, holder text);
INSERT INTO billing.accounts VALUES (1, 'DE89 3704 0044 0532 0130 00', 'Ada');
CREATE TYPE creds AS (login text, password text);
CREATE TYPE point2 AS (x int, y int);
CREATE TABLE services (id int, login creds, logins creds[], at point2);
INSERT INTO services VALUES (1, ROW('admin', 'hunter2'), ARRAY[ROW('ops', 'swordfish')::creds], ROW(1, 2));
CREATE TABLE customer_history (id int, old customers);
INSERT INTO customer_history SELECT id, c FROM customers c;
`;

describe('masking through views, materialized views, child tables and partitions', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  let token: string;

  before(async () => {
    f = await createFixture();
    await f.pg.query(`SET ROLE app_rw; ${DERIVED_SQL}`, 'app');
    const yaml = fixtureConfig(f, {
      roles: ['analyst'],
      connections: {
        appdb: {
          user: 'app_rw',
          extra: `    mask:
      columns:
        "*.password*": redact
        "public.customers.email": hash
        "*.ssn": partial
        "public.notes.body": redact
        "billing.accounts.iban": redact
      hashKey: 0123456789abcdef0123456789abcdef
      detectors: [default]
`,
        },
      },
      policies: `  - role: analyst
    connection: appdb
    rules:
      - allow: [select, show, set, transaction, ddl, copy]
`,
    });
    const config = loadConfigFile(f.writeConfig(yaml));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    token = await mintLocalToken(config, { role: 'analyst', subject: 'analyst-bot', ttlMs: 3_600_000 });
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const withClient = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'analyst', database: 'appdb', password: token });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };

  const refused = async (c: pg.Client, sql: string, detail: RegExp): Promise<void> => {
    await assert.rejects(c.query(sql), (err: Error & { detail?: string }) => {
      assert.match(err.message, /masked-column-use/, sql);
      assert.match(err.detail ?? '', detail, sql);
      return true;
    });
  };

  it("masks a view's renamed columns by the rules of the table columns they select", async () => {
    await withClient(async (c) => {
      const base = await c.query('SELECT email FROM customers WHERE id = 1');
      const r = await c.query('SELECT id, name, contact, tax_id, pw FROM cust_v ORDER BY id');
      const ada = r.rows[0];
      assert.equal(ada.name, 'Ada Lovelace');
      assert.equal(ada.pw, '[REDACTED]');
      assert.equal(ada.tax_id, '***-**-6789');
      // The hash rule of customers.email, not the e-mail detector: the same value as the table gives.
      assert.equal(ada.contact, base.rows[0].email);
      assert.match(ada.contact, /^hash:/);
      const star = await c.query('SELECT * FROM cust_v ORDER BY id');
      assert.deepEqual(star.rows, r.rows);
      for (const row of r.rows) assert.ok(!['hunter2', 'correct horse', 'cobol'].includes(row.pw), row.pw);
    });
  });

  it('refuses computing on a view column that selects a masked one, as on the table column itself', async () => {
    await withClient(async (c) => {
      await refused(c, 'SELECT upper(pw) FROM cust_v', /column "pw" is masked/);
      await refused(c, "SELECT id FROM cust_v WHERE pw LIKE 'h%'", /column "pw" is masked/);
      await refused(c, "SELECT id FROM public.cust_v WHERE contact = 'ada@example.com'", /column "contact" is masked/);
      await refused(c, 'SELECT row_to_json(v) FROM cust_v v', /whole row as JSON/);
      // Columns that derive from nothing masked stay usable.
      const r = await c.query("SELECT upper(name) AS n FROM cust_v WHERE name LIKE 'Ada%'");
      assert.deepEqual(r.rows, [{ n: 'ADA LOVELACE' }]);
    });
  });

  it('masks COPY … TO STDOUT of a view and of a partition by the rules of the columns they derive from', async () => {
    const env = { ...process.env, PGPASSWORD: token };
    const copy = async (sql: string): Promise<string> =>
      (await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', sql], { env })).stdout;
    const view = await copy('COPY (SELECT id, pw, contact FROM cust_v ORDER BY id) TO STDOUT WITH (FORMAT csv)');
    assert.match(view, /^1,"?\[REDACTED\]"?,"?hash:/m);
    assert.ok(!view.includes('hunter2') && !view.includes('ada@example.com'), view);
    const part = await copy('COPY notes_2026 TO STDOUT');
    assert.equal(part, '1\t[REDACTED]\t2026-05-01\n');
  });

  it('follows views of views, and replaces computed columns of a view that computes on a masked column', async () => {
    await withClient(async (c) => {
      const vv = await c.query('SELECT secret, shout FROM cust_vv ORDER BY shout');
      assert.deepEqual(
        vv.rows.map((r) => r.secret),
        vv.rows.map(() => '[REDACTED]'),
      );
      assert.ok(vv.rows.some((r) => r.shout === 'ADA LOVELACE'));
      await refused(c, "SELECT 1 FROM cust_vv WHERE secret = 'hunter2'", /column "secret" is masked/);
      const up = await c.query('SELECT id, up, name FROM cust_up ORDER BY id');
      assert.equal(up.rows[0].up, '[REDACTED]');
      assert.equal(up.rows[0].name, 'Ada Lovelace');
      await refused(c, "SELECT id FROM cust_up WHERE up LIKE 'H%'", /column "up" is masked/);
    });
  });

  it('masks a materialized view by the rules of the columns it was made from', async () => {
    await withClient(async (c) => {
      const r = await c.query('SELECT name, p FROM cust_mv ORDER BY name');
      assert.ok(r.rows.length >= 2);
      for (const row of r.rows) assert.equal(row.p, '[REDACTED]');
    });
  });

  it("applies a parent table's rules to an inheritance child and to a partition queried directly", async () => {
    await withClient(async (c) => {
      const vip = await c.query('SELECT email, ssn, password FROM vip');
      assert.match(vip.rows[0].email, /^hash:/);
      assert.equal(vip.rows[0].ssn, '***-**-9999');
      await refused(c, 'SELECT upper(email) FROM vip', /column "email" is masked/);
      await refused(c, 'SELECT row_to_json(v) FROM vip v', /whole row as JSON/);
      const part = await c.query('SELECT id, body FROM notes_2026');
      assert.deepEqual(part.rows, [{ id: 1, body: '[REDACTED]' }]);
      await refused(c, "SELECT id FROM notes_2026 WHERE body LIKE '%merger%'", /column "body" is masked/);
      const parent = await c.query('SELECT body FROM notes');
      assert.deepEqual(parent.rows, [{ body: '[REDACTED]' }]);
    });
  });

  it('sees a view created after it first read the catalog, the first time a statement names it', async () => {
    await withClient(async (c) => {
      await c.query('SELECT pw FROM cust_v LIMIT 1');
      await f.pg.query('SET ROLE app_rw; CREATE VIEW late_v AS SELECT name AS who, password AS k FROM customers', 'app');
      await refused(c, "SELECT who FROM late_v WHERE k = 'hunter2'", /column "k" is masked/);
      const r = await c.query('SELECT who, k FROM late_v ORDER BY who');
      for (const row of r.rows) assert.equal(row.k, '[REDACTED]');
    });
  });

  it("checks an unqualified table name against the rules of every schema that has it, whatever search_path says", async () => {
    await withClient(async (c) => {
      await c.query('SET search_path = billing, public');
      const r = await c.query('SELECT iban, holder FROM accounts');
      assert.deepEqual(r.rows, [{ iban: '[REDACTED]', holder: 'Ada' }]);
      await refused(c, 'SELECT upper(iban) FROM accounts', /column "iban" is masked/);
      await refused(c, "SELECT holder FROM accounts WHERE iban LIKE 'DE89%'", /column "iban" is masked/);
      await refused(c, 'SELECT row_to_json(a) FROM accounts a', /whole row as JSON/);
      const ok = await c.query('SELECT upper(holder) AS h FROM accounts');
      assert.deepEqual(ok.rows, [{ h: 'ADA' }]);
    });
  });

  it('replaces a composite value whose type has a masked field, and refuses taking it apart', async () => {
    await withClient(async (c) => {
      const r = await c.query('SELECT id, login, logins, at FROM services');
      assert.deepEqual(r.rows, [{ id: 1, login: '[REDACTED]', logins: '[REDACTED]', at: '(1,2)' }]);
      // A table's row type stored in a column (trigger-made history tables): the table's rules reach it.
      const h = await c.query('SELECT id, old FROM customer_history ORDER BY id');
      for (const row of h.rows) assert.equal(row.old, '[REDACTED]');
      await refused(c, "SELECT id FROM services WHERE (login).password LIKE 'h%'", /column "login" is masked/);
      await refused(c, 'SELECT login::text FROM services', /column "login" is masked/);
      await refused(c, 'SELECT (old).email FROM customer_history', /column "old" is masked/);
      const fine = await c.query('SELECT (at).x + 1 AS x FROM services');
      assert.deepEqual(fine.rows, [{ x: 2 }]);
    });
  });

  it('lets a NATURAL JOIN of two tables through when the catalog shows the columns they share are not masked', async () => {
    await withClient(async (c) => {
      const r = await c.query('SELECT count(*)::int AS n FROM customers NATURAL JOIN orders');
      assert.equal(typeof r.rows[0].n, 'number');
      await refused(c, 'SELECT * FROM customers NATURAL JOIN vip', /column "(email|ssn|password)" is masked, and NATURAL JOIN of customers and vip compares it/);
      await refused(c, 'SELECT * FROM customers NATURAL JOIN (SELECT * FROM orders) o', /NATURAL JOIN compares every column/);
      // A temporary table made in a transaction not yet committed shadows orders where the
      // gateway's catalog cannot see it: its columns are unknown, so the join is refused.
      await c.query('BEGIN');
      await c.query("CREATE TEMP TABLE orders AS SELECT 'guess'::text AS password");
      await refused(c, 'SELECT * FROM customers NATURAL JOIN orders', /NATURAL JOIN compares every column/);
      await c.query('ROLLBACK');
    });
  });

  it("masks a view this session made in a transaction not yet committed by the rules of the tables it read", async () => {
    await withClient(async (c) => {
      await c.query('BEGIN');
      await c.query('CREATE VIEW pending_v AS SELECT * FROM customers');
      const r = await c.query('SELECT email, password FROM pending_v WHERE id = 1');
      assert.match(r.rows[0].email, /^hash:/, 'the hash rule of customers.email, not only the e-mail detector');
      assert.match(r.rows[0].password, /^\[REDACTED/);
      // A refusal inside a transaction block fails the transaction, as any error there does.
      await refused(c, 'SELECT upper(email) FROM pending_v', /column "email" is masked/);
      await c.query('ROLLBACK');
    });
  });

  it('refuses reading a relation that an earlier statement of the same query creates', async () => {
    await withClient(async (c) => {
      await refused(c, 'CREATE VIEW star_v AS SELECT * FROM customers; SELECT upper(email) FROM star_v', /creates or changes|column "email" is masked/);
      await refused(c, 'CREATE VIEW star_w AS SELECT * FROM orders; SELECT * FROM customers NATURAL JOIN star_w', /creates or changes|NATURAL JOIN compares every column/);
      // Sent separately, the new view is read from the catalog and its columns keep their rules.
      await c.query('CREATE VIEW star_v AS SELECT * FROM customers');
      await refused(c, 'SELECT upper(email) FROM star_v', /column "email" is masked/);
      const r = await c.query('SELECT email FROM star_v WHERE id = 1');
      assert.match(r.rows[0].email, /^hash:/);
    });
  });
});
