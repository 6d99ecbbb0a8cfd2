/**
 * CsvMasker: header-named columns, RFC 4180 quoting kept byte for byte where nothing changed,
 * quoted fields across lines, property-tested against tables written the way CSV writers quote.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createMasker, CsvMasker, MaskStats } from '../../src/masking/index.js';

const masker = createMasker({ columns: { 'salary': 'redact' }, detectors: ['default'] });

/** A field as CSV writers write it: quoted when it holds the delimiter, a quote or a line break. */
const field = (v: string, d = ','): string => (/["\r\n]/.test(v) || v.includes(d) ? `"${v.replaceAll('"', '""')}"` : v);
const csv = (rows: readonly (readonly string[])[], d = ',', eol = '\r\n'): string => rows.map((r) => r.map((v) => field(v, d)).join(d)).join(eol) + eol;

test('values under a secret-like or ruled header are masked; others only by the detectors', () => {
  const stats = new MaskStats();
  const out = new CsvMasker(masker).text(csv([['id', 'name', 'password', 'salary', 'contact'], ['1', 'Ada', 'hunter2', '120000', 'ada@example.com']]), stats);
  assert.equal(out, 'id,name,password,salary,contact\r\n1,Ada,[REDACTED:password],[REDACTED],a***@example.com\r\n');
  assert.ok(stats.total >= 3);
});

test('the delimiter is found in the header: semicolon (European spreadsheets) and tab', () => {
  assert.equal(new CsvMasker(masker).text('id;password\n1;hunter2\n'), 'id;password\n1;[REDACTED:password]\n');
  assert.equal(new CsvMasker(masker).text('id\tpassword\n1\thunter2\n'), 'id\tpassword\n1\t[REDACTED:password]\n');
});

test('fed line by line, a quoted value across lines stays under its column', () => {
  const m = new CsvMasker(masker);
  const lines = 'id,password,note\n1,"hunter2\ncontinued",x\n2,plain,"a\nb"'.split('\n');
  const out = lines.map((l) => m.line(l));
  assert.deepEqual(out, ['id,password,note', '1,"[REDACTED:password]', '[REDACTED:password]",x', '2,[REDACTED:password],"a', 'b"']);
});

test('property: a table with nothing to mask comes back byte for byte, quoting and line ends as written', () => {
  const safe = fc.stringMatching(/^[a-z ,"\n]{0,12}$/);
  fc.assert(
    fc.property(fc.array(fc.tuple(safe, safe, safe), { minLength: 1, maxLength: 8 }), fc.constantFrom('\n', '\r\n'), (rows, eol) => {
      const text = csv([['id', 'note', 'city'], ...rows], ',', eol);
      assert.equal(new CsvMasker(masker).text(text), text);
    }),
  );
});

test('property: every value under a password column is gone, wherever quoting puts it; the others stay', () => {
  // An upper-case letter and a digit: never inside a note, whose alphabet has neither.
  const secret = fc.stringMatching(/^[A-Z][A-Za-z0-9]{6,14}[0-9]$/);
  const note = fc.stringMatching(/^[a-z ,"\n]{1,12}$/);
  fc.assert(
    fc.property(fc.array(fc.tuple(note, secret), { minLength: 1, maxLength: 8 }), (rows) => {
      const text = csv([['note', 'password'], ...rows]);
      const out = new CsvMasker(masker).text(text);
      for (const [n, p] of rows) {
        assert.ok(!out.includes(p), `${p} left in ${out}`);
        assert.ok(out.includes(field(n)), `${n} changed in ${out}`);
      }
    }),
  );
});
