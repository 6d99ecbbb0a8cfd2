/**
 * Characters that hide a value from a masker reading only ASCII, and the folded view the masker
 * scans when a text holds them. Written by hand because it is the detectors' own input model:
 * the forms below are chosen for what they can hide, not for Unicode normalisation as such
 * (NFKC would also rewrite prose the masker must hand back unchanged, and it keeps invisible
 * characters).
 *
 * An agent can ask a database or a tool to rewrite a value so that it still reads the same to a
 * model but no longer matches a detector: `translate(card, '0123456789', '٠١٢٣٤٥٦٧٨٩')`, a
 * zero-width space between every digit, no-break spaces or en dashes as group separators, invisible
 * Unicode tag characters carrying ASCII ("ASCII smuggling"), mathematical bold letters, combining
 * marks ("Zalgo"), keycap digits. East Asian text writes digits and Latin letters full-width.
 *
 * The scanner notes such a character as it passes (Scanner.folds, startsFold); the masker then
 * scans the folded view, where
 * - full-width ASCII forms, the decimal digits of every script, superscript and subscript digits,
 *   mathematical alphanumerics and tag characters become their ASCII character;
 * - Unicode spaces become a space and Unicode dashes a hyphen;
 * - invisible format characters, variation selectors and combining marks are dropped;
 * and writes each replacement, made from the view, over the span of the text it came from.
 * Everything it did not mask keeps its characters.
 *
 * A Unicode space or dash starts the folded scan only right after an ASCII digit, where it can
 * separate a number's groups, and an invisible character only right after a visible ASCII one,
 * where it can split a value: a no-break space in French prose (`Prix : 12 €` writes one after a
 * word), or an emoji's joiner and variation selector, does not make the text be scanned twice.
 * Full-width punctuation alone, common in Japanese prose, never does.
 */

/** Folded to the ASCII character in TO; always starts the folded scan. */
const ASCII = 1;
/** Folded to the ASCII character in TO; never starts the folded scan by itself. */
const QUIET = 2;
/** A space or dash, folded to the ASCII character in TO; starts the folded scan after an ASCII digit (a group separator). */
const SEP = 3;
/** Dropped from the view; starts the folded scan after a visible ASCII character. */
const DROP = 4;
/** A high surrogate whose pair may fold (astralFold). */
const HIGH = 5;

const CLASS = new Uint8Array(0x10000);
const TO = new Uint8Array(0x10000);

function set(from: number, to: number, cls: number, ascii?: (c: number) => number): void {
  for (let c = from; c <= to; c++) {
    CLASS[c] = cls;
    if (ascii !== undefined) TO[c] = ascii(c);
  }
}

/**
 * The zero of each run of ten decimal digits (Unicode Nd) in the Basic Multilingual Plane, then
 * above it: Unicode encodes every decimal digit set as ten consecutive code points from 0 to 9.
 * test/masking/fold.test.ts checks these lists against the runtime's `\p{Nd}`.
 */
export const DIGIT_ZEROS_BMP: readonly number[] = [
  0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80,
  0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
];
export const DIGIT_ZEROS_ASTRAL: readonly number[] = [
  0x104a0, 0x10d30, 0x10d40, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x116d0, 0x116da, 0x11730, 0x118e0, 0x11950, 0x11bf0, 0x11c50,
  0x11d50, 0x11da0, 0x11de0, 0x11f50, 0x16130, 0x16a60, 0x16ac0, 0x16b50, 0x16d70, 0x1ccf0, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e4f0, 0x1e5f1,
  0x1e950, 0x1fbf0,
];

