/**
 * Characters that hide a value from an ASCII-only masker (src/masking/fold.ts): full-width forms,
 * the digits of other scripts, zero-width and other invisible characters, Unicode spaces and
 * dashes, tag characters ("ASCII smuggling"), mathematical letters, combining marks, keycaps.
 * Written so by East Asian text, or by an agent asking the database or a tool to rewrite a value,
 * they are masked as their ASCII forms; the rest of the text keeps its characters, and prose that
 * merely contains such characters (a no-break space in French, an emoji's joiner, full-width
 * punctuation) is not changed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createMasker, defaultMasker } from '../../src/masking/index.js';
import { DIGIT_ZEROS_ASTRAL, DIGIT_ZEROS_BMP, foldText, mayFoldBytes, startsFold } from '../../src/masking/fold.js';

const foldWide = (s: string): string => foldText(s)?.text ?? s;
const startsWide = (c: number): boolean => startsFold(String.fromCharCode(c), 0, c);
const hasWideBytes = mayFoldBytes;

const m = defaultMasker();
const wide = (s: string): string => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).replace(/ /g, '\u3000');

describe('full-width forms', () => {
  test('full-width ASCII forms and the ideographic space fold to ASCII, one character for one', () => {
    assert.equal(foldWide('カード４１１１－１１１１　ａｄａ＠ｅｘ．ｊｐ（テスト）'), 'カード4111-1111 ada@ex.jp(テスト)');
    assert.equal(foldWide('plain ascii'), 'plain ascii');
    const f = foldText('ａｂ４');
    assert.deepEqual(f, { text: 'ab4', map: undefined }, 'offsets unchanged: no map');
    assert.ok(startsWide('４'.charCodeAt(0)) && startsWide('＠'.charCodeAt(0)) && startsWide('ｚ'.charCodeAt(0)));
    assert.ok(!startsWide('！'.charCodeAt(0)) && !startsWide('（'.charCodeAt(0)) && !startsWide('：'.charCodeAt(0)));
  });

  test('cards, national ids, e-mail addresses and tokens written full-width are masked; the text around keeps its characters', () => {
    assert.equal(m.maskText('カード番号：４１１１　１１１１　１１１１　１１１１です'), 'カード番号：4111 **** **** 1111です');
    assert.equal(m.maskText('SSN １２３－４５－６７８９'), 'SSN ***-**-6789');
    assert.equal(m.maskText('連絡先 ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ まで'), '連絡先 a***@example.com まで');
    assert.equal(m.maskText(wide('token ghp_abcdefghijklmnopqrstuvwxyz0123456789')), `${wide('token')}\u3000[REDACTED:github_token]`);
    assert.equal(m.maskText(wide('password=hunter2')), `${wide('password=')}[REDACTED:password]`);
    // Mixed with HTML character references.
    assert.equal(m.maskText('ａｄａ&#64;ｅｘａｍｐｌｅ．ｃｏｍ'), 'a***@example.com');
    // Custom detectors see the folded view too.
    const custom = createMasker({ custom: [{ name: 'ticket', pattern: 'TCK-[0-9]{4}' }] } as never);
    assert.equal(custom.maskText('チケット ＴＣＫ－１２３４'), 'チケット [REDACTED:ticket]');
  });

  test('text without a full-width digit or letter is returned as it came, the same string', () => {
    for (const t of ['日本語のテキスト（テスト）です！', '合計：１２個', 'Ｔｏｋｙｏ　２０２４']) {
      const out = m.maskText(t);
      assert.equal(out, t);
    }
  });

  test('property: a card number with full-width digits, grouped by any ASCII or full-width separator, is masked', () => {
    fc.assert(
      fc.property(fc.constantFrom('4111111111111111', '5500000000000004', '4012888888881881'), fc.constantFrom('', ' ', '-', '\u3000', '－'), fc.constantFrom('', 'カード', 'card ', '番号：'), (card, sep, before) => {
        const groups = [card.slice(0, 4), card.slice(4, 8), card.slice(8, 12), card.slice(12)];
        const text = groups.join(sep).replace(/[0-9]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
        const out = m.maskText(`${before}${text}です`);
        return out === `${before}${card.slice(0, 4)}${foldWide(sep)}****${foldWide(sep)}****${foldWide(sep)}${card.slice(12)}です` || out === `${before}${card.slice(0, 4)}********${card.slice(12)}です`;
      }),
    );
  });

  test('the byte path lets a cell holding only full-width digits through to the scanner', () => {
    const cell = Buffer.from('４１１１１１１１１１１１１１１１');
    assert.equal(hasWideBytes(cell, 0, cell.length), true);
    assert.equal(hasWideBytes(Buffer.from('！'), 0, 3), false, 'full-width punctuation alone does not start a scan');
    assert.equal(hasWideBytes(Buffer.from('ｶ'), 0, 3), false, 'half-width katakana is not a full-width form');
    const plan = m.planColumns([{ column: 'note' }]);
    assert.equal(plan.maskBytes(0, cell)?.toString(), '4111********1111');
    assert.equal(plan.maskBytes(0, Buffer.from('テスト（１２）')), undefined, 'unchanged cells go out as their bytes');
  });
});

const tag = (s: string): string => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
const bold = (s: string): string =>
  [...s].map((c) => (/[0-9]/.test(c) ? String.fromCodePoint(0x1d7ce + Number(c)) : /[a-z]/.test(c) ? String.fromCodePoint(0x1d41a + c.charCodeAt(0) - 97) : /[A-Z]/.test(c) ? String.fromCodePoint(0x1d400 + c.charCodeAt(0) - 65) : c)).join('');
const digits = (zero: number) => (s: string): string => s.replace(/[0-9]/g, (d) => String.fromCodePoint(zero + Number(d)));
const between = (sep: string) => (s: string): string => [...s].join(sep);
const grouped = (sep: string) => (s: string): string => s.replace(/ /g, sep);

/** Ways an agent can rewrite a value so a model still reads it but an ASCII-only masker does not. */
const EVASIONS: Record<string, (s: string) => string> = {
  'Arabic-Indic digits': digits(0x660),
  'Extended Arabic-Indic digits': digits(0x6f0),
  'Devanagari digits': digits(0x966),
  'Thai digits': digits(0xe50),
  'mathematical bold digits': digits(0x1d7ce),
  'Adlam digits': digits(0x1e950),
  'zero-width space between characters': between('\u200b'),
  'zero-width joiner between characters': between('\u200d'),
  'word joiner between characters': between('\u2060'),
  'soft hyphen between characters': between('\u00ad'),
  'BOM between characters': between('\ufeff'),
  'combining acute on every character': (s) => [...s].map((c) => c + '\u0301').join(''),
  'right-to-left override around': (s) => `\u202e${s}\u202c`,
  'keycap digits': (s) => s.replace(/[0-9]/g, (d) => `${d}\ufe0f\u20e3`),
  'tag characters': tag,
  'mathematical bold': bold,
  'no-break spaces as separators': grouped('\u00a0'),
  'narrow no-break spaces': grouped('\u202f'),
  'thin spaces': grouped('\u2009'),
  'ideographic spaces': grouped('\u3000'),
};

