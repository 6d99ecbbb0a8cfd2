/** docs/masking.md stays true: its config example compiles, and its tables show what the masker does. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { createMasker, defaultMasker, DETECTOR_NAMES } from '../../src/masking/index.js';

const doc = readFileSync(new URL('../../docs/masking.md', import.meta.url), 'utf8');

test('the configuration example compiles and masks as it says', () => {
  const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  const maskBlock = yamlBlock.slice(yamlBlock.indexOf('    mask:'));
  const { mask } = parse(maskBlock.replace(/^ {4}/gm, '')) as { mask: Record<string, unknown> };
  const m = createMasker(mask as never, { secret: (raw) => ({ reveal: () => (raw === 'env:SLUICE_MASK_KEY' ? 'a-key-of-16-chars-or-more' : '') }) as never });
  assert.match(m.maskText('mail ada@example.com'), /^mail hash:[0-9a-f]{16}$/);
  assert.equal(m.maskText('ssn 123-45-6789'), 'ssn [REDACTED:us_ssn]', 'pii: redact');
  assert.equal(m.maskText('host 10.0.0.7'), 'host [REDACTED:ipv4]', 'ipv4 enabled on top of default');
  assert.equal(m.maskText('badge EMP-123456'), 'badge ***-******');
  assert.equal(m.maskText('member 4000 0000 0000 0002'), 'member [REDACTED:credit_card]');
});

test('every built-in detector is in the table, with the example its default style gives', () => {
  const masker = createMasker({ detectors: ['all'] });
  const rows = doc.split('\n').filter((l) => /^\| `[a-z_0-9]+`/.test(l));
  const named = new Set(rows.flatMap((r) => [...(r.split('|')[1] ?? '').matchAll(/`([a-z_0-9]+)`/g)].map((x) => x[1])));
  for (const d of DETECTOR_NAMES) assert.ok(named.has(d), `${d} is documented`);
  const cases: [string, string][] = [
    ['4111 1111 1111 1111', '4111 **** **** 1111'],
    ['123-45-6789', '***-**-6789'],
    ['AB123456C', '*****456C'],
    ['130 692 544', '*** **2 544'],
    ['2345 6789 0124', '**** **** 0124'],
    ['529.982.247-25', '***.***.*47-25'],
    ['12345678Z', '*****678Z'],
    ['DE89 3704 0044 0532 0130 00', 'DE** **** **** **** **30 00'],
    ['ada@example.com', 'a***@example.com'],
    ['+1 415-555-0132', '+* ***-***-0132'],
    ['10.0.0.7', '[REDACTED:ipv4]'],
    ['AKIAIOSFODNN7EXAMPLE', '[REDACTED:aws_access_key]'],
    ['ghp_abcdefghijklmnopqrstuvwxyz0123456789', '[REDACTED:github_token]'],
    [`sk-proj-${'Ab0_'.repeat(30)}`, '[REDACTED:openai_key]'],
    [`sk-ant-api03-${'Ab0-'.repeat(24)}AA`, '[REDACTED:anthropic_key]'],
    [`hf_${'AbCdEfGhIjKlMnOpQr'.repeat(2).slice(0, 34)}`, '[REDACTED:huggingface_token]'],
    [`dckr_pat_${'Ab0'.repeat(9)}`, '[REDACTED:vendor_token]'],
    ['postgres://app:s3cretPw@db/app', 'postgres://app:[REDACTED:url_password]@db/app'],
    ['password=hunter2', 'password=[REDACTED:password]'],
    ['api_key: 9f8e7d6c5b4a39281716aabbccddeeff', 'api_key: [REDACTED:generic_secret]'],
  ];
  for (const [input, want] of cases) {
    assert.equal(masker.maskText(input), want, input);
    assert.ok(doc.includes(`\`${want}\``), `the doc shows ${want}`);
  }
  assert.equal(defaultMasker().maskText('10.0.0.7'), '10.0.0.7', 'network detectors are not in default');
});
