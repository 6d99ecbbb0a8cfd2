import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Secret } from '../../src/config/secret.js';
import { isSluiceError } from '../../src/errors.js';
import { createMasker, defaultMasker, MaskStats } from '../../src/masking/index.js';

const KEY = 'test-hash-key-0123456789';
const secret = (raw: string): Secret => new Secret(raw === 'env:K' ? KEY : raw, raw);

function configError(fn: () => unknown, pathPart: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSluiceError(err), `expected SluiceError, got ${String(err)}`);
    assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
    assert.ok(err.message.includes(pathPart), `message ${JSON.stringify(err.message)} names ${pathPart}`);
    return true;
  });
}

test('config: the DESIGN.md example is accepted', () => {
  const m = createMasker({ columns: { '*.password*': 'redact' }, detectors: ['credit_card', 'us_ssn', 'email', 'secrets'] });
  assert.ok(m.detectors.includes('github_token'));
  assert.ok(!m.detectors.includes('phone'));
});

test('config: unknown detector, style, validator, bad regex and missing hash key are errors naming the path', () => {
  configError(() => createMasker({ detectors: ['credit_card', 'nope'] }, { where: 'connections[0].mask' }), 'connections[0].mask.detectors[1]');
  configError(() => createMasker({ styles: { credit_card: 'blur' } }), 'mask.styles.credit_card');
  configError(() => createMasker({ styles: { nope: 'redact' } }), 'mask.styles.nope');
  configError(() => createMasker({ styles: { email: 'null' } }), 'mask.styles.email');
  configError(() => createMasker({ columns: { '*.ssn': 'blur' } }), 'mask.columns["*.ssn"]');
  configError(() => createMasker({ custom: [{ name: 'emp', pattern: 'E\\d+', validator: 'crc' }] }), 'mask.custom[0].validator');
  configError(() => createMasker({ custom: [{ name: 'emp', pattern: '(' }] }), 'mask.custom[0].pattern');
  configError(() => createMasker({ custom: [{ name: 'email', pattern: 'x' }] }), 'mask.custom[0].name');
  configError(() => createMasker({ styles: { credit_card: 'hash' } }), 'mask.hashKey');
  configError(() => createMasker({ columns: { '*.email': 'hash' } }), 'mask.hashKey');
  configError(() => createMasker({ styles: { email: 'hash' }, hashKey: 'short' }), 'mask.hashKey');
  configError(() => createMasker({ bogus: true } as never), 'mask');
  configError(() => createMasker({ hashKey: 'env:SLUICE_TEST_UNSET_VAR_X' }), 'mask.hashKey');
});

test('styles: redact, partial, last4, mask, hash', () => {
  const card = '4111 1111 1111 1111';
  const style = (s: string): string => createMasker({ detectors: ['credit_card'], styles: { credit_card: s }, hashKey: 'env:K' }, { secret }).maskText(card);
  assert.equal(style('redact'), '[REDACTED:credit_card]');
  assert.equal(style('partial'), '4111 **** **** 1111');
  assert.equal(style('last4'), '**** **** **** 1111');
  assert.equal(style('mask'), '**** **** **** ****');
  assert.match(style('hash'), /^hash:[0-9a-f]{16}$/);
  const m = defaultMasker();
  assert.equal(m.maskText('123-45-6789'), '***-**-6789');
  assert.equal(m.maskText('ana.silva@example.com'), 'a***@example.com');
  assert.equal(m.maskText('DE89 3704 0044 0532 0130 00'), 'DE** **** **** **** **30 00');
  assert.equal(m.maskText('+1 415 555 2671'), '+* *** *** 2671');
});

test('hash style is deterministic per key, format-independent, and differs across keys', () => {
  const mk = (key: string) => createMasker({ detectors: ['pii'], styles: { pii: 'hash' }, hashKey: key });
  const a = mk('key-one-0123456789abcdef');
  const b = mk('key-two-0123456789abcdef');
  assert.equal(a.maskText('4111 1111 1111 1111'), a.maskText('4111-1111-1111-1111'), 'separators do not change the hash');
  assert.equal(a.maskText('Ana@Example.com'), a.maskText('ana@example.com'));
  assert.notEqual(a.maskText('4111111111111111'), b.maskText('4111111111111111'));
  assert.notEqual(a.maskText('4111111111111111'), a.maskText('5555555555554444'));
});

