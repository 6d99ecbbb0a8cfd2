import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { canonicalJson } from '../../src/audit/canonical-json.js';

// Vectors from RFC 8785 §3.2.2, §3.2.3 and Appendix B.
test('RFC 8785 §3.2.2 sample: literals, numbers, strings', () => {
  const input = JSON.parse('{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}');
  assert.equal(canonicalJson(input), '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
});

test('RFC 8785 §3.2.3 sorting by UTF-16 code units', () => {
  const input = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  const keys = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'];
  const expected = '{' + keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify((input as Record<string, string>)[k])}`).join(',') + '}';
  assert.equal(canonicalJson(input), expected);
  assert.ok(canonicalJson(input).startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"'));
});

test('RFC 8785 Appendix B number serialisation', () => {
  const bits = (hex: string): number => Buffer.from(hex, 'hex').readDoubleBE(0);
  const vectors: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  for (const [hex, text] of vectors) assert.equal(canonicalJson(bits(hex)), text, hex);
  for (const hex of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) assert.throws(() => canonicalJson(bits(hex)), TypeError);
});

test('rejects what JCS cannot represent; arrays keep order; undefined members are dropped', () => {
  assert.throws(() => canonicalJson('\ud800'), TypeError);
  assert.throws(() => canonicalJson({ a: 1n }), TypeError);
  assert.throws(() => canonicalJson(new Date(0)), TypeError);
  assert.equal(canonicalJson([56, { d: true, '10': null, '1': [] }]), '[56,{"1":[],"10":null,"d":true}]');
  assert.equal(canonicalJson({ b: undefined, a: [undefined] }), '{"a":[null]}');
});
