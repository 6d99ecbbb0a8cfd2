/**
 * maskedColumnViolation: the masked-column-use decision the PostgreSQL connector and
 * `sluice policy check` share, over real statement facts and a column predicate.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { extractSqlFacts, initSqlParser, maskedColumnViolation, starOrderingViolation } from '../../../src/policy/index.js';

before(async () => {
  await initSqlParser();
});

const protects = (column: string): boolean => column === 'password' || column === 'ssn';
const violation = (sql: string): string | undefined => {
  const [facts] = extractSqlFacts(sql);
  assert.ok(facts, sql);
  return maskedColumnViolation(facts, protects);
};

describe('maskedColumnViolation', () => {
  test('names the reason: a masked column computed on, a whole row, * in a set operation, renamed columns computed on', () => {
    assert.match(violation('SELECT upper(password) FROM customers') ?? '', /column "password" is masked/);
    assert.match(violation('SELECT c::text FROM customers c') ?? '', /whole row/);
    assert.match(violation('SELECT * FROM a UNION SELECT * FROM b') ?? '', /SELECT \* in a UNION/);
    assert.match(violation('SELECT upper(p) FROM customers AS c(i, p)') ?? '', /alias list/);
  });

  test('ORDER BY, GROUP BY and DISTINCT ON a masked column by position or by its output name', () => {
    for (const sql of ['SELECT id, password FROM customers ORDER BY 2', 'SELECT password, count(*) FROM customers GROUP BY 1', 'SELECT id, password AS p FROM customers ORDER BY p DESC', 'SELECT DISTINCT ON (1) ssn, id FROM customers']) {
      assert.match(violation(sql) ?? '', /is masked/, sql);
    }
    assert.equal(violation('SELECT id, password FROM customers ORDER BY 1'), undefined);
  });

  test('joins compare columns: USING names them, NATURAL JOIN compares every shared one', () => {
    for (const sql of [
      "SELECT id FROM customers JOIN (VALUES ('x')) v(password) USING (password)",
      "SELECT * FROM customers NATURAL JOIN (SELECT 'x' AS password) g",
      "SELECT * FROM customers NATURAL JOIN (VALUES ('x')) v(ssn)",
      'SELECT * FROM (SELECT id, password FROM customers) c NATURAL JOIN orders',
    ]) {
      assert.match(violation(sql) ?? '', /column "(password|ssn)" is masked/, sql);
    }
    // Neither side lists its columns: tables, a CTE, a function, a join.
    for (const sql of [
      'SELECT * FROM customers NATURAL JOIN orders',
      "WITH g AS (SELECT 'x' AS password) SELECT * FROM customers NATURAL JOIN g",
      'SELECT * FROM customers NATURAL JOIN generate_series(1, 2) g(id)',
      'SELECT * FROM customers NATURAL JOIN (orders JOIN items USING (id))',
      "SELECT * FROM customers NATURAL JOIN (SELECT lower('x')) l",
      'SELECT * FROM customers NATURAL JOIN (SELECT * FROM orders) o',
    ]) {
      assert.match(violation(sql) ?? '', /NATURAL JOIN compares every column/, sql);
    }
    for (const sql of ['SELECT * FROM customers NATURAL JOIN (SELECT 1 AS id) one', "SELECT * FROM customers NATURAL JOIN (VALUES ('x')) v", 'SELECT * FROM customers JOIN orders USING (id)']) {
      assert.equal(violation(sql), undefined, sql);
    }
  });

  test('NATURAL JOIN of two named relations: with their columns known, only a shared masked one refuses', () => {
    const columns = (rel: string): readonly string[] | undefined => ({ customers: ['id', 'name', 'password'], orders: ['id', 'total'], vip: ['id', 'name', 'password'] })[rel.replace(/^public\./, '')];
    const check = (sql: string): string | undefined => maskedColumnViolation(extractSqlFacts(sql)[0]!, protects, undefined, columns);
    assert.equal(check('SELECT * FROM customers NATURAL JOIN orders'), undefined);
    assert.equal(check('SELECT * FROM public.customers c NATURAL JOIN orders o'), undefined);
    assert.match(check('SELECT * FROM customers NATURAL JOIN vip') ?? '', /column "password" is masked, and NATURAL JOIN of customers and vip/);
    // A side the catalog does not know, a join, an alias list, a CTE: still refused.
    for (const sql of ['SELECT * FROM customers NATURAL JOIN ghosts', 'SELECT * FROM customers NATURAL JOIN (orders JOIN vip USING (id))', 'SELECT * FROM customers NATURAL JOIN orders AS o(a, b)', 'WITH x AS (SELECT 1 AS id) SELECT * FROM customers NATURAL JOIN x', "WITH orders AS (SELECT 'guess' AS password) SELECT * FROM customers NATURAL JOIN orders"]) {
      assert.match(check(sql) ?? '', /NATURAL JOIN compares every column/, sql);
    }
    // Without a catalog (sluice policy check) nothing changes.
    assert.match(violation('SELECT * FROM customers NATURAL JOIN orders') ?? '', /NATURAL JOIN compares every column/);
  });

  test('a JSON field masked by its name cannot be extracted from a stored JSON value; other fields can', () => {
    for (const sql of [
      "SELECT cfg->'db'->>'password' FROM svc",
      "SELECT cfg->>'ssn' FROM svc",
      "SELECT cfg #>> '{db,password}' FROM svc",
      `SELECT cfg #>> '{db,"password"}' FROM svc`,
      "SELECT cfg #> ARRAY['db', 'password'] FROM svc",
      "SELECT cfg #>> '{db,password}'::text[] FROM svc",
      "SELECT cfg['db']['password'] FROM svc",
      "SELECT jsonb_extract_path_text(cfg, 'db', 'password') FROM svc",
      "SELECT json_extract_path(cfg::json, 'password') FROM svc",
      "SELECT jsonb_path_query(cfg, '$.db.password') FROM svc",
      `SELECT jsonb_path_query_first(cfg, 'strict $."password"') FROM svc`,
      "SELECT id FROM svc WHERE jsonb_path_exists(cfg, '$.db ? (@.password starts with \"h\")')",
      `SELECT id FROM svc WHERE cfg @? '$.db ? (@.password == "hunter2")'`,
      `SELECT id FROM svc WHERE cfg @> '{"db": {"password": "hunter2"}}'`,
      "SELECT id FROM svc WHERE cfg->'db'->>'password' LIKE 'h%'",
      "SELECT h -> 'password' FROM svc",
    ]) {
      assert.match(violation(sql) ?? '', /JSON field "(password|ssn)" is masked by its name/, sql);
    }
    for (const sql of ['SELECT cfg->>$1 FROM svc', 'SELECT cfg->>k.name FROM svc, keys k', "SELECT jsonb_path_query(cfg, '$.*') FROM svc", "SELECT jsonb_path_query(cfg, '$.db.**') FROM svc", "SELECT jsonb_path_query(cfg, '$.db.keyvalue()') FROM svc", 'SELECT jsonb_path_query(cfg, $1) FROM svc', 'SELECT jsonb_extract_path(cfg, $1) FROM svc']) {
      assert.match(violation(sql) ?? '', /JSON field chosen at run time/, sql);
    }
    for (const sql of ["SELECT * FROM svc, jsonb_each_text(svc.cfg->'db')", 'SELECT key FROM svc, json_each(cfg::json)', 'SELECT jsonb_to_tsvector(cfg, \'["string"]\') FROM svc']) {
      assert.match(violation(sql) ?? '', /returns JSON values apart from the keys/, sql);
    }
    for (const sql of [
      "SELECT cfg->'db' FROM svc",
      "SELECT cfg->'db'->>'user', cfg->'list'->>0, cfg #>> '{list,1}' FROM svc",
      "SELECT jsonb_path_query(cfg, '$.items[*].name') FROM svc",
      "SELECT id FROM svc WHERE to_tsvector(body) @@ to_tsquery('cat & dog')",
      "SELECT id FROM svc WHERE cfg ? 'password'",
      "SELECT arr[1], arr[$1] FROM svc",
      `SELECT id FROM svc WHERE cfg @> '{"kind": "db"}'`,
      'SELECT jsonb_object_keys(cfg) FROM svc',
    ]) {
      assert.equal(violation(sql), undefined, sql);
    }
  });

  test('a whole row as JSON is masked by field name only as a column of the result, and only where no rule names its table', () => {
    for (const sql of [
      "SELECT to_jsonb(c)->>'password' FROM customers c",
      "SELECT id FROM customers c WHERE row_to_json(c)->>'password' = 'x'",
      'SELECT j.value FROM customers c, json_each_text(row_to_json(c)) j',
      'SELECT md5(row_to_json(c)::text) FROM customers c',
      "SELECT x.j->>'password' FROM (SELECT row_to_json(c) AS j FROM customers c) x",
      'SELECT row_to_json(c) FROM customers c ORDER BY row_to_json(c)::text',
      'SELECT row_to_json(c)::bytea FROM customers c',
      // Sorting, grouping or deduplicating by the JSON sorts by its fields (the first one here is the password).
      'SELECT row_to_json(x) FROM (SELECT password, id FROM customers) x ORDER BY 1',
      'SELECT row_to_json(x) AS j FROM (SELECT password, id FROM customers) x ORDER BY j',
      'SELECT DISTINCT row_to_json(x)::text FROM (SELECT password FROM customers) x',
      'SELECT to_jsonb(c) FROM customers c GROUP BY 1',
    ]) {
      assert.match(violation(sql) ?? '', /whole row/, sql);
    }
    const tableRules = (tables: readonly string[]): boolean => tables.includes('customers');
    for (const sql of ['SELECT row_to_json(c) FROM customers c', 'SELECT row_to_json(c)::text FROM customers c', 'SELECT json_agg(c) FROM customers c', 'SELECT to_jsonb(c.*)::jsonb FROM customers c']) {
      assert.equal(violation(sql), undefined, sql);
      const [facts] = extractSqlFacts(sql);
      assert.match(maskedColumnViolation(facts!, protects, tableRules) ?? '', /column rules for customers cannot apply/, sql);
    }
    const [orders] = extractSqlFacts('SELECT row_to_json(o) FROM orders o');
    assert.equal(maskedColumnViolation(orders!, protects, tableRules), undefined);
  });

  test('RETURNING is a result list: plain columns and * are followed, renames, expressions and whole rows are not', () => {
    for (const sql of ['UPDATE customers SET name = name RETURNING *', 'INSERT INTO customers (name) VALUES ($1) RETURNING id, password', 'DELETE FROM customers WHERE id = 1 RETURNING customers.ssn', 'WITH u AS (UPDATE customers SET name = name RETURNING password) SELECT password FROM u']) {
      assert.equal(violation(sql), undefined, sql);
    }
    for (const sql of ['UPDATE customers SET name = name RETURNING password AS p', 'UPDATE customers SET name = name RETURNING upper(password)', 'UPDATE customers SET name = password RETURNING id', 'WITH u AS (UPDATE customers SET name = name RETURNING password) SELECT upper(password) FROM u']) {
      assert.match(violation(sql) ?? '', /column "password" is masked/, sql);
    }
    assert.match(violation('UPDATE customers c SET name = name RETURNING c') ?? '', /whole row/);
  });

  test('DISTINCT deduplicates by every output column', () => {
    assert.match(violation('SELECT DISTINCT id, password FROM customers') ?? '', /column "password" is masked/);
    assert.equal(violation('SELECT DISTINCT id, name FROM customers'), undefined);
  });

  test('positions and DISTINCT over *: left to the described result at the top, refused in a subquery', () => {
    const ordering = (sql: string): unknown => extractSqlFacts(sql)[0]?.starOrdering;
    assert.deepEqual(ordering('SELECT * FROM customers ORDER BY 3, 1'), { positions: [3, 1], distinct: false });
    assert.deepEqual(ordering('SELECT id, * FROM customers ORDER BY 1, 2'), { positions: [2], distinct: false });
    assert.deepEqual(ordering('SELECT c.* FROM customers c GROUP BY 4'), { positions: [4], distinct: false });
    assert.deepEqual(ordering('TABLE customers ORDER BY 2'), { positions: [2], distinct: false });
    assert.deepEqual(ordering('SELECT DISTINCT * FROM customers'), { positions: [], distinct: true });
    assert.equal(ordering('SELECT * FROM customers ORDER BY id'), undefined);
    assert.equal(ordering('SELECT id, * FROM customers ORDER BY 1'), undefined);
    // COPY (…), DECLARE and PREPARE describe as no rows: their sorts over * cannot be checked.
    assert.equal(ordering('EXPLAIN SELECT * FROM customers ORDER BY 3'), undefined, 'a plan shows no rows');
    for (const sql of [
      'SELECT count(*) FROM (SELECT * FROM customers ORDER BY 7 LIMIT 1) s',
      'WITH x AS (SELECT DISTINCT * FROM customers) SELECT count(*) FROM x',
      'COPY (SELECT * FROM customers ORDER BY 7) TO STDOUT',
      'DECLARE c CURSOR FOR SELECT * FROM customers ORDER BY 7',
      'PREPARE p AS SELECT DISTINCT * FROM customers',
    ]) {
      assert.match(violation(sql) ?? '', /columns of \*/, sql);
    }
    // At the top the statement's own facts pass; the described columns decide.
    assert.equal(violation('SELECT * FROM customers ORDER BY 3'), undefined);
    const described = [{ column: 'id', table: 'public.customers' }, { column: 'name', table: 'public.customers' }, { column: 'password', table: 'public.customers' }, { column: '?column?' }];
    const byName = (column: string): boolean => protects(column);
    assert.match(starOrderingViolation({ positions: [3], distinct: false }, described, byName) ?? '', /position 3 sorts or groups by column "password"/);
    assert.equal(starOrderingViolation({ positions: [1, 2, 9], distinct: false }, described, byName), undefined);
    assert.match(starOrderingViolation({ positions: [], distinct: true }, described, byName) ?? '', /SELECT DISTINCT deduplicates by column "password"/);
    assert.equal(starOrderingViolation({ positions: [], distinct: true }, described.slice(0, 2), byName), undefined);
  });

  test('column statistics are refused whatever is selected from them: they hold sample values of masked columns', () => {
    for (const sql of ["SELECT most_common_vals FROM pg_stats WHERE attname = 'password'", 'SELECT * FROM pg_catalog.pg_stats_ext_exprs', 'SELECT 1 FROM pg_statistic']) {
      assert.match(violation(sql) ?? '', /holds sample values of table columns/, sql);
    }
  });

  test('plain reads, and computing on unmasked columns, pass', () => {
    for (const sql of ['SELECT password, ssn FROM customers', 'SELECT upper(name) FROM customers WHERE id = 1', "SELECT relname FROM pg_class WHERE relname = 'pg_stats'"]) {
      assert.equal(violation(sql), undefined, sql);
    }
  });
});
