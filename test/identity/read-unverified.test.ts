import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quoteUntrusted, readUnverified } from '../../src/identity/read-unverified.js';

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const jws = (header: unknown, payload: unknown): string => `${b64(header)}.${b64(payload)}.c2ln`;

function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return true;
  });
}

test('returns alg and iss of a well-formed compact JWS', () => {
  assert.deepEqual(readUnverified(jws({ alg: 'RS256' }, { iss: 'https://i.example' }), 8192), { alg: 'RS256', issuer: 'https://i.example' });
});

test('an empty token is SLUICE_TOKEN_MISSING', () => {
  throwsCode(() => readUnverified('', 8192), 'SLUICE_TOKEN_MISSING');
});

test('size is checked in UTF-8 bytes, before any parsing', () => {
  throwsCode(() => readUnverified('a'.repeat(257), 256), 'SLUICE_TOKEN_TOO_LARGE', /256 bytes/);
  // 100 characters but 300 bytes: the byte count decides.
  throwsCode(() => readUnverified('€'.repeat(100), 256), 'SLUICE_TOKEN_TOO_LARGE');
  const ok = jws({ alg: 'RS256' }, { iss: 'x' });
  assert.equal(readUnverified(ok, ok.length).issuer, 'x');
  throwsCode(() => readUnverified(ok, ok.length - 1), 'SLUICE_TOKEN_TOO_LARGE');
});

test('anything but three base64url segments is SLUICE_TOKEN_INVALID', () => {
  for (const bad of ['abc', 'a.b', 'a.b.c.d.e', 'a b.c.d', 'a.b.c\n', '€.a.b', '.a.b']) {
    throwsCode(() => readUnverified(bad, 8192), 'SLUICE_TOKEN_INVALID', /compact JWS/);
  }
});

test('undecodable or incomplete header/claims are SLUICE_TOKEN_INVALID', () => {
  throwsCode(() => readUnverified(`${b64('not json')}.${b64({ iss: 'x' })}.c2ln`, 8192), 'SLUICE_TOKEN_INVALID', /base64url JSON/);
  throwsCode(() => readUnverified(`${b64({ alg: 'RS256' })}.${b64('[1]')}.c2ln`, 8192), 'SLUICE_TOKEN_INVALID');
  throwsCode(() => readUnverified(jws({ typ: 'JWT' }, { iss: 'x' }), 8192), 'SLUICE_TOKEN_INVALID', /"alg"/);
  throwsCode(() => readUnverified(jws({ alg: 'RS256' }, { sub: 'x' }), 8192), 'SLUICE_TOKEN_INVALID', /"iss"/);
  throwsCode(() => readUnverified(jws({ alg: 'RS256' }, { iss: 42 }), 8192), 'SLUICE_TOKEN_INVALID', /"iss"/);
});

test('quoteUntrusted neutralises control characters and truncates', () => {
  assert.equal(quoteUntrusted('evil\n\u001b[31mred'), '"evil??[31mred"');
  assert.equal(quoteUntrusted('x'.repeat(100), 10), `"${'x'.repeat(10)}…"`);
});
