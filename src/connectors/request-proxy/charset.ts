/**
 * Response text in an encoding the masker cannot read as bytes. The masker scans UTF-8, and reads
 * any other ASCII-compatible encoding (Latin-1, Windows-1252, Shift_JIS, …) one byte per
 * character, where an ASCII secret is still ASCII. In UTF-16 (a PowerShell or Windows export, a
 * server honouring `Accept-Charset: utf-16`) every secret has a NUL between its characters and
 * no detector would see it; ISO-2022-JP switches ASCII bytes to other meanings. Those are
 * transcoded to UTF-8 before masking, and the response says `charset=utf-8`. Encodings with no
 * decoder here (UTF-32, UTF-7, EBCDIC) are refused rather than passed through unmasked.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { TextDecoder } from 'node:util';
import { SluiceError } from '../../errors.js';

/** What to do with a text body: read its bytes as they are, or decode it from `encoding` first. */
export type TextEncodingPlan = { readonly transcode: false } | { readonly transcode: true; readonly encoding: 'utf-16le' | 'utf-16be' | 'iso-2022-jp' };

const AS_IS: TextEncodingPlan = { transcode: false };
/** WHATWG encodings whose bytes do not keep ASCII as ASCII. */
const ASCII_INCOMPATIBLE = new Set(['utf-16le', 'utf-16be', 'iso-2022-jp']);

/** The `charset` parameter of a Content-Type, lower-cased and unquoted ('' when absent). */
export function charsetOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const m = /;\s*charset\s*=\s*("?)([^";,\s]*)\1/i.exec(contentType);
  return (m?.[2] ?? '').toLowerCase();
}

function refuse(what: string): never {
  throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream sent text in ${what}, which Sluice cannot decode to mask`);
}

/**
 * The plan for a text body from its declared charset and its first bytes (a byte-order mark, or
 * the NUL pattern of UTF-16 or UTF-32 text without one). Throws a SluiceError for an encoding
 * Sluice cannot decode.
 */
export function textEncodingPlan(contentType: string | undefined, head: Uint8Array): TextEncodingPlan {
  const declared = charsetOf(contentType);
  const sniffed = sniffUnicode(head);
  if (sniffed === 'utf-32') refuse('UTF-32');
  if (declared === '') return sniffed === undefined ? AS_IS : { transcode: true, encoding: sniffed };
  let encoding: string;
  try {
    encoding = new TextDecoder(declared).encoding;
  } catch {
    refuse(`charset "${declared.slice(0, 40)}"`);
  }
  // A byte-order mark decides the byte order of a plain "utf-16", as it does for browsers.
  if (encoding === 'utf-16le' && !declared.endsWith('le') && head[0] === 0xfe && head[1] === 0xff) encoding = 'utf-16be';
  if (ASCII_INCOMPATIBLE.has(encoding)) return { transcode: true, encoding: encoding as 'utf-16le' | 'utf-16be' | 'iso-2022-jp' };
  // Declared ASCII-compatible, yet the bytes are UTF-16: trust the bytes, as a client sniffing the BOM would.
  if (sniffed !== undefined) return { transcode: true, encoding: sniffed };
  return AS_IS;
}

/**
 * UTF-16 or UTF-32 from a byte-order mark, or from where the NULs fall in the first bytes (ASCII
 * text in UTF-16 has a NUL in every other byte; RFC 4627 §3 detects JSON's encoding this way).
 */
export function sniffUnicode(head: Uint8Array): 'utf-16le' | 'utf-16be' | 'utf-32' | undefined {
  if (head.length >= 4 && ((head[0] === 0 && head[1] === 0 && head[2] === 0xfe && head[3] === 0xff) || (head[0] === 0xff && head[1] === 0xfe && head[2] === 0 && head[3] === 0))) return 'utf-32';
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  const n = Math.min(head.length, 512) & ~3;
  if (n < 4) return undefined;
  // UTF-32: three NULs in most 4-byte units (ASCII and the BMP below U+0100).
  let units32 = 0;
  for (let i = 0; i < n; i += 4) {
    if ((head[i + 1] === 0 && head[i + 2] === 0 && (head[i] === 0 || head[i + 3] === 0)) || (head[i] === 0 && head[i + 1] === 0 && head[i + 2] === 0)) units32++;
  }
  if (units32 > (n / 4) * 0.7) return 'utf-32';
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) even++;
    if (head[i + 1] === 0) odd++;
  }
  const pairs = n / 2;
  if (odd > pairs * 0.3 && even < pairs * 0.05) return 'utf-16le';
  if (even > pairs * 0.3 && odd < pairs * 0.05) return 'utf-16be';
  return undefined;
}

/** `bytes` decoded from `encoding` (which must be fully valid) and encoded as UTF-8. */
export function toUtf8(bytes: Uint8Array, encoding: string): Buffer {
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true }).decode(bytes);
  } catch {
    refuse(`${encoding} that is not valid ${encoding}`);
  }
  return Buffer.from(text, 'utf8');
}

/**
 * A stream that decides its plan on its first chunk (`textEncodingPlan` with the declared
 * content type) and then passes bytes through, or transcodes them to UTF-8 as they arrive.
 */
export function utf8Stream(contentType: string | undefined): Transform {
  let decoder: TextDecoder | null | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        if (decoder === undefined) {
          const plan = textEncodingPlan(contentType, chunk);
          decoder = plan.transcode ? new TextDecoder(plan.encoding, { fatal: true }) : null;
        }
        cb(null, decoder === null ? chunk : Buffer.from(decoder.decode(chunk, { stream: true }), 'utf8'));
      } catch (err) {
        cb(err instanceof SluiceError ? err : new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'upstream sent text that is not valid in its encoding, which Sluice cannot mask'));
      }
    },
    flush(cb: TransformCallback) {
      try {
        const rest = decoder ? decoder.decode() : '';
        cb(null, rest === '' ? undefined : Buffer.from(rest, 'utf8'));
      } catch {
        cb(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'upstream text ended inside a character, which Sluice cannot mask'));
      }
    },
  });
}

/** `contentType` with its charset set to utf-8 (added when it had none). */
export function withUtf8Charset(contentType: string | undefined): string {
  if (contentType === undefined || contentType.trim() === '') return 'text/plain; charset=utf-8';
  if (/;\s*charset\s*=/i.test(contentType)) return contentType.replace(/(;\s*charset\s*=\s*)("?)[^";,\s]*\2/i, '$1utf-8');
  return `${contentType}; charset=utf-8`;
}