test('group styles apply first, then per-detector overrides', () => {
  const m = createMasker({ detectors: ['default'], styles: { pii: 'redact', email: 'mask' } });
  assert.equal(m.maskText('4111111111111111'), '[REDACTED:credit_card]');
  assert.equal(m.maskText('ab@example.com'), '**@*******.***');
});

test('maskText returns the same instance when nothing matched', () => {
  const m = defaultMasker();
  const text = ['the quick brown fox', 'order 123456 shipped'].join(' ');
  assert.equal(m.maskText(text), text);
  const empty = createMasker({ detectors: [] });
  const card = 'pay 4111111111111111';
  assert.equal(empty.maskText(card), card, 'no detectors, no change');
});

test('stats count detector and column, never values', () => {
  const stats = new MaskStats();
  const m = defaultMasker();
  m.maskText('4111111111111111 and 5555555555554444 and a@example.com', stats);
  const plan = m.planColumns([{ schema: 'public', table: 'customers', column: 'note' }]);
  plan.maskValue(0, 'call 415-555-2671', stats);
  assert.equal(stats.total, 4);
  assert.deepEqual(stats.toJSON(), [
    { detector: 'credit_card', count: 2 },
    { detector: 'email', count: 1 },
    { detector: 'phone', column: 'public.customers.note', count: 1 },
  ]);
  const other = new MaskStats();
  other.add('credit_card');
  other.merge(stats);
  assert.equal(other.total, 5);
  assert.ok(!JSON.stringify(other).includes('4111'));
});

test('column rules: globs on schema.table.column, table.column and bare names, case-insensitive', () => {
  const m = createMasker({
    columns: { '*.password*': 'redact', '*.ssn': 'partial', 'public.customers.email': 'hash', 'audit.*': 'null', '*.notes': 'keep' },
    hashKey: 'env:K',
  }, { secret });
  const plan = m.planColumns([
    { schema: 'public', table: 'users', column: 'password_hash' },
    { schema: 'public', table: 'customers', column: 'SSN' },
    { schema: 'public', table: 'customers', column: 'email' },
    { schema: 'audit', table: 'log', column: 'x' },
    { column: 'ssn' },
    { schema: 'public', table: 'customers', column: 'name' },
    { schema: 'public', table: 'customers', column: 'notes' },
    { schema: 'sales', table: 'customers', column: 'email' },
  ]);
  assert.deepEqual(plan.actions, ['replace', 'replace', 'replace', 'null', 'replace', 'scan', 'keep', 'scan']);
  assert.equal(plan.active, true);
  assert.equal(plan.maskValue(0, 'bcrypt$2b$...'), '[REDACTED]');
  assert.equal(plan.maskValue(1, '123-45-6789'), '***-**-6789');
  assert.match(plan.maskValue(2, 'ana@example.com') ?? '', /^hash:[0-9a-f]{16}$/);
  assert.equal(plan.maskValue(2, 'ana@example.com'), plan.maskValue(2, 'ana@example.com'), 'joins line up');
  assert.equal(plan.maskValue(3, 'anything'), null);
  assert.equal(plan.maskValue(4, '987-65-4321'), '***-**-4321', '*.ssn also covers a bare ssn column');
  assert.equal(plan.maskValue(5, 'Ana 4111111111111111'), 'Ana 4111********1111', 'other columns get detectors');
  const notes = 'card 4111111111111111';
  assert.equal(plan.maskValue(6, notes), notes, 'keep exempts a column');
  assert.equal(plan.maskValue(7, 'ana@example.com'), 'a***@example.com', 'public.customers.email does not match sales');
  assert.equal(plan.binaryAction(0), 'null', 'a rule column cannot pass binary');
  assert.equal(plan.binaryAction(5), 'pass');
  assert.equal(plan.binaryAction(6), 'pass');
});

test('column plans: inactive when nothing can change; cached per column list', () => {
  const none = createMasker({ detectors: [] });
  const cols = [{ table: 't', column: 'a' }, { table: 't', column: 'b' }];
  const plan = none.planColumns(cols);
  assert.equal(plan.active, false);
  assert.equal(none.planColumns([...cols]), plan, 'same columns → cached plan');
  assert.equal(createMasker({ detectors: [], columns: { '*.b': 'redact' } }).planColumns(cols).active, true);
  assert.equal(defaultMasker().planColumns(cols).active, true);
  assert.throws(() => plan.maskValue(5, 'x'), /no column 5/);
});

