import { isFolded } from './fold.js';

/**
 * HTML character references that hide the punctuation detectors key on. A server-rendered page
 * carries JSON in an attribute (`data-page="{&quot;password&quot;:&quot;…&quot;}"`, as Inertia
 * and many templates write it), a form value as `password&#61;…`, an obfuscated address as
 * `ada&#64;example.com`. The masker scans the decoded view and writes its replacements back into
 * the text as it came, so everything it did not mask keeps its encoding.
 *
 * Only references to ASCII characters are decoded (named ones for punctuation, numeric ones for any
 * printable ASCII, tab and newline), and numeric ones to the characters the folded view rewrites
 * (`&#8203;`, a zero-width space: fold.ts), and only with their `;`: what is left is what a
 * browser would show as itself, and text without a reference costs one `indexOf`.
 */

const NAMED: Readonly<Record<string, string>> = {
  quot: '"',
  apos: "'",
  amp: '&',
  lt: '<',
  gt: '>',
  equals: '=',
  colon: ':',
  semi: ';',
  comma: ',',
  period: '.',
  sol: '/',
  bsol: '\\',
  commat: '@',
  num: '#',
  dollar: '$',
  percnt: '%',
  plus: '+',
  quest: '?',
  excl: '!',
  lowbar: '_',
  hyphen: '-',
  dash: '-',
  lpar: '(',
  rpar: ')',
  lbrace: '{',
  rbrace: '}',
  lcub: '{',
  rcub: '}',
  lsqb: '[',
  rsqb: ']',
  lbrack: '[',
  rbrack: ']',
  verbar: '|',
  vert: '|',
  grave: '`',
  tilde: '~',
  ast: '*',
  midast: '*',
  Tab: '\t',
  NewLine: '\n',
};

/** The longest name above, and the longest numeric reference (`&#x0000007e;`) scanned for. */
const MAX_REF = 14;

export interface Decoded {
  /** The text with every reference replaced by its character. */
  readonly text: string;
  /** For each position of `text` (and its end), the position in the original it came from. */
  readonly map: Int32Array;
}

/** The character a reference at `amp` (the index of `&`) stands for, and its length; undefined if none. */
function reference(text: string, amp: number): { ch: string; len: number } | undefined {
  // Looked for within MAX_REF characters only: text with many `&` and no `;` stays linear.
  let semi = -1;
  const stop = Math.min(text.length, amp + MAX_REF + 1);
  for (let i = amp + 2; i < stop; i++) {
    if (text.charCodeAt(i) === 0x3b) {
      semi = i;
      break;
    }
  }
  if (semi < 0) return undefined;
  const body = text.slice(amp + 1, semi);
  if (body.charCodeAt(0) === 0x23 /* # */) {
    const hex = body.charCodeAt(1) === 0x78 || body.charCodeAt(1) === 0x58;
    const digits = body.slice(hex ? 2 : 1);
    if (digits.length === 0 || !(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) return undefined;
    const code = parseInt(digits, hex ? 16 : 10);
    // ASCII, or a character the folded view rewrites (`&#8203;`, a zero-width space): fold.ts.
    if (!((code >= 0x20 && code < 0x7f) || code === 0x09 || code === 0x0a || (code <= 0x10ffff && isFolded(code)))) return undefined;
    return { ch: String.fromCodePoint(code), len: semi - amp + 1 };
  }
  const ch = Object.hasOwn(NAMED, body) ? NAMED[body] : undefined;
  return ch === undefined ? undefined : { ch, len: semi - amp + 1 };
}

/** The decoded view of `text`, or undefined when it holds no reference decoded here. */
export function decodeEntities(text: string): Decoded | undefined {
  let amp = text.indexOf('&');
  if (amp < 0) return undefined;
  let out: string[] | undefined;
  let map: number[] | undefined;
  let pos = 0;
  while (amp >= 0) {
    const ref = reference(text, amp);
    if (ref !== undefined) {
      out ??= [];
      map ??= [];
      // Copied as is up to the reference, one position per character.
      if (amp > pos) out.push(text.slice(pos, amp));
      for (let i = pos; i < amp; i++) map.push(i);
      out.push(ref.ch);
      for (let k = 0; k < ref.ch.length; k++) map.push(amp);
      pos = amp + ref.len;
    }
    amp = text.indexOf('&', ref !== undefined ? pos : amp + 1);
  }
  if (out === undefined || map === undefined) return undefined;
  if (pos < text.length) out.push(text.slice(pos));
  for (let i = pos; i < text.length; i++) map.push(i);
  map.push(text.length);
  return { text: out.join(''), map: Int32Array.from(map) };
}
