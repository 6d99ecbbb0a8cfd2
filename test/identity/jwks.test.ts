import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { exportJWK, jwtVerify, SignJWT } from 'jose';
import { createRemoteKeyResolver, MAX_JWKS_BYTES } from '../../src/identity/jwks.js';
import { rejectsWithCode } from './helpers/assert-error.js';
import { json, startStubServer } from './helpers/stub-server.js';

const options = { fetchTimeoutMs: 2000, cooldownMs: 30_000, cacheMaxAgeMs: 600_000, retryAfterFailureMs: 60_000 };

async function signedToken(kid: string): Promise<{ token: string; jwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setExpirationTime('5m').sign(privateKey);
  return { token, jwk };
}

test('a configured jwksUri is used directly, without discovery', async () => {
  const { token, jwk } = await signedToken('k1');
  const server = await startStubServer({ '/certs': json({ keys: [jwk] }) });
  try {
    const resolver = createRemoteKeyResolver('https://issuer.example', `${server.origin}/certs`, options);
    await jwtVerify(token, resolver);
    assert.equal(server.hits.get('/certs'), 1);
    assert.equal(server.hits.get('/.well-known/openid-configuration'), undefined);
  } finally {
    await server.close();
  }
});

test('an oversized JWKS is refused with SLUICE_ISSUER_UNREACHABLE', async () => {
  const { token, jwk } = await signedToken('k1');
  const padding = Array.from({ length: 2000 }, (_, i) => ({ ...jwk, kid: `pad-${i}-${'x'.repeat(100)}` }));
  const server = await startStubServer({ '/certs': json({ keys: [jwk, ...padding] }) });
  try {
    const resolver = createRemoteKeyResolver('https://issuer.example', `${server.origin}/certs`, options);
    await rejectsWithCode(jwtVerify(token, resolver), 'SLUICE_ISSUER_UNREACHABLE', new RegExp(`larger than ${MAX_JWKS_BYTES} bytes`));
  } finally {
    await server.close();
  }
});

test('a JWKS without a keys array is refused', async () => {
  const { token } = await signedToken('k1');
  const server = await startStubServer({ '/certs': json({ notkeys: [] }) });
  try {
    const resolver = createRemoteKeyResolver('https://issuer.example', `${server.origin}/certs`, options);
    await rejectsWithCode(jwtVerify(token, resolver), 'SLUICE_ISSUER_UNREACHABLE', /no "keys" array/);
  } finally {
    await server.close();
  }
});

test('after a failed discovery the issuer is not asked again until the retry window passes', async () => {
  const { token } = await signedToken('k1');
  const server = await startStubServer({ '/.well-known/openid-configuration': (_req, res) => void res.writeHead(500).end() });
  try {
    const resolver = createRemoteKeyResolver(server.origin, undefined, options);
    await rejectsWithCode(jwtVerify(token, resolver), 'SLUICE_ISSUER_UNREACHABLE', /HTTP 500/);
    await rejectsWithCode(jwtVerify(token, resolver), 'SLUICE_ISSUER_UNREACHABLE', /HTTP 500/);
    assert.equal(server.hits.get('/.well-known/openid-configuration'), 1);

    const eager = createRemoteKeyResolver(server.origin, undefined, { ...options, retryAfterFailureMs: 0 });
    await rejectsWithCode(jwtVerify(token, eager), 'SLUICE_ISSUER_UNREACHABLE');
    await rejectsWithCode(jwtVerify(token, eager), 'SLUICE_ISSUER_UNREACHABLE');
    assert.equal(server.hits.get('/.well-known/openid-configuration'), 3);
  } finally {
    await server.close();
  }
});

test('a failing JWKS endpoint is not asked again until the retry window passes', async () => {
  const { token } = await signedToken('k1');
  const server = await startStubServer({ '/certs': (_req, res) => void res.writeHead(503).end() });
  try {
    const resolver = createRemoteKeyResolver('https://issuer.example', `${server.origin}/certs`, options);
    await rejectsWithCode(jwtVerify(token, resolver), 'SLUICE_ISSUER_UNREACHABLE', /HTTP 503/);
    await rejectsWithCode(jwtVerify(token, resolver), 'SLUICE_ISSUER_UNREACHABLE', /HTTP 503/);
    assert.equal(server.hits.get('/certs'), 1);

    const eager = createRemoteKeyResolver('https://issuer.example', `${server.origin}/certs`, { ...options, retryAfterFailureMs: 0 });
    await rejectsWithCode(jwtVerify(token, eager), 'SLUICE_ISSUER_UNREACHABLE');
    await rejectsWithCode(jwtVerify(token, eager), 'SLUICE_ISSUER_UNREACHABLE');
    assert.equal(server.hits.get('/certs'), 3);
  } finally {
    await server.close();
  }
});