test('a secret-named column masks its whole value', () => {
  const plan = defaultMasker().planColumns([{ table: 'users', column: 'password' }, { table: 'integrations', column: 'api_token' }, { table: 'users', column: 'name' }]);
  assert.equal(plan.maskValue(0, 'hunter2'), '[REDACTED:password]');
  assert.equal(plan.maskValue(1, 'Zx81kPq0LmN3vB7cT2yW'), '[REDACTED:generic_secret]');
  assert.equal(plan.maskValue(1, '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'), '[REDACTED:github_token]');
  assert.equal(plan.maskValue(2, 'hunter2'), 'hunter2');
  assert.equal(plan.maskValue(0, ''), '');
});

test('a column named for personal data masks its value, keeping a detector\'s own form; it is not protected like a secret', () => {
  const m = defaultMasker();
  const cols = ['ssn', 'date_of_birth', 'passport_no', 'mobile_phone', 'customerSsn', 'notes'].map((column) => ({ table: 'patients', column }));
  const plan = m.planColumns(cols);
  assert.equal(plan.maskValue(0, '123456789'), '[REDACTED:personal_data]');
  assert.equal(plan.maskValue(0, '123-45-6789'), '***-**-6789', 'the SSN detector\'s form wins');
  assert.equal(plan.maskValue(1, '1985-03-14'), '[REDACTED:personal_data]');
  assert.equal(plan.maskValue(2, 'X12345678'), '[REDACTED:personal_data]');
  assert.equal(plan.maskValue(3, '020 7946 0958'), '*** **** 0958', 'a national-format number under a phone name: phone\'s partial form');
  assert.equal(plan.maskValue(3, 'none on file'), 'none on file', 'no phone number in it');
  assert.equal(plan.maskValue(1, 'unknown'), 'unknown', 'no digits: not a birth date');
  assert.equal(plan.maskValue(4, '123456789'), '123456789', 'camelCase without a separator is not read');
  assert.equal(plan.maskValue(5, '123456789'), '123456789');
  assert.equal(plan.maskBytes(0, Buffer.from('123456789'))?.toString(), '[REDACTED:personal_data]', 'bytes path: keyed columns are always decoded');
  // Personal-data names mask values as detectors do; only secret-like names refuse computing on the column.
  assert.equal(m.protectsColumn('ssn', ['patients']), false);
  assert.equal(m.protectsColumn('dob', []), false);
  assert.equal(m.protectsColumn('password', ['patients']), true);
  assert.deepEqual(m.maskJson({ dob: '14/03/1985', phone: '+44 20 7946 0958', dob_verified: true }), { dob: '[REDACTED:personal_data]', phone: '+** ** **** 0958', dob_verified: true });
});

test('maskBytes: cells whose only candidate has no trigger character are still scanned (a config directive, a Bitcoin key)', () => {
  const plan = createMasker({}).planColumns([{ column: 'note' }]);
  assert.equal(plan.maskBytes(0, Buffer.from('requirepass s3cretValue'))?.toString(), 'requirepass [REDACTED:password]');
  assert.equal(plan.maskBytes(0, Buffer.from('KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617'))?.toString(), '[REDACTED:private_key]');
  assert.equal(plan.maskBytes(0, Buffer.from('Ada Lovelace')), undefined);
  assert.equal(plan.maskBytes(0, Buffer.from('Kate Lee, Leeds')), undefined);
});

test('maskBytes: unchanged bytes are not decoded or copied; changed values are re-encoded; NULL rules', () => {
  const m = createMasker({ columns: { '*.secret_col': 'null' } });
  const plan = m.planColumns([{ column: 'name' }, { column: 'card' }, { column: 'secret_col' }]);
  const frame = Buffer.from('xxAna Müllerxx4111 1111 1111 1111xx');
  assert.equal(plan.maskBytes(0, frame, 2, 13), undefined);
  const out = plan.maskBytes(1, frame, 15, 34);
  assert.ok(Buffer.isBuffer(out));
  assert.equal(out.toString(), '4111 **** **** 1111');
  assert.equal(plan.maskBytes(2, frame, 0, 2), null);
  const utf8 = Buffer.from('Zoë 4111111111111111 €');
  assert.equal(plan.maskBytes(1, utf8)?.toString(), 'Zoë 4111********1111 €');
  const digitsNoPii = Buffer.from('order 12345');
  assert.equal(plan.maskBytes(1, digitsNoPii), undefined);
});

