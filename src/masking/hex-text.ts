/**
 * Text carried as hex: `encode(convert_to(notes, 'UTF8'), 'hex')`, a `bytea` printed into a text
 * column (`\x…`), a hex-dumped payload in a JSON field. As with base64 (base64-text.ts), the
 * detectors cannot see a secret through the encoding, so a value that is hex of readable UTF-8
 * text is decoded, masked as text and encoded again the same way (prefix and letter case). Hex
 * that decodes to other bytes — digests, ids, keys, ciphertext — is left to the detectors as it is.
 */
import { isUtf8 } from 'node:buffer';
import { isReadableText } from './base64-text.js';

/** Eight bytes at least: shorter hex is an id, not text worth a decode (`password=x` is 20). */
const MIN_LENGTH = 16;
/** Longer values are masked only as they are (the row and body limits bound them anyway). */
const MAX_LENGTH = 1 << 20;

export interface HexText {
  readonly text: string;
  /** PostgreSQL's `\x` prefix. */
  readonly prefix: boolean;
  readonly upper: boolean;
}

/**
 * A cheap first look for result cells: `\x` or not, then an even number (16 or more) of hex
 * digits in one letter case, and nothing else. Stops at the first other character.
 */
export function mayBeHexText(value: string): boolean {
  const start = value.charCodeAt(0) === 0x5c && value.charCodeAt(1) === 0x78 ? 2 : 0;
  const n = value.length - start;
  if (n < MIN_LENGTH || n > MAX_LENGTH || n % 2 !== 0) return false;
  let lower = false;
  let upper = false;
  for (let i = start; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) continue;
    if (c >= 0x61 && c <= 0x66) lower = true;
    else if (c >= 0x41 && c <= 0x46) upper = true;
    else return false;
  }
  return !(lower && upper);
}

/** `value` decoded, when it is hex of readable UTF-8 text. */
export function decodeHexText(value: string): HexText | undefined {
  if (!mayBeHexText(value)) return undefined;
  const prefix = value.startsWith('\\x');
  const digits = prefix ? value.slice(2) : value;
  const bytes = Buffer.from(digits, 'hex');
  if (!isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  if (!isReadableText(text)) return undefined;
  return { text, prefix, upper: /[A-F]/.test(digits) };
}

/** `text` encoded as `like` was. */
export function encodeHexLike(text: string, like: HexText): string {
  const hex = Buffer.from(text, 'utf8').toString('hex');
  return (like.prefix ? '\\x' : '') + (like.upper ? hex.toUpperCase() : hex);
}
