/**
 * Property tests (fast-check): masking never throws, never changes text without a detection,
 * is idempotent with the default styles, never lets a generated positive through, and the byte
 * path agrees with the string path.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createMasker, defaultMasker, MaskStats } from '../../src/masking/index.js';

/** Fragments near every detector's triggers, so random text exercises the matchers, not just the skip loop. */
const FRAGMENTS = [
  '4111', '1111', ' ', '-', '.', '(', ')', '+', '@', ':', '=', '_', '"', "'", '\n', 'A', 'J', 'ey', 'eyJ', 'AKIA', 'AIza', 'ghp_', 'github_pat_',
  'glpat-', 'xoxb-', 'sk_live_', 'npm_', '-----BEGIN ', 'PRIVATE KEY-----', '-----END ', 'password', 'token', 'api_key', 'secret', '://', 'user',
  'example.com', 'DE89', '3704', '0044', '123', '45', '6789', '555', '2671', '0', '9', 'é', '€', '\u0000', '::', 'Bearer ', '[REDACTED', '***', 'hash:',
  // Config directives, encodings and keys added later.
  'requirepass ', 'machine ', ' login ', ' password ', 'username ', 'enable ', 'secret ', 'user ', ' on ', '>', 'ENV ', 'set -x ', 'snmp-server community ', '%3D', '%22', '%3A',
  '\\"', '\\', 'K', 'L', '5', 'xprv', '%', 'mnemonic: ', 'ssn=', '912-78-', '811218', '-9876', 'HEGG', 'docker login -p ',
];
const noisy = fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 })), { maxLength: 40 }).map((xs) => xs.join(''));
const anyText = fc.oneof(noisy, fc.string({ unit: 'binary', maxLength: 200 }));

const masker = defaultMasker();
const everything = createMasker({ detectors: ['all'] });

test('never throws, and text without a detection is returned as the same instance', () => {
  fc.assert(
    fc.property(anyText, (text) => {
      for (const m of [masker, everything]) {
        const stats = new MaskStats();
        const out = m.maskText(text, stats);
        if (stats.total === 0) assert.equal(out, text);
        else assert.notEqual(out, text);
      }
    }),
    { numRuns: 3000 },
  );
});

test('default styles are idempotent: masking masked text changes nothing', () => {
  fc.assert(
    fc.property(anyText, (text) => {
      const once = masker.maskText(text);
      assert.equal(masker.maskText(once), once);
    }),
    { numRuns: 3000 },
  );
});

function luhnComplete(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));
const alnum = (n: number) => fc.array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'), { minLength: n, maxLength: n }).map((d) => d.join(''));
const positive = fc.oneof(
  digits(14).map((d) => luhnComplete(`4${d}`)),
  digits(12).map((d) => luhnComplete(`37${d}`)),
  fc.tuple(fc.integer({ min: 1, max: 665 }), fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9999 })).map(
    ([a, g, s]) => `${String(a).padStart(3, '0')}-${String(g).padStart(2, '0')}-${String(s).padStart(4, '0')}`,
  ),
  alnum(36).map((t) => `ghp_${t}`),
  alnum(36).map((t) => `npm_${t}`),
  alnum(24).map((t) => `sk_live_${t}`),
  fc.array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'), { minLength: 16, maxLength: 16 }).map((t) => `AKIA${t.join('')}`),
  alnum(8).map((l) => `${l.toLowerCase()}@example.org`),
);
const context = fc.array(fc.constantFrom(...FRAGMENTS.filter((f) => !/[\d@]/.test(f)), 'the', 'card', 'value', ',', ';'), { maxLength: 8 }).map((xs) => xs.join(''));

test('a generated positive never survives, whatever surrounds it', () => {
  fc.assert(
    fc.property(context, positive, context, (before, value, after) => {
      const text = `${before} ${value} ${after}`;
      const out = masker.maskText(text);
      assert.ok(!out.includes(value), `${JSON.stringify(value)} survived in ${JSON.stringify(out)}`);
    }),
    { numRuns: 3000 },
  );
});

test('maskBytes agrees with maskValue on any UTF-8 value', () => {
  const plan = masker.planColumns([{ table: 't', column: 'c' }]);
  fc.assert(
    fc.property(anyText, (text) => {
      const buf = Buffer.from(text, 'utf8');
      const value = buf.toString('utf8');
      const expected = plan.maskValue(0, value);
      const out = plan.maskBytes(0, buf);
      if (expected === value) assert.equal(out, undefined);
      else assert.equal(out?.toString('utf8'), expected);
    }),
    { numRuns: 2000 },
  );
});

test('maskJson never throws and keeps the JSON shape', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), noisy, (value, text) => {
      const doc = { value, text, password: text, nested: [{ api_key: text }] };
      const out = masker.maskJson(doc);
      assert.doesNotThrow(() => JSON.stringify(out));
      if (out !== doc) assert.equal(typeof out, 'object');
    }),
    { numRuns: 1000 },
  );
});