test('maskJson: detectors on strings and numbers, secret-like keys, field rules, same instance when clean', () => {
  const m = createMasker({ columns: { '*.ssn': 'partial', 'user.dob': 'null', 'meta': 'redact' } });
  const clean = { a: [1, 'two', { b: null, c: true }], d: 'text' };
  assert.equal(m.maskJson(clean), clean);
  const body = {
    user: { name: 'Ana', email: 'ana@example.com', ssn: '123-45-6789', dob: '1990-01-01', password: 'hunter2' },
    cards: [{ number: '4111111111111111' }, { number: 4111111111111111 }],
    meta: { nested: 'x' },
    note: 'nothing',
    headers: { Authorization: 'Bearer Zx81kPq0LmN3vB7cT2yW' },
  };
  const stats = new MaskStats();
  const out = m.maskJson(body, stats) as Record<string, unknown>;
  assert.deepEqual(out, {
    user: { name: 'Ana', email: 'a***@example.com', ssn: '***-**-6789', dob: null, password: '[REDACTED:password]' },
    cards: [{ number: '4111********1111' }, { number: '4111********1111' }],
    meta: '[REDACTED]',
    note: 'nothing',
    headers: { Authorization: 'Bearer [REDACTED:generic_secret]' },
  });
  assert.equal(out.note, body.note);
  assert.equal(body.user.ssn, '123-45-6789', 'input not mutated');
  assert.ok(stats.total >= 7);
  const deep: Record<string, unknown> = {};
  let cur = deep;
  for (let i = 0; i < 300; i++) cur = (cur.x = {}) as Record<string, unknown>;
  cur.x = 'leaf';
  assert.ok(JSON.stringify(m.maskJson(deep)).includes('[REDACTED:depth_limit]'), 'absurd depth fails closed');
});

test('maskJson: JSON inside a string (an MCP tool result, a double-encoded field) is masked by its fields and kept as written', () => {
  const m = createMasker({ columns: { salary: 'redact', '*.dob': 'null', 'result.content.text.rows.name': 'redact' } });
  const inner = JSON.stringify({ rows: [{ name: 'Ada', salary: 185000, dob: '1815-12-10', big: 1, note: 'ok' }], env: [{ name: 'DB_PASSWORD', value: 'x9Yq' }] }, null, 2).replace('"big": 1', '"big": 12345678901234567890');
  const body = { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: inner }] } };
  const out = m.maskJson(body) as { result: { content: [{ text: string }] } };
  const text = out.result.content[0].text;
  // Field rules on bare names and on the path continued into the string; a name/value pair; the
  // layout and a 20-digit integer as written.
  assert.equal(
    text,
    inner.replace('"name": "Ada"', '"name": "[REDACTED]"').replace('"salary": 185000', '"salary": "[REDACTED]"').replace('"dob": "1815-12-10"', '"dob": null').replace('"value": "x9Yq"', '"value": "[REDACTED:password]"'),
  );
  assert.ok(text.includes('"big": 12345678901234567890'));
  // Still masked as text too, and text that only looks like JSON is text.
  assert.deepEqual(m.maskJson({ a: '[ada@example.com]', b: '{"email": "ada@example.com"', c: '{ "ok": true }' }), { a: '[a***@example.com]', b: '{"email": "a***@example.com"', c: '{ "ok": true }' });
  // A repeated key's earlier value, which JSON.parse drops, does not pass.
  assert.equal((m.maskJson({ t: '{"salary": 1, "salary": 2}' }) as { t: string }).t, '{"salary":"[REDACTED]"}');
  // Under a secret-like key the whole string is the secret.
  assert.equal((m.maskJson({ password: '{"a": 1}' }) as { password: string }).password, '[REDACTED:password]');
  // The same for a text that is JSON (a WebSocket message).
  assert.equal(m.maskJsonText('{"salary": 5, "x": "ada@example.com"}'), '{"salary": "[REDACTED]", "x": "a***@example.com"}');
  assert.equal(m.maskJsonText('salary 5 for ada@example.com'), 'salary 5 for a***@example.com');
  // Encoded again at every level (each level doubles the escapes, so a body bounds the depth).
  let nested = '{"salary": 1}';
  for (let i = 0; i < 12; i++) nested = JSON.stringify({ x: nested });
  let back = (m.maskJson({ n: nested }) as { n: string }).n;
  for (let i = 0; i < 12; i++) back = (JSON.parse(back) as { x: string }).x;
  assert.equal(back, '{"salary": "[REDACTED]"}');
});

