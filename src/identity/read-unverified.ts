/**
 * The only code that looks inside a token before its signature is checked. It reads just enough to
 * choose an issuer and its keys (`alg`, `kid`, `iss`); nothing read here is trusted or returned to
 * a caller. The size cap comes first, so an oversized token costs no base64 or JSON work.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { SluiceError } from '../errors.js';

/** Compact JWS (RFC 7515 §7.1): three base64url segments. JWE's five segments are not accepted. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface UnverifiedToken {
  readonly alg: string;
  readonly issuer: string;
}

export function readUnverified(token: string, maxTokenBytes: number): UnverifiedToken {
  if (typeof token !== 'string' || token.length === 0) {
    throw new SluiceError('SLUICE_TOKEN_MISSING', 'no token was presented');
  }
  // A string's UTF-8 length is at least its UTF-16 length, so the cheap test goes first.
  if (token.length > maxTokenBytes || Buffer.byteLength(token, 'utf8') > maxTokenBytes) {
    throw new SluiceError('SLUICE_TOKEN_TOO_LARGE', `token is larger than ${maxTokenBytes} bytes`);
  }
  if (!COMPACT_JWS.test(token)) {
    throw new SluiceError('SLUICE_TOKEN_INVALID', 'token is not a compact JWS (three base64url segments)');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let payload: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    throw new SluiceError('SLUICE_TOKEN_INVALID', 'token header or claims are not valid base64url JSON');
  }
  if (typeof header.alg !== 'string' || header.alg === '') {
    throw new SluiceError('SLUICE_TOKEN_INVALID', 'token header has no "alg"');
  }
  if (typeof payload.iss !== 'string' || payload.iss === '') {
    throw new SluiceError('SLUICE_TOKEN_INVALID', 'token has no "iss" claim');
  }
  return { alg: header.alg, issuer: payload.iss };
}

/** Render attacker-supplied text (an unknown `iss`, an `alg`) safely for an error message. */
export function quoteUntrusted(text: string, max = 80): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(printable.length > max ? `${printable.slice(0, max)}…` : printable);
}
