/**
 * COPY … TO STDOUT masking per column in PostgreSQL's three formats. Rows are written here as
 * PostgreSQL writes them (an encoder of the test's own, following the COPY documentation), masked,
 * and read back; a property test checks any text survives the round trip with only the planned
 * columns changed.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { CopyOutMasker, CopyShapeError } from '../../../src/connectors/postgres/copy-out.js';
import { buildRowMaskPlan, type FieldDescription } from '../../../src/connectors/postgres/rows.js';
import { createMasker, MaskStats } from '../../../src/masking/index.js';
import { extractSqlFacts, initSqlParser, type CopyFormat } from '../../../src/policy/index.js';

before(async () => {
  await initSqlParser();
});

const masker = createMasker({ columns: { '*.password': 'redact' } });
const TEXT = 25;
const INT4 = 23;
const fields = (types: number[]): FieldDescription[] => types.map((typeOid, i) => ({ name: i === 1 ? 'password' : `c${i}`, tableOid: 0, attnum: 0, typeOid, format: 0 }));
const format = (sql: string): CopyFormat => extractSqlFacts(sql)[0]?.copyFormat as CopyFormat;

function copier(sql: string, types = [TEXT, TEXT, TEXT]): CopyOutMasker {
  const f = fields(types);
  const fmt = format(sql);
  return new CopyOutMasker(fmt, buildRowMaskPlan(f, masker.planColumns(f.map((x) => ({ column: x.name }))), fmt.format === 'binary' ? [1] : [0]));
}

// PostgreSQL's writers, for the test: text escapes only backslash, newline, CR, tab (and the delimiter).
function textRow(values: (string | null)[], delimiter = '\t', nul = '\\N'): Buffer {
  const esc = (v: string): string => [...v].map((ch) => (ch === '\\' ? '\\\\' : ch === '\n' ? '\\n' : ch === '\r' ? '\\r' : ch === '\t' ? '\\t' : ch === delimiter ? '\\' + ch : ch)).join('');
  return Buffer.from(values.map((v) => (v === null ? nul : esc(v))).join(delimiter) + '\n');
}
function csvRow(values: (string | null)[], delimiter = ','): Buffer {
  const q = (v: string): string => (v === '' || /[",\n\r]/.test(v) || v.includes(delimiter) ? `"${v.replace(/"/g, '""')}"` : v);
  return Buffer.from(values.map((v) => (v === null ? '' : q(v))).join(delimiter) + '\n');
}
function readText(row: Buffer, delimiter = '\t', nul = '\\N'): (string | null)[] {
  const line = row.toString('utf8').replace(/\n$/, '');
  const out: (string | null)[] = [];
  let cur = '';
  let raw = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === '\\') {
      const n = line[++i] as string;
      raw += '\\' + n;
      cur += n === 'n' ? '\n' : n === 'r' ? '\r' : n === 't' ? '\t' : n;
    } else if (ch === delimiter) {
      out.push(raw === nul ? null : cur);
      cur = raw = '';
    } else {
      cur += ch;
      raw += ch;
    }
  }
  out.push(raw === nul ? null : cur);
  return out;
}
function readCsv(row: Buffer, delimiter = ','): (string | null)[] {
  const line = row.toString('utf8').replace(/\n$/, '');
  const out: (string | null)[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else v += line[i++];
      }
      out.push(v);
    } else {
      let end = line.indexOf(delimiter, i);
      if (end < 0) end = line.length;
      const v = line.slice(i, end);
      out.push(v === '' ? null : v);
      i = end;
    }
    if (i >= line.length) break;
    i++;
  }
  return out;
}
function binaryTuple(values: (Buffer | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([values.length >> 8, values.length & 0xff])];
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(v === null ? -1 : v.length);
    parts.push(len);
    if (v !== null) parts.push(v);
  }
  return Buffer.concat(parts);
}
const BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const TRAILER = Buffer.from([0xff, 0xff]);
function readBinary(body: Buffer, header: boolean): (Buffer | null)[] {
  let off = header ? 19 : 0;
  const n = body.readInt16BE(off);
  off += 2;
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(off);
    off += 4;
    out.push(len < 0 ? null : body.subarray(off, off + len));
    off += Math.max(len, 0);
  }
  return out;
}

describe('COPY TO STDOUT masking per column', () => {
  test('text: the password column is redacted, detectors run on the others, escapes survive', () => {
    const m = copier('COPY t TO STDOUT');
    const stats = new MaskStats();
    const out = m.mask(textRow(['ada@example.com', 'hunter2', 'tab\there\\ and\nnewline']), stats);
    assert.deepEqual(readText(out as Buffer), ['a***@example.com', '[REDACTED]', 'tab\there\\ and\nnewline']);
    assert.equal(m.mask(textRow(['plain', null, 'x'])), undefined, 'NULL stays NULL, nothing else to mask');
    assert.ok(stats.total >= 2);
  });

  test('text with a custom delimiter and NULL marker', () => {
    const m = copier("COPY t TO STDOUT (DELIMITER '|', NULL 'nil')");
    const out = m.mask(textRow(['a|b', 'pw|d', null], '|', 'nil'));
    assert.deepEqual(readText(out as Buffer, '|', 'nil'), ['a|b', '[REDACTED]', null]);
  });

  test('csv: quoted fields with delimiters, quotes and newlines; the header line passes', () => {
    const m = copier('COPY t TO STDOUT (FORMAT csv, HEADER)');
    assert.equal(m.mask(Buffer.from('c0,password,c2\n')), undefined);
    const out = m.mask(csvRow(['say "hi", 4111 1111 1111 1111', 'p,w\nd', '']));
    assert.deepEqual(readCsv(out as Buffer), ['say "hi", 4111 **** **** 1111', '[REDACTED]', '']);
    // A quoted empty string is a value, not NULL; an unquoted empty field is NULL and stays so.
    assert.equal(m.mask(Buffer.from('"",,x\n')), undefined);
  });

  test('csv with its own quote and escape characters', () => {
    const m = copier("COPY t TO STDOUT (FORMAT csv, QUOTE '''', ESCAPE '\\')");
    const out = m.mask(Buffer.from("'it\\'s',secret,x\n")) as Buffer;
    assert.equal(out.toString(), "'it\\'s','[REDACTED]',x\n");
  });

  test('binary: header with the first tuple, lengths rewritten, non-text values pass, trailer alone', () => {
    const m = copier('COPY t TO STDOUT (FORMAT binary)', [INT4, TEXT, TEXT]);
    const int = Buffer.from([0, 0, 0, 7]);
    const first = m.mask(Buffer.concat([BINARY_HEADER, binaryTuple([int, Buffer.from('hunter2'), Buffer.from('mail ada@example.com')])])) as Buffer;
    assert.deepEqual(first.subarray(0, 19), BINARY_HEADER);
    assert.deepEqual(readBinary(first, true).map((v) => v?.toString('latin1')), [int.toString('latin1'), '[REDACTED]', 'mail a***@example.com']);
    assert.equal(m.mask(binaryTuple([int, null, Buffer.from('clean')])), undefined);
    assert.equal(m.mask(TRAILER), undefined);
    assert.throws(() => m.mask(binaryTuple([int, null, null])), CopyShapeError, 'nothing after the trailer');
  });

  test('rows that do not have the described columns are refused, never passed through', () => {
    assert.throws(() => copier('COPY t TO STDOUT').mask(Buffer.from('a\tb\n')), CopyShapeError);
    assert.throws(() => copier('COPY t TO STDOUT (FORMAT csv)').mask(Buffer.from('"a,b\n')), CopyShapeError);
    assert.throws(() => copier('COPY t TO STDOUT (FORMAT binary)').mask(Buffer.from('not a copy')), CopyShapeError);
    assert.throws(() => copier('COPY t TO STDOUT (FORMAT binary)').mask(Buffer.concat([BINARY_HEADER, binaryTuple([null])])), CopyShapeError);
  });

  test('property: any values round-trip through text and csv with only the password column changed', () => {
    const value = fc.option(fc.string({ unit: 'grapheme', maxLength: 12 }), { nil: null, freq: 5 });
    fc.assert(
      fc.property(fc.tuple(value, value, value), fc.constantFrom('text', 'csv'), ([a, b, c], kind) => {
        fc.pre(kind === 'text' || (a !== '' && c !== '')); // csv writes '' quoted and NULL bare; readCsv reads '' as NULL
        const m = copier(kind === 'csv' ? 'COPY t TO STDOUT (FORMAT csv)' : 'COPY t TO STDOUT', [TEXT, TEXT, TEXT]);
        const row = kind === 'csv' ? csvRow([a, b, c]) : textRow([a, b, c]);
        const out = m.mask(row) ?? row;
        const back = kind === 'csv' ? readCsv(out) : readText(out);
        const want = [a, b, c].map((v, i) => (v === null ? null : i === 1 ? '[REDACTED]' : masker.maskText(v)));
        if (kind === 'csv' && b === '') want[1] = '[REDACTED]';
        assert.deepEqual(back, want);
      }),
      { numRuns: 400 },
    );
  });
});
