/**
 * Full-width forms of ASCII (U+FF01–U+FF5E), as East Asian text writes digits and Latin letters:
 * `４１１１ １１１１ １１１１ １１１１`, `ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ`, and as an agent can ask the database to write
 * them (`translate(card, '0123456789', '０１２３４５６７８９')`) to get a value past a masker that reads only
 * ASCII. The scanner notes a full-width digit, letter or `＠` as it passes (Scanner.wide); the masker
 * then scans a view with every full-width character folded to its ASCII form, and the ideographic
 * space to a space, each one UTF-16 unit for one, so a hit's offsets are the same in the text.
 * Full-width punctuation alone, common in Japanese prose, does not start a second scan.
 */

/** Does `c` start the folded scan: a full-width digit, `＠` or Latin letter? */
export function startsWide(c: number): boolean {
  return c >= 0xff10 && c <= 0xff5a && (c <= 0xff19 || c >= 0xff20) && (c <= 0xff3a || c >= 0xff41);
}

/** `text` with full-width ASCII forms and the ideographic space folded to ASCII; the same length. */
export function foldWide(text: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x3000) continue;
    if (c === 0x3000 || (c >= 0xff01 && c <= 0xff5e)) {
      out += text.slice(last, i) + String.fromCharCode(c === 0x3000 ? 0x20 : c - 0xfee0);
      last = i + 1;
    }
  }
  return last === 0 ? text : out + text.slice(last);
}

/**
 * Does the UTF-8 sequence at `i` (whose first byte is EF) encode a character that starts the
 * folded scan (startsWide: EF BC 90–99, EF BC A0–BA, EF BD 81–9A)? The byte path's pre-check lets
 * such a value through to the scanner, which finds no ASCII trigger in it.
 */
export function hasWideBytes(bytes: Uint8Array, i: number, end: number): boolean {
  if (i + 2 >= end) return false;
  const b1 = bytes[i + 1]!;
  const b2 = bytes[i + 2]!;
  if (b1 === 0xbc) return (b2 >= 0x90 && b2 <= 0x99) || (b2 >= 0xa0 && b2 <= 0xba);
  return b1 === 0xbd && b2 >= 0x81 && b2 <= 0x9a;
}
