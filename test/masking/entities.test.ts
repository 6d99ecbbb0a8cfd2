/**
 * HTML character references (src/masking/entities.ts): the masker scans the decoded view and
 * writes each replacement over the span it came from, so JSON in an HTML attribute, a form value
 * written `password&#61;…` and an address written `ada&#64;example.com` are masked, and the rest
 * of the text keeps its encoding.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createMasker, defaultMasker } from '../../src/masking/index.js';
import { decodeEntities } from '../../src/masking/entities.js';

const m = defaultMasker();

describe('HTML character references', () => {
  test('decoding: ASCII references with their `;`, once, with a map back to the original', () => {
    assert.equal(decodeEntities('no references & none'), undefined);
    assert.equal(decodeEntities('&unknown; &#x1F600; &#0; &quot'), undefined, 'unknown, non-ASCII, control and unterminated references stay');
    const d = decodeEntities('a&quot;b&#61;c&#x3D;d&amp;quot;');
    assert.ok(d !== undefined);
    assert.equal(d.text, 'a"b=c=d&quot;', '`&amp;quot;` is decoded once');
    for (let i = 0; i < d.text.length; i++) {
      const src = 'a&quot;b&#61;c&#x3D;d&amp;quot;'.slice(d.map[i], d.map[i + 1]);
      assert.ok(src === d.text[i] || src.startsWith('&'), `${i}: ${src}`);
    }
    assert.equal(d.map[d.text.length], 'a&quot;b&#61;c&#x3D;d&amp;quot;'.length);
  });

  test('masking: JSON in an attribute, form values, obfuscated addresses and XML written as text', () => {
    const page = '<div id="app" data-page="{&quot;props&quot;:{&quot;user&quot;:{&quot;email&quot;:&quot;ada@example.com&quot;,&quot;api_token&quot;:&quot;Zx81kPq0LmN3vB7c&quot;}}}"></div>';
    assert.equal(m.maskText(page), '<div id="app" data-page="{&quot;props&quot;:{&quot;user&quot;:{&quot;email&quot;:&quot;a***@example.com&quot;,&quot;api_token&quot;:&quot;[REDACTED:generic_secret]&quot;}}}"></div>');
    assert.equal(m.maskText('user=ada&amp;password&#61;hunter2&amp;next=%2F'), 'user=ada&amp;password&#61;[REDACTED:password]&amp;next=%2F');
    assert.equal(m.maskText('write to ada&#64;example&#46;com'), 'write to a***@example.com');
    assert.equal(m.maskText('&lt;password&gt;s3cr3tpw&lt;/password&gt;'), '&lt;password&gt;[REDACTED:password]&lt;/password&gt;');
    // Without a hit the text is returned as it came (the same string).
    const clean = 'Tom &amp; Jerry &quot;quoted&quot; &#169;';
    assert.equal(m.maskText(clean), clean);
    // A database cell (the byte path's pre-check lets `&` through).
    const plan = m.planColumns([{ column: 'note' }]);
    const cell = Buffer.from('password&equals;hunter2');
    assert.equal(plan.maskBytes(0, cell)?.toString(), 'password&equals;[REDACTED:password]');
    // Custom detectors see the decoded view too.
    const custom = createMasker({ custom: [{ name: 'ticket', pattern: 'TCK-[0-9]{4}' }] } as never);
    assert.equal(custom.maskText('id&colon;TCK&#45;1234'), 'id&colon;[REDACTED:ticket]');
  });

  test('property: a password written with references, in any mix, is masked', () => {
    const refs: Record<string, string[]> = { '"': ['&quot;', '&#34;', '&#x22;'], ':': ['&colon;', '&#58;'], '=': ['&equals;', '&#61;', '&#x3d;'], '&': ['&amp;'] };
    const encode = (s: string, pick: number): string => [...s].map((c, i) => (refs[c] !== undefined && (pick >> i % 8) & 1 ? refs[c]![(pick + i) % refs[c]!.length]! : c)).join('');
    fc.assert(
      fc.property(fc.constantFrom('{"password":"%s"}', 'password=%s&x=1', '"secret": "%s"'), fc.stringMatching(/^[A-Za-z0-9]{10,16}$/), fc.nat(255), (shape, pw, pick) => {
        const text = encode(shape.replace('%s', pw), pick);
        const out = m.maskText(text);
        assert.ok(!out.includes(pw), `${text} → ${out}`);
        assert.ok(out.includes('[REDACTED:'), out);
      }),
      { numRuns: 400 },
    );
  });
});
