/**
 * Replacement styles. Each output is built so that masking it again finds nothing new: redacted
 * markers and `hash:` values are placeholders to the scanner, and masked digits become `*`.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { StyleName } from './detectors.js';

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

export type Normalise = 'digits' | 'alnum-upper' | 'lower' | 'none';

/** What a style needs to know about the detector (or column) a value came from. */
export interface StyleTarget {
  /** `[REDACTED:<label>]`; columns use `[REDACTED]`. */
  readonly redacted: string;
  readonly partial: 'card' | 'ssn' | 'email' | 'iban' | 'last4';
  readonly normalise: Normalise;
}

export type Hasher = (value: string) => string;

/** Deterministic keyed hash (HMAC-SHA256, 64 bits shown) so joins across masked results line up. */
export function createHasher(key: string): Hasher {
  const k: KeyObject = createSecretKey(Buffer.from(key, 'utf8'));
  return (value) => `hash:${createHmac('sha256', k).update(value, 'utf8').digest('hex').slice(0, 16)}`;
}

function normalise(kind: Normalise, v: string): string {
  switch (kind) {
    case 'digits':
      return v.replace(/[^0-9]/g, '');
    case 'alnum-upper':
      return v.replace(/[^0-9A-Za-z]/g, '').toUpperCase();
    case 'lower':
      return v.toLowerCase();
    case 'none':
      return v;
    default: {
      const never: never = kind;
      return never;
    }
  }
}

/** Same length; letters and digits become `*`, separators stay. */
export function maskSameLength(v: string): string {
  return maskRange(v, 0, v.length);
}

const STARS = '*'.repeat(64);

function stars(n: number): string {
  return n <= STARS.length ? STARS.slice(0, n) : '*'.repeat(n);
}

/** `s[a, b)` with letters and digits as `*` — by runs, since a regex replace cost ~300 ns per value. */
function maskRange(s: string, a: number, b: number): string {
  let out = '';
  let i = a;
  while (i < b) {
    let j = i;
    while (j < b && isAlnum(s.charCodeAt(j))) j++;
    if (j > i) out += stars(j - i);
    i = j;
    while (j < b && !isAlnum(s.charCodeAt(j))) j++;
    if (j > i) out += s.slice(i, j);
    i = j;
  }
  return out;
}

/**
 * `s[start, end)` keeping the first `head` and last `tail` letters/digits; fewer than `min` in
 * all → everything masked. Works on the range so the value is never sliced out on its own.
 */
export function keepEnds(s: string, head: number, tail: number, min = head + tail + 4, start = 0, end = s.length): string {
  let total = 0;
  for (let i = start; i < end; i++) if (isAlnum(s.charCodeAt(i))) total++;
  if (total < min) return maskRange(s, start, end);
  let a = start;
  let b = end;
  for (let seen = 0; a < end && seen < head; a++) if (isAlnum(s.charCodeAt(a))) seen++;
  for (let seen = 0; b > start && seen < tail; b--) if (isAlnum(s.charCodeAt(b - 1))) seen++;
  return s.slice(start, a) + maskRange(s, a, b) + s.slice(b, end);
}

function partial(target: StyleTarget, s: string, start: number, end: number): string {
  switch (target.partial) {
    case 'card':
      return keepEnds(s, 4, 4, 12, start, end); // PCI DSS 3.4 allows first six and last four; we show fewer
    case 'ssn':
      return keepEnds(s, 0, 4, 9, start, end);
    case 'iban':
      return keepEnds(s, 2, 4, 12, start, end);
    case 'email': {
      const at = s.lastIndexOf('@', end - 1);
      return at <= start ? maskRange(s, start, end) : `${s[start]}***${s.slice(at, end)}`;
    }
    case 'last4':
      return keepEnds(s, 0, 4, 8, start, end);
    default: {
      const never: never = target.partial;
      return never;
    }
  }
}

/** Replace `s[start, end)` (the whole of `s` by default) in `style`. */
export function applyStyle(style: StyleName, target: StyleTarget, s: string, hasher: Hasher | undefined, start = 0, end = s.length): string {
  switch (style) {
    case 'redact':
      return target.redacted;
    case 'partial':
      return partial(target, s, start, end);
    case 'last4':
      return keepEnds(s, 0, 4, 8, start, end);
    case 'mask':
      return maskRange(s, start, end);
    case 'hash':
      // createMasker refuses a hash style without a key, so this is unreachable; redact if it ever is.
      return hasher === undefined ? target.redacted : hasher(normalise(target.normalise, s.slice(start, end)));
    default: {
      const never: never = style;
      return never;
    }
  }
}