test('maskJson: a body of many strings that look like JSON and are not costs about what text costs (a failed parse is an exception)', () => {
  const m = createMasker({});
  const time = (items: string[]): number => {
    const t0 = performance.now();
    m.maskJson(items);
    return performance.now() - t0;
  };
  const near = Array.from({ length: 20_000 }, (_, i) => `{"a${i}}`);
  const text = Array.from({ length: 20_000 }, (_, i) => `{xa${i}}`);
  time(near.slice(0, 500));
  time(text.slice(0, 500));
  // Best of three each: without the cap on failed parses, `near` took ~30× as long here.
  const a = Math.min(time(near), time(near), time(near));
  const b = Math.min(time(text), time(text), time(text));
  assert.ok(a < 4 * b + 50, `near-JSON ${a.toFixed(1)} ms against text ${b.toFixed(1)} ms`);
});

test('maskJson: text carried as base64 (wrapped, plain, base64url) is masked inside and encoded again the same way', () => {
  const m = defaultMasker();
  const env = 'DB_HOST=db\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nowner: ada@example.com\n';
  const masked = 'DB_HOST=db\nAWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]\nowner: ';
  const b64 = Buffer.from(env).toString('base64');
  // The GitHub contents API: base64 wrapped at 60 columns, with a trailing newline.
  const github = `${b64.replace(/(.{60})/g, '$1\n')}\n`;
  const stats = new MaskStats();
  const out = m.maskJson({ content: github, encoding: 'base64', plain: b64, url: Buffer.from(env).toString('base64url') }, stats) as Record<string, string>;
  for (const k of ['content', 'plain', 'url'] as const) {
    const text = Buffer.from(out[k] as string, k === 'url' ? 'base64url' : 'base64').toString();
    assert.ok(text.startsWith(masked) && !text.includes('AKIAIOSFODNN7EXAMPLE') && !text.includes('ada@example.com'), `${k}: ${text}`);
  }
  const lines = (out.content as string).split('\n');
  assert.equal(lines.pop(), '', 'trailing newline kept');
  assert.ok(lines.slice(0, -1).every((l) => l.length === 60), 'wrapped at the same width');
  assert.match(out.plain as string, /^[A-Za-z0-9+/]+=*$/);
  assert.match(out.url as string, /^[A-Za-z0-9_-]+$/);
  // Counted per detector and field, as any other masking.
  assert.deepEqual(stats.toJSON().filter((e) => e.detector === 'aws_access_key').map((e) => e.column), ['content', 'plain', 'url']);
  // Not text, or nothing to mask: the same instance.
  const clean = { png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 250, 251, 252, 9, 10, 11, 12, 13, 14]).toString('base64'), sha: 'da39a3ee5e6b4b0d3255bfef95601890afd80709', text: Buffer.from('just a readme, nothing secret in it').toString('base64'), word: 'Internationalization' };
  assert.equal(m.maskJson(clean), clean);
});

