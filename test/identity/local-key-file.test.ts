import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOrCreateLocalKey, localKeyPath } from '../../src/identity/local-key-file.js';

function scratch(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-key-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function rejectsConfig(promise: Promise<unknown>, message: RegExp): Promise<void> {
  return assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'SLUICE_CONFIG_INVALID');
    assert.match((err as Error).message, message);
    return true;
  });
}

test('the key is created on first use: directory 0700, file 0600, an Ed25519 private JWK', async () => {
  const { dir, cleanup } = scratch();
  try {
    const dataDir = join(dir, 'nested', 'data');
    const key = await loadOrCreateLocalKey(dataDir);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(localKeyPath(dataDir)).mode & 0o777, 0o600);
    const jwk = JSON.parse(readFileSync(localKeyPath(dataDir), 'utf8')) as Record<string, unknown>;
    assert.equal(jwk.kty, 'OKP');
    assert.equal(jwk.crv, 'Ed25519');
    assert.equal(typeof jwk.d, 'string');
    assert.equal(key.privateKey.asymmetricKeyType, 'ed25519');
    assert.equal(key.publicKey.type, 'public');
    assert.match(key.kid, /^[A-Za-z0-9_-]{43}$/, 'kid is an RFC 7638 SHA-256 thumbprint');
  } finally {
    cleanup();
  }
});

test('an existing key is reused, never replaced', async () => {
  const { dir, cleanup } = scratch();
  try {
    const first = await loadOrCreateLocalKey(dir);
    const before = readFileSync(localKeyPath(dir), 'utf8');
    const keys = await Promise.all([loadOrCreateLocalKey(dir), loadOrCreateLocalKey(dir)]);
    for (const k of keys) assert.equal(k.kid, first.kid);
    assert.equal(readFileSync(localKeyPath(dir), 'utf8'), before);
  } finally {
    cleanup();
  }
});

test('a key file readable by group or others is refused with a clear error', async () => {
  const { dir, cleanup } = scratch();
  try {
    await loadOrCreateLocalKey(dir);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(localKeyPath(dir), mode);
      await rejectsConfig(loadOrCreateLocalKey(dir), new RegExp(`accessible by group or others \\(mode 0${mode.toString(8)}\\); run: chmod 600`));
    }
    chmodSync(localKeyPath(dir), 0o600);
    await loadOrCreateLocalKey(dir);
  } finally {
    cleanup();
  }
});

test('a symlinked key file is refused', async () => {
  const { dir, cleanup } = scratch();
  try {
    const other = join(dir, 'elsewhere');
    await loadOrCreateLocalKey(other);
    mkdirSync(join(dir, 'data'), { mode: 0o700 });
    symlinkSync(localKeyPath(other), localKeyPath(join(dir, 'data')));
    await rejectsConfig(loadOrCreateLocalKey(join(dir, 'data')), /symbolic link/);
  } finally {
    cleanup();
  }
});

test('a key file that is not an Ed25519 private JWK is refused', async () => {
  const { dir, cleanup } = scratch();
  try {
    const path = localKeyPath(dir);
    writeFileSync(path, 'not json', { mode: 0o600 });
    await rejectsConfig(loadOrCreateLocalKey(dir), /is not JSON/);
    writeFileSync(path, JSON.stringify({ kty: 'RSA', n: 'x', e: 'AQAB' }), { mode: 0o600 });
    await rejectsConfig(loadOrCreateLocalKey(dir), /not an Ed25519 private JWK/);
    writeFileSync(path, JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }), { mode: 0o600 });
    await rejectsConfig(loadOrCreateLocalKey(dir), /not an Ed25519 private JWK/);
  } finally {
    cleanup();
  }
});
