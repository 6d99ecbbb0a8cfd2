/**
 * The local issuer's Ed25519 signing key, kept as a private JWK in `<dataDir>/local-issuer.jwk`.
 * Whoever can read this file can mint any role, so it is created 0600 inside a 0700 directory,
 * created atomically (no reader ever sees a half-written key, two racing processes agree on one
 * key), and a copy that group or others can read is refused rather than used.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { SluiceError } from '../errors.js';

export const LOCAL_KEY_FILE = 'local-issuer.jwk';

/** A private OKP JWK is ~150 bytes; anything much larger is not our file. */
const MAX_KEY_FILE_BYTES = 16 * 1024;

export interface LocalKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** RFC 7638 thumbprint of the public key, used as `kid`. */
  readonly kid: string;
  readonly path: string;
}

export function localKeyPath(dataDir: string): string {
  return join(dataDir, LOCAL_KEY_FILE);
}

/** Load the local issuer key, creating it on first use. */
export async function loadOrCreateLocalKey(dataDir: string): Promise<LocalKey> {
  const path = localKeyPath(dataDir);
  if (!exists(path)) createKeyFile(dataDir, path);
  return readKeyFile(path);
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw keyError(path, `cannot stat (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function createKeyFile(dataDir: string, path: string): void {
  try {
    // mode applies only to directories this call creates; an existing data dir is left as the operator set it.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw keyError(dataDir, `cannot create the data directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  try {
    // 'wx' + 0o600: the key is never on disk with wider permissions, not even for a moment.
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(jwk) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // link() fails with EEXIST instead of replacing: if another process won the race, its key stands.
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    throw keyError(path, `cannot create the key file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

async function readKeyFile(path: string): Promise<LocalKey> {
  let text: string;
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink could point the gateway at a key someone else controls.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw keyError(path, code === 'ELOOP' ? 'is a symbolic link' : `cannot be opened (${code ?? 'error'})`);
  }
  try {
    // fstat on the open descriptor: the file checked is the file read.
    const st = fstatSync(fd);
    if (!st.isFile()) throw keyError(path, 'is not a regular file');
    if ((st.mode & 0o077) !== 0) {
      throw keyError(path, `is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${path}`);
    }
    if (st.size > MAX_KEY_FILE_BYTES) throw keyError(path, 'is too large to be a key file');
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw keyError(path, 'is not JSON');
  }
  if (!isEd25519PrivateJwk(jwk)) throw keyError(path, 'is not an Ed25519 private JWK');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch {
    throw keyError(path, 'holds an unusable Ed25519 key');
  }
  const publicKey = createPublicKey(privateKey);
  const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x } satisfies JWK);
  return { privateKey, publicKey, kid, path };
}

function isEd25519PrivateJwk(value: unknown): value is { kty: 'OKP'; crv: 'Ed25519'; x: string; d: string } {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.kty === 'OKP' && v.crv === 'Ed25519' && typeof v.x === 'string' && typeof v.d === 'string';
}

function keyError(path: string, why: string): SluiceError {
  return new SluiceError('SLUICE_CONFIG_INVALID', `local issuer key ${path} ${why}`);
}
