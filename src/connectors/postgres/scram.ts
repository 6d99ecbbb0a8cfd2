/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677) as PostgreSQL uses it, for authenticating Sluice to the
 * upstream. Hand-written: it is forty lines over node:crypto and sits on the credential path, where
 * we want every byte accounted for. Channel binding (-PLUS) is not offered ("n,,").
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { SluiceError } from '../../errors.js';

export interface ScramState {
  readonly clientNonce: string;
  readonly clientFirstBare: string;
}

export function scramClientFirst(): { state: ScramState; message: string } {
  const clientNonce = randomBytes(18).toString('base64');
  const clientFirstBare = `n=,r=${clientNonce}`;
  return { state: { clientNonce, clientFirstBare }, message: `n,,${clientFirstBare}` };
}

/** PBKDF2 at 4096 iterations costs milliseconds; cache per (password, salt, iterations) for reconnects. */
const saltedCache = new Map<string, Buffer>();
const MAX_ITERATIONS = 1_000_000;

function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  const key = createHash('sha256').update(password).update('\0').update(salt).update(String(iterations)).digest('base64');
  let v = saltedCache.get(key);
  if (v === undefined) {
    v = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
    if (saltedCache.size > 64) saltedCache.clear();
    saltedCache.set(key, v);
  }
  return v;
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part.slice(0, 1), part.slice(2));
  }
  return out;
}

export function scramClientFinal(state: ScramState, serverFirst: string, password: string): { message: string; expectedServerSignature: Buffer } {
  const attrs = parseAttributes(serverFirst);
  const nonce = attrs.get('r');
  const saltB64 = attrs.get('s');
  const iterations = Number(attrs.get('i'));
  if (nonce === undefined || saltB64 === undefined || !Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', 'upstream sent a malformed SCRAM server-first message');
  }
  if (!nonce.startsWith(state.clientNonce) || nonce.length <= state.clientNonce.length) {
    throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', 'upstream SCRAM nonce does not extend the client nonce');
  }
  const salted = saltedPassword(password, Buffer.from(saltB64, 'base64'), iterations);
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${state.clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
  const serverKey = hmac(salted, 'Server Key');
  return { message: `${withoutProof},p=${proof.toString('base64')}`, expectedServerSignature: hmac(serverKey, authMessage) };
}

export function scramVerifyServerFinal(serverFinal: string, expected: Buffer): void {
  const attrs = parseAttributes(serverFinal);
  if (attrs.has('e')) throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', 'upstream rejected SCRAM authentication');
  const v = attrs.get('v');
  const got = v === undefined ? Buffer.alloc(0) : Buffer.from(v, 'base64');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    // The server could not prove it knows the password: it may be an impostor.
    throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', 'upstream SCRAM server signature does not verify');
  }
}

export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
}
