import assert from 'node:assert/strict';
import { test } from 'node:test';
import { discoverJwksUri, discoveryUrl, readJwksUri } from '../../src/identity/discovery.js';
import { rejectsWithCode } from './helpers/assert-error.js';
import { json, startStubServer, type Route } from './helpers/stub-server.js';

const limits = { timeoutMs: 2000 };

test('discoveryUrl follows OIDC Discovery §4.1 (trailing slash removed, well-known path appended)', () => {
  assert.equal(discoveryUrl('https://issuer.example'), 'https://issuer.example/.well-known/openid-configuration');
  assert.equal(discoveryUrl('https://issuer.example/tenant/'), 'https://issuer.example/tenant/.well-known/openid-configuration');
});

async function withDiscovery(doc: (origin: string) => unknown, body: (origin: string) => Promise<void>): Promise<void> {
  const route: Route = (req, res, origin) => json(doc(origin))(req, res, origin);
  const server = await startStubServer({ '/.well-known/openid-configuration': route });
  try {
    await body(server.origin);
  } finally {
    await server.close();
  }
}

test('the discovered jwks_uri is returned when the document names this issuer', async () => {
  await withDiscovery(
    (origin) => ({ issuer: origin, jwks_uri: `${origin}/keys` }),
    async (origin) => assert.equal((await discoverJwksUri(origin, limits)).href, `${origin}/keys`),
  );
});

test('a discovery document naming another issuer is refused (§4.3 mix-up defence)', async () => {
  await withDiscovery(
    (origin) => ({ issuer: 'https://evil.example', jwks_uri: `${origin}/keys` }),
    async (origin) => void (await rejectsWithCode(discoverJwksUri(origin, limits), 'SLUICE_ISSUER_UNREACHABLE', /different issuer/)),
  );
});

test('a discovered jwks_uri over plain http to a non-loopback host is refused', async () => {
  await withDiscovery(
    (origin) => ({ issuer: origin, jwks_uri: 'http://keys.example/jwks' }),
    async (origin) => void (await rejectsWithCode(discoverJwksUri(origin, limits), 'SLUICE_ISSUER_UNREACHABLE', /must use https/)),
  );
});

test('a discovery document without jwks_uri is refused', async () => {
  await withDiscovery(
    (origin) => ({ issuer: origin }),
    async (origin) => void (await rejectsWithCode(discoverJwksUri(origin, limits), 'SLUICE_ISSUER_UNREACHABLE', /no jwks_uri/)),
  );
});

test('an https issuer may not send us to a plain-http jwks_uri, not even on loopback', () => {
  const issuer = 'https://issuer.example';
  assert.equal(readJwksUri(issuer, { issuer, jwks_uri: 'https://keys.example/jwks' }).href, 'https://keys.example/jwks');
  assert.throws(() => readJwksUri(issuer, { issuer, jwks_uri: 'http://127.0.0.1:9/jwks' }), /must use https:\/\/ like the issuer/);
  // A loopback http issuer (tests, sidecars) may use a loopback http jwks_uri.
  assert.equal(readJwksUri('http://127.0.0.1:8080', { issuer: 'http://127.0.0.1:8080', jwks_uri: 'http://127.0.0.1:8080/jwks' }).port, '8080');
});
