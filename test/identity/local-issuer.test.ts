import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { createAuthenticator, DEFAULT_LOCAL_TTL_MS, LOCAL_ISSUER, mintLocalToken } from '../../src/identity/index.js';
import { loadOrCreateLocalKey } from '../../src/identity/local-key-file.js';
import { parseConfig } from '../../src/config/index.js';
import { rejectsWithCode } from './helpers/assert-error.js';
import { tempConfig } from './helpers/config.js';

const LOCAL = `  issuers:
    - local: true
      maxTokenLifetime: 1h
  roles:
    - name: ops
    - name: analyst
    - name: ci
      when: claims.repository == "acme/app"
`;
const WITH_GH = `  issuers:
    - issuer: https://token.actions.githubusercontent.com
      audience: sluice
${LOCAL.slice('  issuers:\n'.length)}    - name: gh-only
      issuer: https://token.actions.githubusercontent.com
      when: "true"
`;

test('mint → verify round trip: the identity carries exactly the minted roles', async () => {
  const cfg = tempConfig(WITH_GH);
  try {
    const now = Date.UTC(2030, 0, 1);
    const token = await mintLocalToken(cfg.config, { role: ['ops', 'ci'], subject: 'alice@example.com', model: 'claude-opus', sponsor: 'bob' }, { clock: () => now });
    const header = decodeProtectedHeader(token);
    const claims = decodeJwt(token);
    assert.equal(header.alg, 'EdDSA');
    assert.equal(typeof header.kid, 'string');
    assert.equal(claims.iss, LOCAL_ISSUER);
    assert.equal(claims.aud, 'sluice');
    assert.equal(claims.iat, now / 1000);
    assert.equal(claims.exp, now / 1000 + DEFAULT_LOCAL_TTL_MS / 1000);
    assert.equal(typeof claims.jti, 'string');

    const auth = await createAuthenticator(cfg.config, { clock: () => now + 60_000 });
    const identity = await auth.verify(token);
    assert.equal(identity.issuer, LOCAL_ISSUER);
    assert.equal(identity.subject, 'alice@example.com');
    assert.deepEqual(identity.roles, ['ops', 'ci']);
    assert.equal(identity.model, 'claude-opus');
    assert.equal(identity.sponsor, 'bob');
    assert.equal(identity.tokenId, claims.jti);
    assert.equal(identity.expiresAt, claims.exp);
  } finally {
    cfg.cleanup();
  }
});

test('the default subject is the OS user name @local', async () => {
  const cfg = tempConfig(LOCAL);
  try {
    const claims = decodeJwt(await mintLocalToken(cfg.config, { role: 'ops' }));
    assert.match(String(claims.sub), /^.+@local$/);
  } finally {
    cfg.cleanup();
  }
});

test('the TTL is capped by the local issuer maxTokenLifetime at mint time', async () => {
  const cfg = tempConfig(LOCAL);
  try {
    await rejectsWithCode(mintLocalToken(cfg.config, { role: 'ops', ttlMs: 2 * 3_600_000 }), 'SLUICE_TOKEN_TOO_LONG_LIVED', /7200 s exceeds .* 3600 s/);
    await rejectsWithCode(mintLocalToken(cfg.config, { role: 'ops', ttlMs: 500 }), 'SLUICE_BAD_REQUEST', /at least 1 second/);
    const token = await mintLocalToken(cfg.config, { role: 'ops', ttlMs: 3_600_000 });
    const claims = decodeJwt(token);
    assert.equal((claims.exp as number) - (claims.iat as number), 3600);
    assert.deepEqual((await (await createAuthenticator(cfg.config)).verify(token)).roles, ['ops']);
  } finally {
    cfg.cleanup();
  }
});

test('an unknown role, or one restricted to another issuer, is refused at mint time, naming the defined roles', async () => {
  const cfg = tempConfig(WITH_GH);
  try {
    await rejectsWithCode(mintLocalToken(cfg.config, { role: ['ops', 'admin'] }), 'SLUICE_BAD_REQUEST', /role "admin" is not defined .*defined roles: ops, analyst, ci$/);
    await rejectsWithCode(mintLocalToken(cfg.config, { role: 'gh-only' }), 'SLUICE_BAD_REQUEST', /"gh-only"/);
    await rejectsWithCode(mintLocalToken(cfg.config, { role: [] }), 'SLUICE_BAD_REQUEST', /at least one role/);
  } finally {
    cfg.cleanup();
  }
});