test('pathological inputs stay linear (each would take minutes if a search ran to the end of the text)', () => {
  const inputs = [
    'a://b'.repeat(100_000),
    `${'x://'.repeat(50_000)}${'y'.repeat(200_000)}`,
    'password='.repeat(50_000),
    'a@'.repeat(200_000),
    `eyJ${'a'.repeat(400_000)}`,
    '1 '.repeat(200_000),
    '-----BEGIN PRIVATE KEY-----'.repeat(20_000),
    ':'.repeat(400_000),
    'ghp_'.repeat(100_000),
    // Password hashes and tokens read from a trigger inside them.
    '$1$a$'.repeat(80_000),
    `$6$salt$${'b'.repeat(400_000)}+`,
    `pbkdf2_sha256$1$${'s'.repeat(400_000)}`,
    '*'.repeat(400_000),
    `dapi${'abcdef'.repeat(70_000)}1`,
    'dapiab1'.repeat(60_000),
    `${'1234567890:AA'.repeat(30_000)}`,
    '1//'.repeat(130_000),
    `${'x'.repeat(14)}.atlasv1.`.repeat(17_000),
    'ya29.'.repeat(80_000),
    `${'a'.repeat(32)}-us1`.repeat(10_000),
    "PASSWORD '".repeat(40_000),
    "password ''''".repeat(40_000),
    "d = '".repeat(80_000),
    "SET PASSWORD FOR 'x'@'%' = ".repeat(16_000),
    "IDENTIFIED BY ".repeat(30_000) + "'x",
    'a:1:'.repeat(100_000),
    `h:1:d:u:${'x'.repeat(400_000)}`,
    `${'x'.repeat(250)}:1:d:u:p`.repeat(1500),
    // Config directives read from the start of each line.
    'password x\n'.repeat(40_000),
    `machine ${'login a '.repeat(100_000)}password x`,
    `user u on ${'>a '.repeat(130_000)}`,
    `requirepass ${' '.repeat(400_000)}x`,
    `key "k" { ${'secret "'.repeat(50_000)}`,
    'username a password 0 '.repeat(20_000),
    // Triggers inside one long run of a token's characters, each reading ahead.
    'sk-'.repeat(130_000),
    'curl -u '.repeat(50_000),
    'sig='.repeat(100_000),
    // A personal-data key whose value is more of the same, scanned again inside the value.
    'ssn='.repeat(2_000),
    'phone: '.repeat(1_200),
    // Escaped JSON, percent-encoded assignments, access key pairs.
    '{\\"password\\":\\"'.repeat(20_000),
    `{\\"password\\":\\"${'\\'.repeat(300_000)}`,
    'password%3D'.repeat(30_000),
    '%22password%22%3A%22'.repeat(20_000),
    `%22${'%'.repeat(300_000)}`,
    'AKIAIOSFODNN7EXAMPLE,'.repeat(15_000),
    'ssn%3D:'.repeat(40_000),
    // HTML character references: many `&` with no `;`, and references everywhere.
    'a&b'.repeat(130_000),
    '&quot;password&quot;:&quot;'.repeat(15_000),
    '&#61;'.repeat(80_000),
    // Characters the folded view rewrites (fold.ts): dropped, mapped, astral, through references.
    '1\u200b'.repeat(200_000),
    '\u0664\u200b'.repeat(200_000),
    '1\u00a0'.repeat(200_000),
    '\u{e0067}\u{e0068}\u{e0070}\u{e005f}'.repeat(50_000),
    'a\u0301@'.repeat(130_000),
    '4&#8203;'.repeat(50_000),
    '4111\u200b1111\u200b1111\u200b1111 '.repeat(20_000),
  ];
  // Each input against its first quarter: linear work takes ~4× as long, quadratic ~16×. The
  // best of two runs each, and a 200 ms floor (an input whose tail differs from its start, such
  // as a hash that a last `+` spoils, costs more than its quarter's share), keep a busy machine's
  // pauses out of the ratio; a quadratic input here costs seconds.
  const best = (text: string, runs: number): number => {
    let ms = Infinity;
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      masker.maskText(text);
      everything.maskText(text);
      ms = Math.min(ms, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return ms;
  };
  for (const text of inputs) {
    let quarter = best(text.slice(0, Math.floor(text.length / 4)), 2);
    let whole = best(text, 2);
    // A pause of the machine's own (another test, the collector) can land in one run: measured
    // again before failing, as a quadratic input would still fail.
    if (whole >= 8 * quarter + 200) {
      quarter = Math.min(quarter, best(text.slice(0, Math.floor(text.length / 4)), 4));
      whole = Math.min(whole, best(text, 4));
    }
    assert.ok(whole < 8 * quarter + 200, `${JSON.stringify(text.slice(0, 40))}…: ${whole.toFixed(0)} ms, its first quarter ${quarter.toFixed(0)} ms`);
  }
});
