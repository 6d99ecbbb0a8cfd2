/**
 * json-keys.ts: the keys a PostgreSQL array literal and a jsonpath name, property-tested against
 * literals built the way PostgreSQL writes them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { arrayLiteral, jsonPathKeys, newJsonKeyUse } from '../../../src/policy/sql/json-keys.js';

/** A text[] literal as PostgreSQL's array_out writes it: quoted when needed, `"` and `\` escaped. */
function pgArray(items: readonly string[]): string {
  return `{${items.map((s) => (s === '' || /[{}",\\\s]/.test(s) || s.toUpperCase() === 'NULL' ? `"${s.replace(/["\\]/g, '\\$&')}"` : s)).join(',')}}`;
}

describe('json-keys', () => {
  test('arrayLiteral reads back every element of a text[] literal', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 6 }), (items) => {
        assert.deepEqual(arrayLiteral(pgArray(items)), items);
      }),
    );
    assert.deepEqual(arrayLiteral('{db, password}'), ['db', 'password']);
    assert.deepEqual(arrayLiteral('password'), ['password'], 'not an array: the text itself');
  });

  test('jsonPathKeys reads member names, quoted ones with escapes, and flags wildcards and keyvalue()', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), { minLength: 1, maxLength: 5 }), fc.string({ maxLength: 10 }), (names, quoted) => {
        const use = newJsonKeyUse();
        jsonPathKeys(`lax $.${names.join('.')}."${quoted.replace(/["\\]/g, '\\$&')}" ? (@.size() > 1)`, use);
        for (const n of names) assert.ok(use.keys.has(n), n);
        assert.ok(use.keys.has(quoted), quoted);
        assert.equal(use.dynamic, false);
      }),
    );
    for (const path of ['$.*', '$.a.**{2 to last}', '$.a.keyvalue()', '$.a . * ']) {
      const use = newJsonKeyUse();
      jsonPathKeys(path, use);
      assert.equal(use.dynamic, true, path);
    }
  });
});
