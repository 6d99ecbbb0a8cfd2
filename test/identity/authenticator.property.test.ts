/**
 * Property: whatever string arrives as a token, verify() rejects it with a SluiceError carrying a
 * token/issuer code — never another exception type, never SLUICE_INTERNAL, never a crash — or, for
 * a correctly signed token with well-formed claims, accepts it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { SluiceError, type SluiceErrorCode } from '../../src/errors.js';
import { createAuthenticator, LOCAL_ISSUER, mintLocalToken, type Authenticator } from '../../src/identity/index.js';
import { loadOrCreateLocalKey, type LocalKey } from '../../src/identity/local-key-file.js';
import { tempConfig, type TempConfig } from './helpers/config.js';
import { unusedPort } from './helpers/oidc-issuer.js';

const TOKEN_CODES: ReadonlySet<SluiceErrorCode> = new Set([
  'SLUICE_TOKEN_MISSING',
  'SLUICE_TOKEN_INVALID',
  'SLUICE_TOKEN_EXPIRED',
  'SLUICE_TOKEN_TOO_LONG_LIVED',
  'SLUICE_TOKEN_TOO_LARGE',
  'SLUICE_ISSUER_UNKNOWN',
  'SLUICE_ISSUER_UNREACHABLE',
]);

const RUNS = 300;

describe('verify() on hostile input', () => {
  let cfg: TempConfig;
  let auth: Authenticator;
  let key: LocalKey;
  let remote: string;
  let valid: string;

  before(async () => {
    remote = `http://127.0.0.1:${await unusedPort()}`;
    cfg = tempConfig(`  maxTokenBytes: 2048\n  issuers:\n    - local: true\n    - issuer: ${remote}\n      audience: sluice\n  roles:\n    - name: ops\n    - name: ci\n      when: claims.repository == "acme/app"\n`);
    auth = await createAuthenticator(cfg.config, { fetchTimeoutMs: 1000 });
    key = await loadOrCreateLocalKey(cfg.config.dataDir);
    valid = await mintLocalToken(cfg.config, { role: 'ops', subject: 'fuzz@local' });
  });
  after(() => cfg.cleanup());

  async function rejectsTyped(token: string): Promise<void> {
    try {
      await auth.verify(token);
    } catch (err) {
      assert.ok(err instanceof SluiceError, `not a SluiceError: ${String(err)}`);
      assert.ok(TOKEN_CODES.has(err.code), `unexpected code ${err.code}: ${err.message}`);
      return;
    }
    assert.fail('a garbled token was accepted');
  }

  test('arbitrary strings', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 3000 }), fc.string({ unit: 'binary-ascii' })), rejectsTyped), { numRuns: RUNS });
  });

  test('three segments of base64url-encoded garbage or JSON', async () => {
    const segment = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
      fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/),
    );
    await fc.assert(fc.asyncProperty(segment, segment, segment, (h, p, s) => rejectsTyped(`${h}.${p}.${s}`)), { numRuns: RUNS });
  });

  test('single-character edits and truncations of a valid local token', async () => {
    await auth.verify(valid); // the unedited token is accepted, so rejections below are due to the edits
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    const edit = fc.oneof(
      fc.tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom(...alphabet)).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)),
      fc.nat({ max: valid.length - 1 }).map((n) => valid.slice(0, n)),
      fc.nat({ max: valid.length - 1 }).map((i) => valid.slice(0, i) + valid.slice(i + 1)),
    );
    await fc.assert(
      fc.asyncProperty(edit, async (token) => {
        if (token === valid) return;
        try {
          await auth.verify(token);
        } catch (err) {
          assert.ok(err instanceof SluiceError && TOKEN_CODES.has(err.code), String(err));
          return;
        }
        // base64url has spare low bits in a final character: an edit there may decode to the same bytes.
        assert.equal(Buffer.from(token.split('.')[2] ?? '', 'base64url').equals(Buffer.from(valid.split('.')[2] as string, 'base64url')), true);
      }),
      { numRuns: RUNS },
    );
  });

  test('correctly signed tokens with arbitrary header and claim values', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claimValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer({ min: now - 7200, max: now + 7200 }));
    const claims = fc.record(
      {
        iss: fc.oneof(fc.constant(LOCAL_ISSUER), fc.constant(remote), claimValue),
        aud: fc.oneof(fc.constant('sluice'), fc.constant(['x', 'sluice']), claimValue),
        sub: fc.oneof(fc.constant('s'), claimValue),
        exp: fc.oneof(fc.constant(now + 300), claimValue),
        nbf: claimValue,
        iat: fc.oneof(fc.constant(now), claimValue),
        sluice_roles: fc.oneof(fc.constant(['ops', 'nope']), fc.array(fc.constantFrom('ops', 'ci', 'nope', '')), claimValue),
        sluice_model: claimValue,
        act: claimValue,
        repository: claimValue,
      },
      { requiredKeys: [] },
    );
    const header = fc.record({ kid: fc.oneof(fc.constant(key.kid), fc.string()), typ: fc.string(), crit: fc.jsonValue({ maxDepth: 1 }), b64: fc.boolean() }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(claims, header, async (c, h) => {
        let token: string;
        try {
          token = await new SignJWT(c as Record<string, unknown>).setProtectedHeader({ ...(h as Record<string, unknown>), alg: 'EdDSA' }).sign(key.privateKey);
        } catch {
          return; // jose refuses to produce this token at all (e.g. b64:false without crit)
        }
        try {
          const identity = await auth.verify(token);
          // Accepted: then it really was a well-formed local token, granting exactly the requested
          // roles that are defined (possibly none: the pipeline refuses a role-less session).
          assert.equal(identity.issuer, LOCAL_ISSUER);
          const requested = c.sluice_roles as unknown[];
          assert.deepEqual(identity.roles, [...new Set(requested)].filter((r) => r === 'ops' || r === 'ci'));
        } catch (err) {
          assert.ok(err instanceof SluiceError && TOKEN_CODES.has(err.code), `${String(err)} ${(err as SluiceError).code}`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
