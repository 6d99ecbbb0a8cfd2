/**
 * spliceJson: masked JSON keeps the upstream's own text wherever nothing was masked, and a
 * duplicate key never carries an unmasked value out.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { defaultMasker, mayBeJson, spliceJson } from '../../src/masking/index.js';

const masker = defaultMasker();
const mask = (text: string): string => {
  const parsed: unknown = JSON.parse(text);
  return spliceJson(text, parsed, masker.maskJson(parsed), (digits) => masker.maskText(digits));
};

describe('spliceJson', () => {
  test('nothing masked: the same text, numbers JSON.parse would round or reformat included', () => {
    for (const text of ['{"id": 12345678901234567890, "x": 1.0, "y": -0, "z": 1e400}', '[ 1.50 ,\n  2E+3 ]', '"plain"', '  null  ', '{}', '[]', '{"a":{"b":[{}, [], ""]}}']) {
      assert.equal(mask(text), text);
    }
  });

  test('only the masked values change; everything around them is copied', () => {
    assert.equal(
      mask('{ "id" : 1234567890123456789,\n  "email" : "ada@example.com", "n": 1.0 }'),
      '{ "id" : 1234567890123456789,\n  "email" : "a***@example.com", "n": 1.0 }',
    );
    assert.equal(mask('[9007199254740993, {"password": "hunter2"}, 0.10]'), '[9007199254740993, {"password": "[REDACTED:password]"}, 0.10]');
    // Keys written with escapes are the keys they decode to.
    assert.equal(mask('{"pass\\u0077ord": "hunter2", "k": 1.0}'), '{"pass\\u0077ord": "[REDACTED:password]", "k": 1.0}');
  });

  test('an integer too long for a double is masked by its written digits (a 19-digit card number JSON.parse rounds)', () => {
    // 6212345678901234569 passes the Luhn check; JSON.parse makes it 6212345678901235000, which does not.
    const parsed: unknown = JSON.parse('{"n": 6212345678901234569}');
    assert.equal(masker.maskJson(parsed), parsed, 'the parsed value alone passes');
    assert.equal(
      mask('{"n": 6212345678901234569, "id": 12345678901234567890, "neg": -6212345678901234569}'),
      '{"n": "6212***********4569", "id": 12345678901234567890, "neg": "-6212***********4569"}',
    );
  });

  test('a duplicate key anywhere, masked or not, sends the parsed value instead of the text', () => {
    for (const text of [
      '{"note": "AKIAIOSFODNN7EXAMPLE", "note": "fine"}',
      '{"a": {"k": "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "k": 1}, "email": "ada@example.com"}',
      '[{"x": 1}, {"s": "4111 1111 1111 1111", "\\u0073": "ok"}]',
    ]) {
      const out = mask(text);
      assert.ok(!/AKIA|ghp_|4111 1111/.test(out), out);
      assert.deepEqual(JSON.parse(out), masker.maskJson(JSON.parse(text)));
    }
  });

  test('a masked value of another shape (a subtree past the depth limit) replaces the whole subtree', () => {
    const deep = `${'['.repeat(600)}"ada@example.com"${']'.repeat(600)}`;
    const out = mask(deep);
    assert.ok(!out.includes('ada@example.com'));
    assert.deepEqual(JSON.parse(out), masker.maskJson(JSON.parse(deep)));
  });

  test('property: any layout and escaping of the same JSON (whitespace, \\u escapes, exponents) splices to the masked value', () => {
    // A serializer of its own: random whitespace between tokens, some characters of strings and
    // keys written as \u escapes, some integers as exponents, as other JSON writers produce them.
    const write = (v: unknown, rnd: () => number): string => {
      const ws = (): string => [' ', '', '\n  ', '\t', '\r\n'][Math.floor(rnd() * 5)] as string;
      const str = (t: string): string =>
        `"${[...t].map((ch) => (rnd() < 0.3 ? `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0').slice(-4)}` : JSON.stringify(ch).slice(1, -1))).join('')}"`;
      if (typeof v === 'string') return str(v);
      if (typeof v === 'number') return Number.isInteger(v) && v !== 0 && Math.abs(v) < 1e6 && rnd() < 0.3 ? `${v / 10}e1` : JSON.stringify(v);
      if (Array.isArray(v)) return `[${ws()}${v.map((x) => write(x, rnd)).join(`${ws()},${ws()}`)}${ws()}]`;
      if (v !== null && typeof v === 'object') return `{${ws()}${Object.entries(v).map(([k, x]) => `${str(k)}${ws()}:${ws()}${write(x, rnd)}`).join(`,${ws()}`)}${ws()}}`;
      return JSON.stringify(v);
    };
    const ascii = fc.string({ unit: fc.constantFrom(...'abcdefghij @.-_0123456789'.split('')), maxLength: 20 });
    const leaf = fc.oneof(ascii, fc.constantFrom('ada@example.com', '4111 1111 1111 1111', 'AKIAIOSFODNN7EXAMPLE'), fc.integer({ min: -1e6, max: 1e6 }), fc.boolean(), fc.constant(null));
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('tree'), { maxLength: 4 }), fc.dictionary(fc.constantFrom('password', 'email', 'note', 'id', 'a', 'token'), tie('tree'), { maxKeys: 4 })),
    }));
    fc.assert(
      fc.property(tree, fc.integer(), (v, seed) => {
        let x = seed | 0;
        const rnd = (): number => ((x = (Math.imul(x ^ (x >>> 15), 2246822507) + 0x9e3779b9) | 0) >>> 0) / 2 ** 32;
        const text = write(v, rnd);
        const parsed: unknown = JSON.parse(text);
        const masked = masker.maskJson(parsed);
        const out = spliceJson(text, parsed, masked);
        assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(masked)), text);
        if (masked === parsed) assert.equal(out, text);
      }),
      { numRuns: 500 },
    );
  });

  test('property: the result always parses to the masked value, and equals the text when nothing changed', () => {
    const value = fc.jsonValue({ maxDepth: 4 }).map((v) => (typeof v === 'object' && v !== null ? v : { v }));
    const secret = fc.constantFrom('ada@example.com', '4111 1111 1111 1111', 'AKIAIOSFODNN7EXAMPLE', 'hunter2', '123-45-6789', 'x');
    const key = fc.constantFrom('password', 'email', 'note', 'id', 'a');
    fc.assert(
      fc.property(value, secret, key, fc.constantFrom(0, 1, 2), fc.boolean(), (v, s, k, indent, dup) => {
        let text = JSON.stringify({ ...(v as object), [k]: s }, null, indent);
        if (dup) text = text.replace(/^\{/, `{"${k}": ${JSON.stringify(s)},`);
        const parsed: unknown = JSON.parse(text);
        const masked = masker.maskJson(parsed);
        const out = spliceJson(text, parsed, masked);
        assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(masked)));
        if (masked === parsed && !dup) assert.equal(out, text);
        if (s !== 'x' && s !== 'hunter2') assert.ok(!out.includes(s), out);
      }),
      { numRuns: 400 },
    );
  });
});

describe('mayBeJson: the cheap test before JSON.parse', () => {
  test('text that cannot be JSON is told apart by its ends', () => {
    for (const t of ['{y}', '[DONE]', '[REDACTED:email]', 'true story', '42 apples', 'hello', '', '   ', '{', '"open', '{"a": 1} x']) assert.equal(mayBeJson(t), false, t);
    for (const t of ['{}', '[]', ' { "a" : 1 } ', '[1, 2]', '"s"', '-1.5e3', '0', 'true', 'null', '{"a}']) assert.equal(mayBeJson(t), true, t);
    assert.equal(mayBeJson('"s"', true), false);
    assert.equal(mayBeJson('[1]', true), true);
  });

  test('property: never false for text JSON.parse accepts', () => {
    const ws = fc.constantFrom('', ' ', '\n', '\t ', '\r\n');
    fc.assert(
      fc.property(fc.json(), ws, ws, (json, a, b) => {
        const text = a + json + b;
        assert.equal(mayBeJson(text), true, text);
        const v = JSON.parse(text) as unknown;
        assert.equal(mayBeJson(text, true), typeof v === 'object' && v !== null, text);
      }),
      { numRuns: 2000 },
    );
  });
});
