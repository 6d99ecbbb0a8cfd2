import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertFetchableUrl, fetchJsonObject } from '../../src/identity/fetch-json.js';
import { rejectsWithCode } from './helpers/assert-error.js';
import { json, startStubServer } from './helpers/stub-server.js';

const limits = { timeoutMs: 2000, maxBytes: 1024 };

test('assertFetchableUrl allows https and loopback http only', () => {
  assert.equal(assertFetchableUrl('https://issuer.example/jwks', 'x').host, 'issuer.example');
  assert.equal(assertFetchableUrl('http://127.0.0.1:8080/jwks', 'x').port, '8080');
  assert.equal(assertFetchableUrl('http://[::1]:8080/jwks', 'x').port, '8080');
  for (const bad of ['http://issuer.example/jwks', 'http://10.0.0.1/jwks', 'file:///etc/passwd', 'ftp://127.0.0.1/x', 'not a url']) {
    assert.throws(() => assertFetchableUrl(bad, 'jwks_uri'), (err: unknown) => (err as { code?: string }).code === 'SLUICE_ISSUER_UNREACHABLE', bad);
  }
  assert.throws(() => assertFetchableUrl('https://user:pw@issuer.example/', 'x'), /credentials/);
});

test('fetchJsonObject returns a JSON object and enforces the byte cap, declared or streamed', async () => {
  const big = 'x'.repeat(4096);
  const server = await startStubServer({
    '/ok': json({ keys: [] }),
    '/declared': json({ big }),
    // No content-length: the cap must hold while streaming.
    '/chunked': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"big":"');
      const timer = setInterval(() => res.write('x'.repeat(512)), 1);
      res.on('close', () => clearInterval(timer));
    },
    '/array': json([1, 2]),
    '/text': (_req, res) => void res.writeHead(200).end('<html>'),
    '/redirect': (_req, res, origin) => void res.writeHead(302, { location: `${origin}/ok` }).end(),
    '/500': (_req, res) => void res.writeHead(500).end('{}'),
  });
  try {
    assert.deepEqual(await fetchJsonObject(`${server.origin}/ok`, 'JWKS', limits), { keys: [] });
    await rejectsWithCode(fetchJsonObject(`${server.origin}/declared`, 'JWKS', limits), 'SLUICE_ISSUER_UNREACHABLE', /larger than 1024 bytes/);
    await rejectsWithCode(fetchJsonObject(`${server.origin}/chunked`, 'JWKS', limits), 'SLUICE_ISSUER_UNREACHABLE', /larger than 1024 bytes/);
    await rejectsWithCode(fetchJsonObject(`${server.origin}/array`, 'JWKS', limits), 'SLUICE_ISSUER_UNREACHABLE', /not a JSON object/);
    await rejectsWithCode(fetchJsonObject(`${server.origin}/text`, 'JWKS', limits), 'SLUICE_ISSUER_UNREACHABLE', /not JSON/);
    // Redirects are not followed: the target was never vetted.
    await rejectsWithCode(fetchJsonObject(`${server.origin}/redirect`, 'JWKS', limits), 'SLUICE_ISSUER_UNREACHABLE', /HTTP 302/);
    assert.equal(server.hits.get('/ok'), 1);
    await rejectsWithCode(fetchJsonObject(`${server.origin}/500`, 'JWKS', limits), 'SLUICE_ISSUER_UNREACHABLE', /HTTP 500/);
  } finally {
    await server.close();
  }
});

test('fetchJsonObject gives up after the timeout, on headers or on a stalled body', async () => {
  const server = await startStubServer({
    '/silent': () => undefined,
    '/stall': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":');
    },
  });
  try {
    const started = Date.now();
    await rejectsWithCode(fetchJsonObject(`${server.origin}/silent`, 'JWKS', { timeoutMs: 200, maxBytes: 1024 }), 'SLUICE_ISSUER_UNREACHABLE', /no response within 200 ms/);
    await rejectsWithCode(fetchJsonObject(`${server.origin}/stall`, 'JWKS', { timeoutMs: 200, maxBytes: 1024 }), 'SLUICE_ISSUER_UNREACHABLE', /within 200 ms/);
    assert.ok(Date.now() - started < 2000);
  } finally {
    await server.close();
  }
});