test('result columns: text stored as base64 is masked inside its encoding, by value and by bytes, even with no trigger byte', () => {
  const m = defaultMasker();
  const plan = m.planColumns([{ column: 'blob' }, { column: 'note' }]);
  const env = Buffer.from('AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n').toString('base64');
  const out = plan.maskValue(0, env) as string;
  assert.notEqual(out, env);
  assert.match(Buffer.from(out, 'base64').toString(), /^AWS_ACCESS_KEY_ID=\[REDACTED:aws_access_key\]/);
  const bytes = Buffer.from(`xx${env}yy`);
  const masked = plan.maskBytes(0, bytes, 2, bytes.length - 2);
  assert.ok(masked instanceof Buffer);
  assert.equal(masked.toString(), out);
  // base64 of text with nothing to mask, random bytes, prose: unchanged (undefined = forward as is).
  for (const v of [Buffer.from('nothing secret lives in this sentence').toString('base64'), Buffer.from(Array.from({ length: 30 }, (_, i) => (i * 97) % 256)).toString('base64'), 'plain words only here, no secrets']) {
    assert.equal(plan.maskValue(1, v), v);
    assert.equal(plan.maskBytes(1, Buffer.from(v)), undefined);
  }
  // Base64 with no trigger byte of its own (no digit, `=`, `-`, `A`…) still reaches the decoder:
  // the bytes fast path must not skip it for having nothing a detector starts on.
  const noTrigger = 'cHdkPWpCVnhNQnZyTGZP';
  assert.equal(Buffer.from(noTrigger, 'base64').toString(), 'pwd=jBVxMBvrLfO');
  const hidden = plan.maskBytes(1, Buffer.from(noTrigger));
  assert.ok(hidden instanceof Buffer);
  assert.equal(Buffer.from(hidden.toString(), 'base64').toString(), 'pwd=[REDACTED:password]');
});

test('property: base64 of text with no detector hit is left as it was; with a key in it, the key is gone from the decoded value', () => {
  const m = defaultMasker();
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z ,.]{12,200}$/), fc.constantFrom('base64', 'base64url') as fc.Arbitrary<BufferEncoding>, (prose, enc) => {
      const clean = Buffer.from(prose).toString(enc);
      const same = { v: clean };
      assert.equal(m.maskJson(same), same);
      const withKey = Buffer.from(`${prose} ghp_abcdefghijklmnopqrstuvwxyz0123456789 ${prose}`).toString(enc);
      const out = (m.maskJson({ v: withKey }) as { v: string }).v;
      const decoded = Buffer.from(out, enc).toString();
      assert.ok(!decoded.includes('ghp_abcdefghijklmnopqrstuvwxyz0123456789') && decoded.includes('[REDACTED:github_token]'), decoded);
    }),
  );
});

test('custom detectors: regex + validator + style, only when listed or when detectors are omitted', () => {
  const m = createMasker({
    detectors: ['email', 'employee_id', 'loyalty'],
    custom: [
      { name: 'employee_id', pattern: 'EMP-\\d{6}', style: 'mask' },
      { name: 'loyalty', pattern: '\\bLC\\d{16}\\b', validator: 'luhn', style: 'last4' },
      { name: 'unused', pattern: 'zzz' },
    ],
  });
  const stats = new MaskStats();
  assert.equal(m.maskText('EMP-123456 LC4111111111111111 LC4111111111111112 zzz a@example.com', stats), '***-****** **************1111 LC4111111111111112 zzz a***@example.com');
  assert.deepEqual(stats.toJSON().map((e) => e.detector), ['email', 'employee_id', 'loyalty']);
  assert.ok(m.detectors.includes('employee_id') && !m.detectors.includes('unused'));
  const all = createMasker({ custom: [{ name: 'ticket', pattern: 'TKT\\d+' }] });
  assert.equal(all.maskText('TKT42 4111111111111111'), '[REDACTED:ticket] 4111********1111');
  const plan = all.planColumns([{ column: 'c' }]);
  assert.equal(plan.maskBytes(0, Buffer.from('TKT42'))?.toString(), '[REDACTED:ticket]', 'custom patterns bypass the byte prefilter');
});

test('protectsColumn: column rules by table as a statement names it, secret-like names while detectors run, keep wins, inert protects nothing', () => {
  const m = createMasker({ columns: { 'customers.ssn': 'partial', '*.card': 'redact', 'public.users.note': 'null', 'audit.password': 'keep' } });
  assert.equal(m.inert, false);
  assert.equal(m.protectsColumn('ssn', ['customers']), true);
  assert.equal(m.protectsColumn('ssn', ['public.customers']), true, 'schema-qualified table');
  assert.equal(m.protectsColumn('ssn', ['orders']), false, 'another table');
  assert.equal(m.protectsColumn('card', ['orders']), true, '*.card covers every table');
  assert.equal(m.protectsColumn('card', []), true, 'and an unknown one');
  assert.equal(m.protectsColumn('note', ['users']), true, 'an unqualified table is looked up in public');
  assert.equal(m.protectsColumn('password', ['customers']), true, 'secret-like name');
  assert.equal(m.protectsColumn('password', ['audit']), false, 'a keep rule reveals it');
  assert.equal(m.protectsColumn('name', ['customers']), false);
  const off = createMasker({ detectors: [] });
  assert.equal(off.inert, true);
  assert.equal(off.protectsColumn('password', ['customers']), false, 'names are masked only while detectors run');
  const rulesOnly = createMasker({ detectors: [], columns: { '*.ssn': 'redact' } });
  assert.equal(rulesOnly.inert, false);
  assert.equal(rulesOnly.protectsColumn('ssn', ['t']), true);
  assert.equal(rulesOnly.protectsColumn('password', ['t']), false);
});

