/**
 * Text carried as base64 inside a JSON string: a file from the GitHub contents API (wrapped at 60
 * columns), a ConfigMap's `binaryData`, an `.env` embedded in a deployment payload. The detectors
 * cannot see a secret through base64, so a value that is base64 of readable UTF-8 text is decoded,
 * masked as text, and encoded again in the same alphabet and line width; the agent still gets
 * working base64, with the secret replaced inside it. Anything else (images, hashes, ids, random
 * tokens) decodes to bytes that are not readable text and is left to the detectors as it is.
 */
import { isUtf8 } from 'node:buffer';

/** Shorter values cannot hold a secret worth a decode (base64 of `password=hunter2` is 24). */
const MIN_LENGTH = 16;
/** Longer values are masked only as they are (the JSON body limit bounds them anyway). */
const MAX_LENGTH = 1 << 20;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

export interface Base64Text {
  readonly text: string;
  readonly url: boolean;
  readonly padded: boolean;
  /** Characters per line when the value was wrapped (MIME and GitHub: 60 or 76), else 0. */
  readonly width: number;
  readonly crlf: boolean;
}

/** `value` decoded, when it is base64 (or base64url) of readable UTF-8 text. */
export function decodeBase64Text(value: string): Base64Text | undefined {
  if (value.length < MIN_LENGTH || value.length > MAX_LENGTH) return undefined;
  let compact = value;
  let width = 0;
  let crlf = false;
  if (value.includes('\n')) {
    crlf = value.includes('\r\n');
    const lines = value.split(crlf ? '\r\n' : '\n');
    if (lines[lines.length - 1] === '') lines.pop();
    width = (lines[0] as string).length;
    // Every line but the last the same width: wrapped base64, not text with newlines.
    for (let i = 0; i < lines.length - 1; i++) if ((lines[i] as string).length !== width) return undefined;
    compact = lines.join('');
  }
  // Hex (UUIDs, digests, ids) is base64's alphabet too, but base64 of text is never all hex digits.
  if (isHex(compact) || (!BASE64.test(compact) && !BASE64URL.test(compact))) return undefined;
  const padded = compact.endsWith('=');
  if (padded ? compact.length % 4 !== 0 : compact.length % 4 === 1) return undefined;
  // base64url when it uses that alphabet, or drops the padding as base64url usually does.
  const url = compact.includes('-') || compact.includes('_') || (!padded && compact.length % 4 !== 0);
  const bytes = Buffer.from(compact, url ? 'base64url' : 'base64');
  if (bytes.length === 0 || !isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  if (!isReadableText(text)) return undefined;
  return { text, url, padded, width, crlf };
}

/**
 * A cheap first look for result cells: long enough, only base64 (or base64url) characters and line
 * breaks, and not all hex. Stops at the first space, so prose and timestamps cost a few characters.
 */
export function mayBeBase64Text(value: string): boolean {
  if (value.length < MIN_LENGTH || value.length > MAX_LENGTH) return false;
  let hex = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const lower = c | 0x20;
    if (lower >= 0x61 && lower <= 0x7a) {
      if (lower > 0x66) hex = false;
    } else if (c >= 0x30 && c <= 0x39) {
      // a digit: hex
    } else if (c === 0x2b || c === 0x2f || c === 0x3d || c === 0x5f || c === 0x0a || c === 0x0d) {
      hex = false;
    } else if (c !== 0x2d) return false;
  }
  return !hex;
}

/** Only hex digits and dashes: a UUID, a digest, an id. */
function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || c === 0x2d)) return false;
  }
  return true;
}

/** `text` encoded as `like` was: the same alphabet, padding and line width. */
export function encodeBase64Like(text: string, like: Base64Text, original: string): string {
  let out = Buffer.from(text, 'utf8').toString(like.url ? 'base64url' : 'base64');
  if (like.url && like.padded) out += '='.repeat((4 - (out.length % 4)) % 4);
  if (like.width > 0) {
    const nl = like.crlf ? '\r\n' : '\n';
    const lines: string[] = [];
    for (let i = 0; i < out.length; i += like.width) lines.push(out.slice(i, i + like.width));
    out = lines.join(nl) + (/\r?\n$/.test(original) ? nl : '');
  }
  return out;
}

/** Printable text: no control characters but tab, newline and carriage return, and no U+FFFD. */
export function isReadableText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f || c === 0xfffd) return false;
  }
  return true;
}