describe('folded view: other scripts, invisible characters, tags', () => {
  test('the hard-coded decimal digit runs are exactly the runtime\'s \\p{Nd}', () => {
    const nd = /\p{Nd}/u;
    const zeros: number[] = [];
    for (let c = 0x80; c < 0x110000; c++) {
      if (c >= 0xd800 && c < 0xe000) continue;
      if (!nd.test(String.fromCodePoint(c))) continue;
      zeros.push(c);
      for (let k = 1; k < 10; k++) assert.ok(nd.test(String.fromCodePoint(c + k)), `U+${c.toString(16)} starts a run of ten`);
      c += 9;
    }
    assert.deepEqual([...DIGIT_ZEROS_BMP, ...DIGIT_ZEROS_ASTRAL], zeros);
  });

  test('every evasion of a card, an SSN, an e-mail address and a token is masked', () => {
    const values: Array<[string, string, string]> = [
      // [value, what must not survive (folded), expected in the output]
      ['4111 1111 1111 1111', '1111 1111', '****'],
      ['078-05-1120', '078-05', '***-**-1120'],
      ['ada.lovelace@example.com', 'lovelace@', '***@example.com'],
      ['ghp_1234567890abcdefghijABCDEFGHIJ123456', 'ghp_12345', '[REDACTED:github_token]'],
      ['AKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7', '[REDACTED:aws_access_key]'],
    ];
    for (const [name, evade] of Object.entries(EVASIONS)) {
      for (const [value, secret, expected] of values) {
        const hidden = evade(value);
        if (hidden === value || (!/[0-9]/.test(value) && /digits|keycap/.test(name)) || (/spaces/.test(name) && !value.includes(' '))) continue;
        const out = m.maskText(`note: see ${hidden} here`);
        const folded = foldWide(out);
        assert.ok(!folded.includes(secret), `${name}: ${JSON.stringify(value)} survived as ${JSON.stringify(out)}`);
        assert.ok(out.includes(expected), `${name}: ${JSON.stringify(out)} has ${expected}`);
        assert.ok(out.startsWith('note: see ') && out.endsWith(' here'), `${name}: the text around is kept: ${JSON.stringify(out)}`);
      }
    }
  });

  test('a run of tag characters glued to visible text is read as a word of its own', () => {
    const out = m.maskText(`Done${tag('ghp_1234567890abcdefghijABCDEFGHIJ123456')}.`);
    assert.equal(out, 'Done[REDACTED:github_token].');
    assert.equal(foldText(`ok${tag('hi')}!`)?.text, 'ok hi !');
    assert.equal(m.maskText(tag('password=hunter2')), `${tag('password=')}[REDACTED:password]`, 'the key keeps its characters');
  });

  test('Unicode dashes and the minus sign as SSN and card separators', () => {
    for (const dash of ['\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212', '\ufe63']) {
      assert.equal(m.maskText(`ssn 078${dash}05${dash}1120`), 'ssn ***-**-1120', `dash U+${dash.charCodeAt(0).toString(16)}`);
      assert.equal(m.maskText(`card 4111${dash}1111${dash}1111${dash}1111`), 'card 4111-****-****-1111');
    }
  });

  test('HTML character references to invisible characters are decoded, then folded', () => {
    assert.equal(m.maskText('4111&#8203;1111&#x200B;1111&#8203;1111'), '4111********1111');
    assert.equal(m.maskText('ada&#173;@example.com'), 'a***@example.com');
    assert.equal(m.maskText('a &#8203; b'), 'a &#8203; b', 'nothing masked: the text is returned as it came');
  });

  test('prose that merely holds such characters is returned unchanged, the same string', () => {
    // Not even scanned twice: a no-break space after a word, an emoji's joiner, a BOM at the start.
    assert.equal(startsFold('Prix\u00a0:', 4, 0xa0), false);
    assert.equal(startsFold('12\u00a0345', 2, 0xa0), true, 'after a digit it may separate groups');
    assert.equal(startsFold('\ud83d\udc68\u200d\ud83d\udc69', 2, 0x200d), false);
    assert.equal(startsFold('\ufeffBOM', 0, 0xfeff), false);
    assert.equal(startsFold('ada\u200b@', 3, 0x200b), true);
    for (const t of [
      'Prix\u00a0: 12\u00a0€, livraison\u00a0: 3\u00a0jours',
      'family 👨‍👩‍👧 robot 🤖 heart ❤️ flag 🏳️‍🌈',
      'مرحبا، الطلب رقم ١٢٣ جاهز',
      'मूल्य ४५ रुपये',
      'naïve café (NFD: nai\u0308ve cafe\u0301)',
      'x² + y² = z²',
      '\ufeffBOM at the start',
    ]) {
      assert.equal(m.maskText(t), t, JSON.stringify(t));
    }
  });

  test('property: the folded view maps each of its characters back to the character it came from', () => {
    const alphabet = fc.constantFrom('a', '4', ' ', '@', '\u200b', '\u00a0', '\u0301', '٤', '４', '\u2013', tag('x'), bold('z'), String.fromCodePoint(0x1d7cf), '🤖', '\ud835', '\udc00');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (parts) => {
        const text = parts.join('');
        const f = foldText(text);
        if (f === undefined) return true;
        const map = f.map ?? Int32Array.from({ length: f.text.length + 1 }, (_, k) => k);
        assert.equal(map.length, f.text.length + 1);
        assert.equal(map[f.text.length], text.length);
        for (let k = 0; k < f.text.length; k++) {
          assert.ok(map[k]! >= (k === 0 ? 0 : map[k - 1]!), 'offsets never go back');
          const v = f.text[k]!;
          const orig = text.codePointAt(map[k]!)!;
          // An inserted space maps to the tag run it separates; a folded character to its source.
          assert.ok(v === ' ' || String.fromCodePoint(orig) === v || orig >= 0x80, `${JSON.stringify(v)} from U+${orig.toString(16)}`);
        }
        return true;
      }),
    );
  });

  test('property: a card hidden by any evasion, in any context, is masked and the context kept', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('4111 1111 1111 1111', '5500 0000 0000 0004', '4012 8888 8888 1881'),
        fc.constantFrom(...Object.keys(EVASIONS)),
        fc.constantFrom('', 'card ', 'カード', '{"n":"', 'number: ', '٤ ', '\t'),
        fc.constantFrom('', ' ok', '"}', '.', 'です', '\n'),
        (card, name, before, after) => {
          const out = m.maskText(`${before}${EVASIONS[name]!(card)}${after}`);
          return out.startsWith(before) && out.endsWith(after) && !foldWide(out).replace(/[^0-9]/g, '').includes(card.replace(/ /g, '').slice(4, 12));
        },
      ),
    );
  });

  test('the byte path lets a cell hiding a value in any of these forms through to the scanner', () => {
    const plan = m.planColumns([{ column: 'note' }]);
    for (const [name, evade] of Object.entries(EVASIONS)) {
      const cell = Buffer.from(evade(/spaces/.test(name) ? '4111 1111 1111 1111' : '4111111111111111'));
      const out = plan.maskBytes(0, cell)?.toString();
      assert.ok(out !== undefined && foldWide(out).includes('****'), `${name}: ${out}`);
    }
    const hidden = Buffer.from(tag('AKIAIOSFODNN7EXAMPLE'));
    assert.equal(mayFoldBytes(hidden, 0, hidden.length), true, 'a cell only of tag characters');
    assert.equal(plan.maskBytes(0, hidden)?.toString(), '[REDACTED:aws_access_key]');
    assert.equal(plan.maskBytes(0, Buffer.from('Prix\u00a0: 12\u00a0€')), undefined, 'unchanged cells go out as their bytes');
    assert.equal(mayFoldBytes(Buffer.from('🤖'), 0, 4), false, 'an emoji is not folded');
  });
});