test('hasTableRules: rules that name a table (which JSON of a whole row cannot follow), not bare names or keep', () => {
  const m = createMasker({ columns: { 'customers.ssn': 'partial', '*.card': 'redact', 'public.users.note': 'null', 'billing.*.iban': 'mask', 'audit.secret': 'keep', password: 'redact' } });
  assert.equal(m.hasTableRules(['customers']), true);
  assert.equal(m.hasTableRules(['public.customers']), true, 'schema-qualified');
  assert.equal(m.hasTableRules(['users']), true, 'an unqualified table is looked up in public');
  assert.equal(m.hasTableRules(['billing.invoices']), true, 'a glob over tables');
  assert.equal(m.hasTableRules(['orders']), false, '*.card and password are bare names');
  assert.equal(m.hasTableRules(['audit']), false, 'keep masks nothing');
  assert.equal(m.hasTableRules(['orders', 'customers']), true);
  assert.equal(createMasker({}).hasTableRules(['customers']), false, 'no column rules');
});

test('maskJson: a name/value pair is masked by its name; a flag named like a secret keys the next argument', () => {
  const m = createMasker({ detectors: ['default'], columns: { ssn: 'partial' } });
  const body = {
    Parameters: [{ Name: 'prod/db/password', Value: 'plainword1', Type: 'SecureString' }, { Name: 'prod/region', Value: 'eu-west-1' }],
    environment: [{ name: 'API_TOKEN', value: 'Zx81fQk2LmP0aR7tYw3B' }, { key: 'ssn', value: '123-45-6789' }, { name: 'password-reset', value: 'enabled' }],
    command: ['/bin/app', '--db-password', 'plainword2', '--verbose', '--token', '--next'],
  };
  const out = m.maskJson(body) as typeof body;
  assert.deepEqual(out.Parameters.map((p) => p.Value), ['[REDACTED:password]', 'eu-west-1']);
  assert.deepEqual(out.environment.map((e) => e.value), ['[REDACTED:generic_secret]', '***-**-6789', 'enabled']);
  assert.deepEqual(out.command, ['/bin/app', '--db-password', '[REDACTED:password]', '--verbose', '--token', '--next']);
});

test('findMaskMarker recognises what masking writes (redact, hash, partial forms, base64 of [REDACTED]) and not ordinary text', async () => {
  const { findMaskMarker } = await import('../../src/masking/index.js');
  const m = createMasker({ detectors: ['default'], columns: { 'public.t.h': 'hash', 'public.t.p': 'partial', 'public.t.r': 'redact' }, hashKey: '0123456789abcdef0123456789abcdef' });
  const plan = m.planColumns([
    { schema: 'public', table: 't', column: 'h' },
    { schema: 'public', table: 't', column: 'p' },
    { schema: 'public', table: 't', column: 'r' },
  ]);
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z]{2,8}$/), fc.integer({ min: 1000, max: 9999 }), (user, last4) => {
      for (const out of [plan.maskValue(0, user)!, plan.maskValue(2, user)!, m.maskText(`mail ${user}@example.com`), m.maskText(`ssn 078-05-${last4}`), m.maskText(`card 4111 1111 1111 1111`)]) {
        assert.notEqual(findMaskMarker(out), undefined, out);
      }
    }),
  );
  assert.notEqual(findMaskMarker(`{"data": {"password": "${Buffer.from('[REDACTED]').toString('base64')}"}}`), undefined);
  for (const clean of ['price: 5 * 3 = 15', 'hash: e3e30b4d', 'rating ***', 'see https://example.com/a*b', '{"markdown": "**bold**"}', 'a@example.com']) {
    assert.equal(findMaskMarker(clean), undefined, clean);
  }
});
