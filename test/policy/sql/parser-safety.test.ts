/**
 * The parser-safety guard: settings that would make the server read SQL differently from
 * libpg-query are refused for every role, whatever its rules (the end-to-end bypasses they stop
 * are in test/e2e/postgres-parser-safety.test.ts).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Identity } from '../../../src/pipeline/types.js';
import {
  BUILTIN_RULES,
  createPolicyEngine,
  extractSqlFacts,
  initSqlParser,
  isSupportedClientEncoding,
  parserSafetyViolation,
  shadowsCatalog,
  unsafeServerSetting,
} from '../../../src/policy/index.js';
import { isTrueSetting } from '../../../src/policy/sql/parser-safety.js';

before(async () => {
  await initSqlParser();
});

const ID: Identity = { issuer: 'https://issuer.example', subject: 'agent', claims: {}, roles: ['ci'], expiresAt: 2_000_000_000 };

// PostgreSQL's client-only encodings (a multi-byte character can contain ASCII bytes), in spellings it accepts (src/common/encnames.c).
const CLIENT_ONLY = ['SJIS', 'sjis', 'Shift_JIS', 'SHIFT_JIS_2004', 'MSKANJI', 'win932', 'Windows-932', 'BIG5', 'big-5', 'WIN950', 'GBK', 'cp936', 'WIN936', 'UHC', 'win949', 'GB18030', 'JOHAB'];
// Server encodings other than UTF8: ASCII-safe, but their bytes decoded as UTF-8 collapse (dollar-quote tags).
const OTHER_SERVER = ['LATIN1', 'latin-9', 'ISO-8859-5', 'WIN1252', 'windows-1251', 'KOI8-R', 'EUC_JP', 'euc-kr', 'EUC_JIS_2004', 'MULE_INTERNAL', 'WIN866', 'TCVN'];

describe('encodings and booleans', () => {
  test('only UTF8 (any spelling) is served, and SQL_ASCII over a UTF8 database', () => {
    for (const e of ['UTF8', 'utf-8', 'Unicode', 'UTF_8']) {
      assert.equal(isSupportedClientEncoding(e), true, e);
      assert.equal(isSupportedClientEncoding(e, 'LATIN1'), true, e);
    }
    for (const e of [...CLIENT_ONLY, ...OTHER_SERVER, '', 'auto', 'DEFAULT', 'utf16', 'ebcdic', '?']) assert.equal(isSupportedClientEncoding(e, 'UTF8'), false, e);
    assert.equal(isSupportedClientEncoding('SQL_ASCII', 'UTF8'), true);
    assert.equal(isSupportedClientEncoding('sql-ascii'), true, 'provisionally, before the server reports its encoding');
    assert.equal(isSupportedClientEncoding('SQL_ASCII', 'LATIN1'), false, 'raw LATIN1 bytes, unchecked by the server');
  });

  test("PostgreSQL's spellings of true, and nothing else", () => {
    for (const v of ['on', 'ON', 't', 'tr', 'true', 'y', 'yes', '1', ' on ']) assert.equal(isTrueSetting(v), true, v);
    for (const v of ['off', 'of', 'o', 'f', 'false', 'n', 'no', '0', '', '2', 'onn', 'truee', '?']) assert.equal(isTrueSetting(v), false, v);
  });

  test('server-reported settings', () => {
    assert.equal(unsafeServerSetting('standard_conforming_strings', 'on', 'UTF8'), undefined);
    assert.match(unsafeServerSetting('standard_conforming_strings', 'off', 'UTF8') ?? '', /standard_conforming_strings = off/);
    assert.equal(unsafeServerSetting('client_encoding', 'UTF8', 'LATIN1'), undefined);
    assert.equal(unsafeServerSetting('client_encoding', 'SQL_ASCII', 'UTF8'), undefined);
    assert.match(unsafeServerSetting('client_encoding', 'SQL_ASCII', 'LATIN1') ?? '', /client_encoding = SQL_ASCII \(database encoding LATIN1\)/);
    assert.match(unsafeServerSetting('client_encoding', 'SJIS', 'UTF8') ?? '', /client_encoding = SJIS/);
    assert.match(unsafeServerSetting('client_encoding', 'LATIN1', 'UTF8') ?? '', /client_encoding = LATIN1/);
    assert.equal(unsafeServerSetting('DateStyle', 'ISO, MDY', 'UTF8'), undefined);
    assert.equal(unsafeServerSetting('application_name', 'SJIS', 'UTF8'), undefined);
    // PostgreSQL 18 reports search_path too.
    assert.equal(unsafeServerSetting('search_path', '"$user", public', 'UTF8'), undefined);
    assert.equal(unsafeServerSetting('search_path', 'pg_catalog, evil', 'UTF8'), undefined);
    assert.match(unsafeServerSetting('search_path', 'evil, pg_catalog', 'UTF8') ?? '', /search_path = evil, pg_catalog, which lists pg_catalog after another schema/);
  });
});

describe('statements', () => {
  const violation = (sql: string): string | undefined => {
    const [facts] = extractSqlFacts(sql);
    assert.ok(facts, sql);
    return parserSafetyViolation(facts);
  };

  test('refused: turning standard_conforming_strings off, another client encoding, set_config() that could do either, writes to pg_settings', () => {
    for (const sql of [
      'SET standard_conforming_strings = off',
      'SET SESSION standard_conforming_strings TO false',
      'SET LOCAL "Standard_Conforming_Strings" = 0',
      "SET standard_conforming_strings = 'of'",
      'SET standard_conforming_strings = on, off',
      "SET client_encoding = 'SJIS'",
      "SET NAMES 'big5'",
      'SET client_encoding TO gbk',
      "SET client_encoding = 'UTF8', 'SJIS'",
      "SET NAMES 'LATIN1'",
      "SET client_encoding = 'SQL_ASCII'",
      "SELECT set_config('standard_conforming_strings', 'off', false)",
      "SELECT pg_catalog.set_config('CLIENT_ENCODING', 'SJIS', true)",
      "SELECT set_config('client_encoding', $1, true)",
      "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'standard_conforming_strings'",
      "SELECT set_config(name, 'no', false) FROM pg_settings",
      "SELECT set_config(name, 'Latin-1', false) FROM pg_settings",
      "SELECT set_config($1, $2, false)",
      "SELECT set_config('application_name', 'x', false), set_config(n, '0', false) FROM t",
      "SELECT 1 WHERE set_config('standard_conforming_strings', 'off', false) IS NOT NULL",
      "WITH x AS (SELECT set_config('client_encoding', 'SJIS', false)) SELECT * FROM x",
      "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
      "UPDATE pg_catalog.pg_settings SET setting = 'x'",
      // a schema before pg_catalog would shadow the built-ins the read-only list trusts by name
      'SET search_path = evil, pg_catalog',
      'SET search_path = "$user", PG_CATALOG',
      "SELECT set_config('search_path', 'evil, pg_catalog', false)",
      "SELECT set_config('search_path', 'x,\"pg_catalog\"', false)",
      "SELECT set_config('search_path', $1, false)",
      "SELECT set_config(name, 'evil,pg_catalog', false) FROM pg_settings",
    ]) {
      assert.ok(violation(sql), sql);
    }
  });

  test('allowed: keeping the settings, resets, other settings, other set_config names', () => {
    for (const sql of [
      'SET standard_conforming_strings = on',
      "SET standard_conforming_strings TO 'true'",
      'RESET standard_conforming_strings',
      'SET standard_conforming_strings TO DEFAULT',
      "SET client_encoding = 'UTF8'",
      "SET NAMES 'utf-8'",
      'SET client_encoding TO DEFAULT',
      'RESET client_encoding',
      'RESET ALL',
      'DISCARD ALL',
      "SET application_name = 'SJIS'",
      "SELECT set_config('app.tenant', $1, true)",
      "SELECT pg_catalog.set_config('CLIENT_ENCODING', 'UTF8', true)",
      "SELECT set_config('standard_conforming_strings', 'on', false)",
      // pg_dump picks a setting by a query; its value could set neither setting unsafely.
      "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
      "SELECT pg_catalog.set_config('search_path', '', false)",
      'SET search_path = pg_catalog, evil',
      'SET search_path = app, public',
      // one argument is one schema name, commas and all
      "SET search_path TO 'evil,pg_catalog'",
      'SET search_path = evil, "PG_CATALOG"',
      "SELECT set_config('search_path', 'public', false)",
      "SELECT current_setting('standard_conforming_strings')",
      'SELECT * FROM pg_settings',
    ]) {
      assert.equal(violation(sql), undefined, sql);
    }
  });

  test('the guard holds for every role, before any rule, even allow: *', () => {
    const e = createPolicyEngine({ policies: [{ role: 'ci', connection: 'appdb', rules: [{ allow: '*' }] }] });
    for (const sql of ['SET standard_conforming_strings = off', "SET NAMES 'SJIS'", "SELECT set_config('standard_conforming_strings', 'off', false)", "UPDATE pg_settings SET setting = 'off'"]) {
      const d = e.decideAll(ID, 'ci', 'appdb', sql).decision;
      assert.deepEqual([d.effect, d.rule], ['deny', BUILTIN_RULES.parserSafety], sql);
    }
    assert.equal(e.decideAll(ID, 'ci', 'appdb', "SET client_encoding = 'UTF8'").decision.effect, 'allow');
  });

  test('property: any SET of standard_conforming_strings is allowed exactly when its value is true', () => {
    const value = fc.oneof(
      fc.constantFrom('on', 'off', 'true', 'false', 'yes', 'no', '1', '0', 't', 'f', 'of', 'DEFAULT'),
      fc.stringMatching(/^[a-z0-9]{1,6}$/),
    );
    fc.assert(
      fc.property(value, fc.constantFrom('', 'SESSION ', 'LOCAL '), fc.boolean(), (v, scope, quoted) => {
        // Unquoted digits are an integer constant: PostgreSQL reads `01` as 1, then as a boolean.
        const integer = !quoted && /^[0-9]+$/.test(v);
        const sql = `SET ${scope}standard_conforming_strings TO ${v === 'DEFAULT' || integer ? v : `'${v}'`}`;
        const [facts] = extractSqlFacts(sql);
        assert.ok(facts);
        const refused = parserSafetyViolation(facts) !== undefined;
        assert.equal(refused, v !== 'DEFAULT' && !isTrueSetting(integer ? String(Number.parseInt(v, 10)) : v), sql);
      }),
      { numRuns: 300 },
    );
  });
});

describe('search_path', () => {
  test('a setting text is split as PostgreSQL splits it', () => {
    assert.equal(shadowsCatalog('evil, pg_catalog'), true);
    assert.equal(shadowsCatalog('evil,  PG_Catalog '), true);
    assert.equal(shadowsCatalog('"evil", "pg_catalog"'), true);
    assert.equal(shadowsCatalog('"a,b", pg_catalog'), true);
    assert.equal(shadowsCatalog('pg_catalog, evil'), false);
    assert.equal(shadowsCatalog('"$user", public'), false);
    assert.equal(shadowsCatalog('evil, "PG_CATALOG"'), false);
    assert.equal(shadowsCatalog('"evil,pg_catalog"'), false);
    assert.equal(shadowsCatalog(''), false);
    assert.equal(shadowsCatalog(['evil', 'pg_catalog']), true);
    assert.equal(shadowsCatalog(['evil,pg_catalog']), false);
  });
});

describe('set_config() of the role', () => {
  test('is a dcl statement, like SET ROLE, so a rule allowing side-effect functions does not pass it', () => {
    const e = createPolicyEngine({ policies: [{ role: 'ci', connection: 'appdb', rules: [{ allow: ['select', 'side-effect'] }] }] });
    for (const sql of ["SELECT set_config('role', 'postgres', false)", "SELECT pg_catalog.set_config('SESSION_AUTHORIZATION', 'postgres', false)", 'SELECT set_config($1, $2, false)', 'SELECT set_config(n, v, false) FROM t']) {
      const [facts] = extractSqlFacts(sql);
      assert.ok(facts?.verbs.includes('dcl'), sql);
      assert.equal(e.decideAll(ID, 'ci', 'appdb', sql).decision.effect, 'deny', sql);
    }
    for (const sql of ["SELECT set_config('app.tenant', $1, true)", "SELECT set_config('search_path', '', false)", "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings"]) {
      assert.equal(e.decideAll(ID, 'ci', 'appdb', sql).decision.effect, 'allow', sql);
    }
  });
});

describe('column alias lists (asyncpg introspection)', () => {
  const facts = (sql: string) => {
    const [f] = extractSqlFacts(sql);
    assert.ok(f, sql);
    return f;
  };

  test('a listed subquery or CTE reports each renamed plain column as computed, not the whole statement as renamed', () => {
    const f = facts('WITH t(x) AS (SELECT c.password FROM customers c) SELECT upper(x) FROM t');
    assert.equal(f.renamedColumns, undefined);
    assert.ok(f.computedColumns?.includes('password'));
    const same = facts('SELECT upper(name) FROM (SELECT name FROM customers) s(name)');
    assert.equal(same.renamedColumns, undefined);
    assert.ok(!(same.computedColumns ?? []).includes('password'));
    // A recursive CTE's columns come from a set operation: computed already.
    const rec = facts('WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT n * 2 FROM t');
    assert.equal(rec.renamedColumns, undefined);
  });

  test('positions that cannot be followed still mark the statement: a table, a join, a list with *', () => {
    assert.equal(facts('SELECT upper(a) FROM customers c(a)').renamedColumns, true);
    assert.equal(facts('SELECT upper(a) FROM (SELECT * FROM customers) s(a)').renamedColumns, true);
    assert.equal(facts('SELECT upper(x) FROM (customers JOIN orders USING (id)) j(x)').renamedColumns, true);
    // A function's output has no table origin: its alias list renames nothing masking follows.
    assert.equal(facts('SELECT upper(x) FROM unnest(ARRAY[1]) u(x)').renamedColumns, undefined);
  });
});