// Full-width ASCII forms: digits, letters and `＠` start the folded scan; punctuation is folded quietly.
set(0xff01, 0xff5e, QUIET, (c) => c - 0xfee0);
set(0xff10, 0xff19, ASCII, (c) => c - 0xfee0);
set(0xff20, 0xff3a, ASCII, (c) => c - 0xfee0);
set(0xff41, 0xff5a, ASCII, (c) => c - 0xfee0);
for (const zero of DIGIT_ZEROS_BMP) set(zero, zero + 9, ASCII, (c) => 0x30 + c - zero);
// Superscript and subscript digits.
set(0xb2, 0xb3, ASCII, (c) => 0x30 + c - 0xb0);
set(0xb9, 0xb9, ASCII, () => 0x31);
set(0x2070, 0x2070, ASCII, () => 0x30);
set(0x2074, 0x2079, ASCII, (c) => 0x30 + c - 0x2070);
set(0x2080, 0x2089, ASCII, (c) => 0x30 + c - 0x2080);
// Spaces (Zs) and dashes.
for (const c of [0xa0, 0x1680, 0x202f, 0x205f, 0x3000]) set(c, c, SEP, () => 0x20);
set(0x2000, 0x200a, SEP, () => 0x20);
set(0x2010, 0x2015, SEP, () => 0x2d);
for (const c of [0x2212, 0xfe58, 0xfe63, 0xff0d]) set(c, c, SEP, () => 0x2d);
// Invisible format characters (soft hyphen, zero-width space/joiners, marks, bidi controls, word
// joiner, invisible operators, BOM, Hangul and Khmer fillers, Mongolian selectors), variation
// selectors and the combining-mark blocks.
for (const c of [0xad, 0x34f, 0x61c, 0x115f, 0x1160, 0x17b4, 0x17b5, 0x3164, 0xfeff, 0xffa0]) set(c, c, DROP);
set(0x180b, 0x180f, DROP);
set(0x200b, 0x200f, DROP);
set(0x202a, 0x202e, DROP);
set(0x2060, 0x2064, DROP);
set(0x2066, 0x206f, DROP);
set(0xfe00, 0xfe0f, DROP);
set(0x300, 0x36f, DROP);
set(0x1ab0, 0x1aff, DROP);
set(0x1dc0, 0x1dff, DROP);
set(0x20d0, 0x20ff, DROP);
set(0xfe20, 0xfe2f, DROP);
// Above the BMP: tag characters and their variation selectors (U+E0000–E01EF), mathematical
// alphanumerics (U+1D400–1D7FF), and the planes holding decimal digits.
CLASS[0xdb40] = HIGH;
CLASS[0xd835] = HIGH;
for (const zero of DIGIT_ZEROS_ASTRAL) CLASS[0xd800 + ((zero - 0x10000) >> 10)] = HIGH;

const NOT_FOLDED = -1;
const DROPPED = -2;

/** What the code point `cp` above the BMP folds to: an ASCII code, DROPPED or NOT_FOLDED. */
function astralFold(cp: number): number {
  if (cp >= 0xe0000 && cp <= 0xe01ef) {
    if (cp >= 0xe0020 && cp <= 0xe007e) return cp - 0xe0000;
    return cp <= 0xe007f || cp >= 0xe0100 ? DROPPED : NOT_FOLDED;
  }
  for (const zero of DIGIT_ZEROS_ASTRAL) if (cp >= zero && cp <= zero + 9) return 0x30 + cp - zero;
  if (cp >= 0x1d400 && cp <= 0x1d7ff) {
    const n = String.fromCodePoint(cp).normalize('NFKC');
    const a = n.length === 1 ? n.charCodeAt(0) : 0;
    if ((a >= 0x30 && a <= 0x39) || (a >= 0x41 && a <= 0x5a) || (a >= 0x61 && a <= 0x7a)) return a;
  }
  return NOT_FOLDED;
}

/** Does the character `c` at `i` of `s` start the folded scan? (The scanner asks only when c ≥ 0x80.) */
export function startsFold(s: string, i: number, c: number): boolean {
  switch (CLASS[c]) {
    case ASCII:
      return true;
    case SEP: {
      const p = i > 0 ? s.charCodeAt(i - 1) : 0;
      return p >= 0x30 && p <= 0x39;
    }
    case DROP: {
      const p = i > 0 ? s.charCodeAt(i - 1) : 0;
      return (p > 0x20 && p < 0x7f) || CLASS[p] === DROP;
    }
    case HIGH: {
      const lo = s.charCodeAt(i + 1);
      return lo >= 0xdc00 && lo <= 0xdfff && astralFold(0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00)) !== NOT_FOLDED;
    }
    default:
      return false;
  }
}

