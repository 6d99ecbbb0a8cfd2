/**
 * Text carried as hex (src/masking/hex-text.ts): `encode(convert_to(x, 'UTF8'), 'hex')` output, a
 * bytea printed into a text column, a hex-dumped payload. A value that is hex of readable text is
 * masked inside and encoded again the same way; digests, ids and other bytes are left as they are.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { defaultMasker } from '../../src/masking/index.js';
import { decodeHexText, encodeHexLike, mayBeHexText } from '../../src/masking/hex-text.js';

const m = defaultMasker();
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const unhex = (h: string): string => Buffer.from(h.replace(/^\\x/, ''), 'hex').toString('utf8');

describe('hex of text', () => {
  test('a card, an SSN, a token and a password in hex are masked inside, in the same encoding', () => {
    const plan = m.planColumns([{ column: 'note' }]);
    for (const [text, masked] of [
      ['card 4111 1111 1111 1111', 'card 4111 **** **** 1111'],
      ['ssn: 078-05-1120', 'ssn: ***-**-1120'],
      ['token ghp_1234567890abcdefghijABCDEFGHIJ123456', 'token [REDACTED:github_token]'],
      ['DB_PASSWORD=hunter2', 'DB_PASSWORD=[REDACTED:password]'],
    ] as const) {
      const lower = hex(text);
      assert.equal(plan.maskValue(0, lower), hex(masked), text);
      assert.equal(plan.maskValue(0, `\\x${lower}`), `\\x${hex(masked)}`, `${text}: bytea text form keeps its prefix`);
      // Upper case is kept when the value shows it (hex of `card 4111…` has no letter at all).
      const upper = lower.toUpperCase();
      assert.equal(plan.maskValue(0, upper), /[A-F]/.test(upper) ? hex(masked).toUpperCase() : hex(masked), `${text}: upper case kept`);
      assert.equal(plan.maskBytes(0, Buffer.from(lower))?.toString(), hex(masked), `${text}: the byte path`);
      assert.deepEqual(m.maskJson({ payload: lower }), { payload: hex(masked) }, `${text}: a JSON value`);
      assert.equal(unhex(plan.maskValue(0, lower) as string), masked);
    }
  });

  test('digests, ids, keys and other non-text bytes are left as they are', () => {
    const plan = m.planColumns([{ column: 'h' }]);
    const values = [
      createHash('sha256').update('x').digest('hex'),
      createHash('md5').update('x').digest('hex').toUpperCase(),
      '\\x' + randomBytes(32).toString('hex'),
      hex('short'), // under 16 digits
      `${hex('card 4111 1111 1111 1111')}0`, // odd length
      'DeadBeefDeadBeefDeadBeef', // mixed case
      hex('no secret in this plain sentence at all'),
    ];
    for (const v of values) {
      assert.equal(plan.maskValue(0, v), v, v);
      assert.equal(plan.maskBytes(0, Buffer.from(v)), undefined, `${v}: sent as its bytes`);
    }
    fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 64 }), (bytes) => {
      const v = Buffer.from(bytes).toString('hex');
      const decoded = decodeHexText(v);
      // Random bytes are rarely text; when they are, they hold no detector's value.
      return plan.maskValue(0, v) === v && (decoded === undefined || /^[\t\n\r\x20-\x7e\u0080-\uffff]*$/.test(decoded.text));
    }));
  });

  test('the cheap check and the round trip', () => {
    assert.equal(mayBeHexText('41414141414141414141'), true);
    assert.equal(mayBeHexText('\\x41414141414141414141'), true);
    assert.equal(mayBeHexText('4141414141414141414'), false, 'odd');
    assert.equal(mayBeHexText('4141 4141 4141 4141 41'), false);
    assert.equal(mayBeHexText('aAaAaAaAaAaAaAaA'), false, 'mixed case is not one encoding');
    fc.assert(fc.property(fc.string({ minLength: 8, maxLength: 40 }).filter((s) => /^[\x20-\x7e]+$/.test(s)), fc.boolean(), fc.boolean(), (s, prefix, upper) => {
      const h = (prefix ? '\\x' : '') + (upper ? hex(s).toUpperCase() : hex(s));
      const d = decodeHexText(h);
      return d !== undefined && d.text === s && encodeHexLike(s, d) === h;
    }));
  });
});