test('subject, model and sponsor must be printable text', async () => {
  const cfg = tempConfig(LOCAL);
  try {
    await rejectsWithCode(mintLocalToken(cfg.config, { role: 'ops', subject: 'a\nb' }), 'SLUICE_BAD_REQUEST', /subject/);
    await rejectsWithCode(mintLocalToken(cfg.config, { role: 'ops', model: '' }), 'SLUICE_BAD_REQUEST', /model/);
  } finally {
    cfg.cleanup();
  }
});

test('without a local issuer, minting fails clearly and local tokens are rejected as from an unknown issuer', async () => {
  const withLocal = tempConfig(LOCAL);
  try {
    const token = await mintLocalToken(withLocal.config, { role: 'ops' });
    // Same data dir (same key), but the local issuer is no longer configured.
    const noLocal = parseConfig(
      `dataDir: ${JSON.stringify(withLocal.config.dataDir)}\nidentity:\n  issuers:\n    - issuer: https://token.actions.githubusercontent.com\n      audience: sluice\n  roles:\n    - name: ops\n`,
      withLocal.path,
    );
    await rejectsWithCode(mintLocalToken(noLocal, { role: 'ops' }), 'SLUICE_ISSUER_UNKNOWN', /no local issuer is configured/);
    await rejectsWithCode((await createAuthenticator(noLocal)).verify(token), 'SLUICE_ISSUER_UNKNOWN');
  } finally {
    withLocal.cleanup();
  }
});

test('local tokens go through the same checks: expiry, audience, lifetime, signature, alg', async () => {
  const cfg = tempConfig(LOCAL);
  const other = tempConfig(LOCAL.replace('- local: true', '- local: true\n      audience: other-gateway'));
  try {
    const now = Date.now();
    const token = await mintLocalToken(cfg.config, { role: 'ops', ttlMs: 60_000 }, { clock: () => now });
    await rejectsWithCode((await createAuthenticator(cfg.config, { clock: () => now + 120_000 })).verify(token), 'SLUICE_TOKEN_EXPIRED');

    // Another gateway's local issuer: different key and audience.
    await rejectsWithCode((await createAuthenticator(other.config)).verify(token), 'SLUICE_TOKEN_INVALID', /signature|audience/);

    const key = await loadOrCreateLocalKey(cfg.config.dataDir);
    const base = { sub: 'mallory@local', sluice_roles: ['ops'] };
    const sign = (claims: Record<string, unknown>, ttlS: number) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: key.kid }).setIssuer(LOCAL_ISSUER).setAudience('sluice').setIssuedAt().setExpirationTime(`${ttlS}s`).sign(key.privateKey);
    const auth = await createAuthenticator(cfg.config);
    // Signed with the real key but longer than the 1 h cap.
    await rejectsWithCode(auth.verify(await sign(base, 2 * 3600)), 'SLUICE_TOKEN_TOO_LONG_LIVED');
    // sluice_roles must be an array of strings.
    await rejectsWithCode(auth.verify(await sign({ ...base, sluice_roles: 'ops' }, 60)), 'SLUICE_TOKEN_INVALID', /sluice_roles/);
    await rejectsWithCode(auth.verify(await sign({ sub: 'x' }, 60)), 'SLUICE_TOKEN_INVALID', /sluice_roles/);
    // Roles that no longer exist in config are dropped; the rest stay.
    assert.deepEqual((await auth.verify(await sign({ ...base, sluice_roles: ['ops', 'deleted-role'] }, 60))).roles, ['ops']);

    // Any algorithm other than EdDSA is refused for the local issuer.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es256 = await new SignJWT(base).setProtectedHeader({ alg: 'ES256' }).setIssuer(LOCAL_ISSUER).setAudience('sluice').setIssuedAt().setExpirationTime('60s').sign(privateKey);
    await rejectsWithCode(auth.verify(es256), 'SLUICE_TOKEN_INVALID', /algorithm "ES256" is not allowed/);
  } finally {
    cfg.cleanup();
    other.cleanup();
  }
});