/** Non-zero for each UTF-16 unit the scanner must look at (startsFold): the hot loop's one test for `c` ≥ 0x80. */
export const FOLD_CLASS: Readonly<Uint8Array> = CLASS;

export interface Folded {
  /** The folded view. */
  readonly text: string;
  /** For each position of `text` (and its end), the position in the original it came from; undefined when the view has the original's length and offsets. */
  readonly map: Int32Array | undefined;
}

/** Is the code point `cp` one the folded view rewrites? (An HTML character reference to one is decoded: entities.ts.) */
export function isFolded(cp: number): boolean {
  if (cp >= 0x10000) return astralFold(cp) !== NOT_FOLDED;
  const cls = CLASS[cp]!;
  return cls !== 0 && cls !== HIGH;
}

const isWhite = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * The folded view of `text`, or undefined when folding changes nothing. A run of tag characters
 * is read as a word of its own: a space is put between it and visible text on either side, so
 * `Done` followed by an invisible `ghp_…` is scanned as `Done ghp_…`.
 */
export function foldText(text: string): Folded | undefined {
  const n = text.length;
  let out: string[] | undefined;
  let map: number[] | undefined;
  // Copied as is so far: text[0, last). Until map exists, the view's offsets are the text's.
  let last = 0;
  let tags = false;
  const copyTo = (i: number, needsMap: boolean): void => {
    (out ??= []).push(text.slice(last, i));
    if (map !== undefined) for (let k = last; k < i; k++) map.push(k);
    else if (needsMap) map = Array.from({ length: i }, (_, k) => k);
    last = i;
  };
  const space = (i: number): void => {
    copyTo(i, true);
    out!.push(' ');
    map!.push(i);
  };
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const cls = c < 0x80 ? 0 : CLASS[c]!;
    let to = NOT_FOLDED;
    let len = 1;
    if (cls === HIGH) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        to = astralFold(0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00));
        len = 2;
      }
    } else if (cls !== 0) {
      to = cls === DROP ? DROPPED : TO[c]!;
    }
    if (to === NOT_FOLDED) {
      if (tags && !isWhite(c)) space(i);
      tags = false;
      i += len - 1;
      continue;
    }
    if (to !== DROPPED) {
      const tag = c === 0xdb40;
      if (tag ? !tags && i > 0 && !isWhite(text.charCodeAt(i - 1)) : tags && !isWhite(to)) space(i);
      tags = tag;
    }
    // Offsets are the original's until a character is dropped, a surrogate pair becomes one
    // character or a space is put in.
    copyTo(i, to === DROPPED || len === 2);
    if (to !== DROPPED) {
      out!.push(String.fromCharCode(to));
      map?.push(i);
    }
    last = i + len;
    i += len - 1;
  }
  if (out === undefined) return undefined;
  copyTo(n, false);
  map?.push(n);
  return { text: out.join(''), map: map === undefined ? undefined : Int32Array.from(map) };
}

/**
 * Does the UTF-8 sequence at `i` (a lead byte ≥ 0xC2) encode a character the scanner must see
 * (mayFold)? The byte path's pre-check lets such a value through to the scanner, since it may
 * hold no ASCII trigger at all (`٤١١١…`, a value in tag characters).
 */
export function mayFoldBytes(bytes: Uint8Array, i: number, end: number): boolean {
  const b = bytes[i]!;
  let cp: number;
  if (b < 0xe0) {
    if (i + 1 >= end) return false;
    cp = ((b & 0x1f) << 6) | (bytes[i + 1]! & 0x3f);
  } else if (b < 0xf0) {
    if (i + 2 >= end) return false;
    cp = ((b & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f);
  } else {
    if (i + 3 >= end) return false;
    return astralFold(((b & 0x07) << 18) | ((bytes[i + 1]! & 0x3f) << 12) | ((bytes[i + 2]! & 0x3f) << 6) | (bytes[i + 3]! & 0x3f)) !== NOT_FOLDED;
  }
  const cls = CLASS[cp]!;
  return cls !== 0 && cls !== QUIET;
}
