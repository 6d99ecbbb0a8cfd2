/**
 * The response-encoding plan of the request proxy: which text bodies are read as bytes, which are
 * transcoded to UTF-8 before masking, and which are refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { charsetOf, sniffUnicode, textEncodingPlan, toUtf8, withUtf8Charset } from '../../../src/connectors/request-proxy/charset.js';

const NONE = new Uint8Array(0);

test('charset parameter, and the content type rewritten to UTF-8', () => {
  assert.equal(charsetOf('text/plain; charset="UTF-16LE"'), 'utf-16le');
  assert.equal(charsetOf('application/json;charset=utf-8;q=1'), 'utf-8');
  assert.equal(charsetOf('text/plain'), '');
  assert.equal(withUtf8Charset('text/plain; charset=UTF-16'), 'text/plain; charset=utf-8');
  assert.equal(withUtf8Charset('text/plain; charset="utf-16be"; format=flowed'), 'text/plain; charset=utf-8; format=flowed');
  assert.equal(withUtf8Charset('application/json'), 'application/json; charset=utf-8');
  assert.equal(withUtf8Charset(undefined), 'text/plain; charset=utf-8');
});

test('ASCII-compatible charsets are read as bytes; UTF-16 and ISO-2022-JP are transcoded; the rest refused', () => {
  for (const ct of [undefined, 'text/plain', 'text/plain; charset=utf-8', 'text/html; charset=ISO-8859-1', 'text/plain; charset=windows-1252', 'text/plain; charset=Shift_JIS', 'text/plain; charset=koi8-r']) {
    assert.deepEqual(textEncodingPlan(ct, Buffer.from('plain ascii text')), { transcode: false }, String(ct));
  }
  assert.deepEqual(textEncodingPlan('text/plain; charset=utf-16', NONE), { transcode: true, encoding: 'utf-16le' });
  assert.deepEqual(textEncodingPlan('text/plain; charset=utf-16', Buffer.from([0xfe, 0xff, 0, 0x41])), { transcode: true, encoding: 'utf-16be' });
  assert.deepEqual(textEncodingPlan('text/plain; charset=UTF-16BE', NONE), { transcode: true, encoding: 'utf-16be' });
  assert.deepEqual(textEncodingPlan('text/plain; charset=iso-2022-jp', NONE), { transcode: true, encoding: 'iso-2022-jp' });
  // Declared Latin-1, but the bytes carry a UTF-16 byte-order mark: the bytes win.
  assert.deepEqual(textEncodingPlan('text/plain; charset=iso-8859-1', Buffer.from([0xff, 0xfe, 0x41, 0])), { transcode: true, encoding: 'utf-16le' });
  for (const ct of ['text/plain; charset=utf-32', 'text/plain; charset=UTF-7', 'text/plain; charset=cp037', 'text/plain; charset=x-nonsense']) {
    assert.throws(() => textEncodingPlan(ct, NONE), /cannot decode to mask/, ct);
  }
  assert.throws(() => textEncodingPlan('text/plain', Buffer.from([0, 0, 0xfe, 0xff, 0, 0, 0, 0x41])), /UTF-32/);
  assert.throws(() => toUtf8(Buffer.from([0x41, 0]).subarray(0, 1), 'utf-16le'), /not valid/);
});

test('sniffing: byte-order marks and the NUL pattern of UTF-16 and UTF-32; text without NULs is never UTF-16', () => {
  assert.equal(sniffUnicode(Buffer.from('{"a":1}', 'utf16le')), 'utf-16le');
  assert.equal(sniffUnicode(Buffer.from('{"a":1}', 'utf16le').swap16()), 'utf-16be');
  assert.equal(sniffUnicode(Buffer.from([0x7b, 0, 0, 0, 0x7d, 0, 0, 0])), 'utf-32');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }).map((b) => b.map((x) => (x === 0 ? 32 : x))), (bytes) => {
      const s = sniffUnicode(bytes);
      // Without NULs only a byte-order mark can say UTF-16.
      return s === undefined || (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
    }),
  );
});

test('a declared byte order is kept even when the text looks like the other one (U+10000 is 00 D8 00 DC in UTF-16LE)', () => {
  const le = Buffer.from('\u{10000}', 'utf16le');
  const plan = textEncodingPlan('text/plain; charset=utf-16le', le);
  assert.deepEqual(plan, { transcode: true, encoding: 'utf-16le' });
  assert.equal(toUtf8(le, 'utf-16le').toString('utf8'), '\u{10000}');
});

test('property: any text written as UTF-16 (LE or BE, with or without a BOM) comes back as the same text in UTF-8', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }), fc.boolean(), fc.boolean(), (text, bigEndian, bom) => {
      let bytes = Buffer.from((bom ? '\uFEFF' : '') + text, 'utf16le');
      if (bigEndian) bytes = bytes.swap16();
      const plan = textEncodingPlan(`text/plain; charset=${bigEndian ? 'utf-16be' : 'utf-16le'}`, bytes);
      assert.ok(plan.transcode);
      assert.equal(toUtf8(bytes, plan.encoding).toString('utf8'), text);
    }),
  );
});
