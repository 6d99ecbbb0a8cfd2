/**
 * maskedColumnViolation: the masked-column-use decision the PostgreSQL connector and
 * `sluice policy check` share, over real statement facts and a column predicate.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { extractSqlFacts, initSqlParser, maskedColumnViolation } from '../../../src/policy/index.js';

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
