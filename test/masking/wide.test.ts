/**
 * Full-width forms (src/masking/wide.ts): digits and letters written full-width — by East Asian
 * text, or by an agent asking the database to write them so — are masked as their ASCII forms;
 * the rest of the text keeps its characters, and prose with only full-width punctuation is not
 * scanned twice.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createMasker, defaultMasker } from '../../src/masking/index.js';
import { foldWide, hasWideBytes, startsWide } from '../../src/masking/wide.js';

const m = defaultMasker();
const wide = (s: string): string => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).replace(/ /g, '\u3000');

describe('full-width forms', () => {
  test('folding keeps the length and maps only full-width ASCII forms and the ideographic space', () => {
    assert.equal(foldWide('カード４１１１－１１１１　ａｄａ＠ｅｘ．ｊｐ（テスト）'), 'カード4111-1111 ada@ex.jp(テスト)');
    assert.equal(foldWide('plain ascii'), 'plain ascii');
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => foldWide(s).length === s.length));
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
    assert.equal(hasWideBytes(Buffer.from('！'), 0, 3), false);
    assert.equal(hasWideBytes(Buffer.from('ｶ'), 0, 3), false, 'half-width katakana is not a full-width form');
    const plan = m.planColumns([{ column: 'note' }]);
    assert.equal(plan.maskBytes(0, cell)?.toString(), '4111********1111');
    assert.equal(plan.maskBytes(0, Buffer.from('テスト（１２）')), undefined, 'unchanged cells go out as their bytes');
  });
});
