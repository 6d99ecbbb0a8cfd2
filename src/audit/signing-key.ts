/**
 * The checkpoint signing key lives in its own file, apart from the store, so someone who can
 * rewrite the database still cannot sign a checkpoint over the rewritten history (AU-9, AU-10).
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { SluiceError } from '../errors.js';
import { encodeSignerKey, encodeVerifierKey, generateSigner, parseSignerKey, parseVerifierKey, type NoteSigner, type NoteVerifier } from './signed-note.js';

export function verifierPath(keyPath: string): string {
  return `${keyPath}.pub`;
}

/** Latest checkpoint note, kept beside the key: a witness against truncating store and checkpoints together. */
export function witnessPath(keyPath: string): string {
  return `${keyPath}.checkpoint`;
}

export function loadSigningKey(path: string): NoteSigner {
  let text: string;
  try {
    const st = statSync(path);
    // Like ssh: a signing key others can read is not a secret any more.
    if ((st.mode & 0o077) !== 0) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `audit signing key ${path} is accessible by group or others (chmod 600 it)`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `cannot read audit signing key ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return parseSignerKey(text);
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `audit signing key ${path}: ${(err as Error).message}`);
  }
}

/** Create a new key file (0600, never overwriting) and its public verifier key beside it. */
export function createSigningKey(path: string, name: string): NoteSigner {
  const signer = generateSigner(name);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, encodeSignerKey(signer) + '\n');
    } finally {
      closeSync(fd);
    }
    chmodSync(path, 0o600);
    const pub = openSync(verifierPath(path), 'w', 0o644);
    try {
      writeSync(pub, encodeVerifierKey(signer) + '\n');
    } finally {
      closeSync(pub);
    }
  } catch (err) {
    throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `cannot create audit signing key ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return signer;
}

/**
 * The verifiers for `verify`: the explicit verifier key(s), else the `.pub` keyring beside the key
 * file (one verifier per line: the current key and every key rotated out, so checkpoints signed
 * before a rotation still verify), else derived from the private key.
 */
export function loadVerifiers(keyPath: string, explicit?: string): NoteVerifier[] {
  const lines = (text: string): NoteVerifier[] =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map(parseVerifierKey);
  try {
    if (explicit !== undefined) return lines(explicit);
    if (existsSync(verifierPath(keyPath))) return lines(readFileSync(verifierPath(keyPath), 'utf8'));
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `audit verifier key: ${(err as Error).message}`);
  }
  const s = loadSigningKey(keyPath);
  return [{ name: s.name, keyId: s.keyId, publicKey: s.publicKey }];
}

/**
 * Replace the signing key with `next` (0600, atomically) and add its verifier to the keyring,
 * keeping the verifiers of earlier keys. The old private key is overwritten.
 */
export function installSigningKey(path: string, next: NoteSigner): void {
  try {
    const tmp = `${path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, encodeSignerKey(next) + '\n');
    } finally {
      closeSync(fd);
    }
    const pub = verifierPath(path);
    const ring = existsSync(pub) ? readFileSync(pub, 'utf8').replace(/\n*$/, '\n') : '';
    writeFileSync(`${pub}.tmp`, ring + encodeVerifierKey(next) + '\n', { mode: 0o644 });
    renameSync(`${pub}.tmp`, pub);
    renameSync(tmp, path);
  } catch (err) {
    throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `cannot install the new audit signing key at ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
