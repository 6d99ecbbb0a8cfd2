/**
 * End-to-end verification of external-issuer tokens against a real OpenID Provider (oidc-provider)
 * on loopback: discovery, JWKS, claim checks, claim→role mapping and key rotation.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import { createAuthenticator } from '../../src/identity/index.js';
import { rejectsWithCode } from './helpers/assert-error.js';
import { githubActionsClaims, tempConfig, type TempConfig } from './helpers/config.js';
import { ACCESS_TOKEN_TTL_S, startTestIssuer, TEST_AUDIENCE, unusedPort, type TestIssuer } from './helpers/oidc-issuer.js';

const GITHUB_ROLES = `  roles:
    - name: ci-readonly
      when: claims.repository == "acme/app" && claims.ref == "refs/heads/main"
    - name: deployer
      when: >-
        claims.environment == "production"
        && claims.job_workflow_ref.startsWith("acme/app/.github/workflows/deploy.yml@refs/heads/")
        && claims.event_name in ["push", "workflow_dispatch"]
        && int(claims.run_attempt) == 1
    - name: octocat-only
      when: claims.actor == "octocat" && subject.startsWith("repo:acme/")
    - name: other-repo
      when: claims.repository == "acme/other"
    - name: ops
`;

function remoteIssuerYaml(issuer: string, extra = ''): string {
  return `    - issuer: ${issuer}\n      audience: ${TEST_AUDIENCE}\n${extra}`;
}

/** Re-encode a token's payload with edits, keeping the original signature. */
function withPayload(token: string, edit: (p: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  edit(payload);
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
}

describe('createAuthenticator with a real OpenID Provider', () => {
  let op: TestIssuer;
  let cfg: TempConfig;

  before(async () => {
    op = await startTestIssuer();
    cfg = tempConfig(`  issuers:\n${remoteIssuerYaml(op.issuer)}${GITHUB_ROLES}`);
  });
  after(async () => {
    await op.close();
    cfg.cleanup();
  });

  test('a valid GitHub Actions-style token yields an identity with the roles its claims earn', async () => {
    const auth = await createAuthenticator(cfg.config);
    const token = await op.token({
      claims: { ...githubActionsClaims(), sluice_model: 'claude-sonnet', act: { sub: 'alice@example.com' } },
      customize: (p) => {
        p.sub = 'repo:acme/app:environment:production';
      },
    });
    const identity = await auth.verify(token);
    assert.equal(identity.issuer, op.issuer);
    assert.equal(identity.subject, 'repo:acme/app:environment:production');
    assert.deepEqual([...identity.roles].sort(), ['ci-readonly', 'deployer', 'octocat-only']);
    assert.equal(identity.model, 'claude-sonnet');
    assert.equal(identity.sponsor, 'alice@example.com');
    assert.equal(identity.claims.run_id, '9876543210');
    assert.equal(identity.expiresAt, decodePayload(token).exp);
    assert.equal(typeof identity.tokenId, 'string');
    assert.ok(Object.isFrozen(identity.claims), 'claims are frozen for later stages');
  });

  test('claims that miss a condition do not earn its role; a role without `when` is never granted remotely', async () => {
    const auth = await createAuthenticator(cfg.config);
    const token = await op.token({
      claims: githubActionsClaims({ ref: 'refs/heads/feature-x', environment: 'staging', run_attempt: '2', sluice_roles: ['ops', 'deployer'] }),
      customize: (p) => {
        p.sub = 'repo:acme/app:ref:refs/heads/feature-x';
      },
    });
    const identity = await auth.verify(token);
    // sluice_roles is a local-issuer claim; a remote issuer asserting it gains nothing.
    assert.deepEqual(identity.roles, ['octocat-only']);
  });

  test('a token without the claims a condition reads gets no roles (missing claim is false, not an error)', async () => {
    const auth = await createAuthenticator(cfg.config);
    const identity = await auth.verify(await op.token());
    assert.equal(identity.subject, 'ci-agent');
    assert.deepEqual(identity.roles, []);
  });

  test('subjectClaim picks the subject from another claim', async () => {
    const c = tempConfig(`  issuers:\n${remoteIssuerYaml(op.issuer, '      subjectClaim: actor\n')}`);
    try {
      const identity = await (await createAuthenticator(c.config)).verify(await op.token({ claims: githubActionsClaims() }));
      assert.equal(identity.subject, 'octocat');
    } finally {
      c.cleanup();
    }
  });

  test('wrong audience is rejected', async () => {
    const c = tempConfig(`  issuers:\n    - issuer: ${op.issuer}\n      audience: [other-gateway, another]\n`);
    try {
      const auth = await createAuthenticator(c.config);
      await rejectsWithCode(auth.verify(await op.token()), 'SLUICE_TOKEN_INVALID', /audience/);
    } finally {
      c.cleanup();
    }
  });

  test('an expired token is rejected; within the clock skew it is still accepted', async () => {
    const token = await op.token();
    const exp = decodePayload(token).exp as number;
    const late = await createAuthenticator(cfg.config, { clock: () => exp * 1000 + 31_000 });
    const err = await rejectsWithCode(late.verify(token), 'SLUICE_TOKEN_EXPIRED', /expired/);
    assert.equal(err.httpStatus, 401);
    const withinSkew = await createAuthenticator(cfg.config, { clock: () => exp * 1000 + 20_000 });
    assert.equal((await withinSkew.verify(token)).issuer, op.issuer);
  });

  test('a token whose nbf is in the future is rejected; within the clock skew it is accepted', async () => {
    const auth = await createAuthenticator(cfg.config);
    const future = await op.token({ customize: (p) => void (p.nbf = (p.iat as number) + 300) });
    await rejectsWithCode(auth.verify(future), 'SLUICE_TOKEN_INVALID', /nbf/);
    const nearFuture = await op.token({ customize: (p) => void (p.nbf = (p.iat as number) + 10) });
    assert.equal((await auth.verify(nearFuture)).issuer, op.issuer);
  });

  test('a token issued in the future is rejected', async () => {
    const auth = await createAuthenticator(cfg.config);
    const token = await op.token({
      customize: (p) => {
        p.iat = (p.iat as number) + 3600;
        p.exp = (p.iat as number) + 600;
      },
    });
    await rejectsWithCode(auth.verify(token), 'SLUICE_TOKEN_INVALID', /issued in the future/);
  });

  test('a token without exp is rejected', async () => {
    const auth = await createAuthenticator(cfg.config);
    const token = await op.token({ customize: (p) => void delete p.exp });
    await rejectsWithCode(auth.verify(token), 'SLUICE_TOKEN_INVALID', /"exp"/);
  });

  test('a tampered payload fails signature verification', async () => {
    const auth = await createAuthenticator(cfg.config);
    const token = await op.token({ claims: { repository: 'acme/other' } });
    const forged = withPayload(token, (p) => void (p.repository = 'acme/app'));
    await rejectsWithCode(auth.verify(forged), 'SLUICE_TOKEN_INVALID', /signature/);
    // The untampered token still verifies, so it was the edit that failed.
    assert.deepEqual((await auth.verify(token)).roles, ['other-repo']);
  });

  test('alg "none" is rejected', async () => {
    const auth = await createAuthenticator(cfg.config);
    const token = await op.token();
    const payload = token.split('.')[1] as string;
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    await rejectsWithCode(auth.verify(`${header}.${payload}.`), 'SLUICE_TOKEN_INVALID', /algorithm "none" is not allowed/);
  });

  test('HS256 signed with the issuer public key (algorithm confusion) is rejected', async () => {
    const auth = await createAuthenticator(cfg.config);
    const claims = decodePayload(await op.token());
    const pem = createPublicKey({ key: op.signingKey.publicJwk, format: 'jwk' } as never).export({ type: 'spki', format: 'pem' });
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(op.signingKey.publicJwk))]) {
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: op.signingKey.kid }).sign(secret);
      await rejectsWithCode(auth.verify(forged), 'SLUICE_TOKEN_INVALID', /algorithm "HS256" is not allowed/);
    }
  });

  test('an algorithm outside the issuer allow-list is rejected even when correctly signed', async () => {
    const c = tempConfig(`  issuers:\n${remoteIssuerYaml(op.issuer, '      algorithms: [ES256]\n')}`);
    try {
      const auth = await createAuthenticator(c.config);
      await rejectsWithCode(auth.verify(await op.token()), 'SLUICE_TOKEN_INVALID', /algorithm "RS256" is not allowed/);
    } finally {
      c.cleanup();
    }
  });

  test('a token from an issuer that is not configured is rejected without contacting it', async () => {
    const c = tempConfig(`  issuers:\n    - issuer: https://token.actions.githubusercontent.com\n      audience: sluice\n`);
    try {
      const auth = await createAuthenticator(c.config);
      const before = op.hits.get('/.well-known/openid-configuration') ?? 0;
      await rejectsWithCode(auth.verify(await op.token()), 'SLUICE_ISSUER_UNKNOWN', /not configured/);
      assert.equal(op.hits.get('/.well-known/openid-configuration') ?? 0, before);
    } finally {
      c.cleanup();
    }
  });

  test('a token larger than identity.maxTokenBytes is rejected before it is parsed', async () => {
    const c = tempConfig(`  maxTokenBytes: 1024\n  issuers:\n${remoteIssuerYaml(op.issuer)}`);
    try {
      const auth = await createAuthenticator(c.config);
      const big = await op.token({ claims: { padding: 'x'.repeat(1200) } });
      await rejectsWithCode(auth.verify(big), 'SLUICE_TOKEN_TOO_LARGE', /1024 bytes/);
      // Not even well-formed: the size check still answers first.
      await rejectsWithCode(auth.verify('!'.repeat(1025)), 'SLUICE_TOKEN_TOO_LARGE');
      assert.equal((await auth.verify(await op.token())).issuer, op.issuer);
    } finally {
      c.cleanup();
    }
  });

  test('a token living longer than the issuer maximum is rejected (exp − iat, or exp − now without iat)', async () => {
    const c = tempConfig(`  issuers:\n${remoteIssuerYaml(op.issuer, '      maxTokenLifetime: 5m\n')}`);
    try {
      const auth = await createAuthenticator(c.config);
      // The provider issues 10-minute tokens; this issuer allows 5.
      await rejectsWithCode(auth.verify(await op.token()), 'SLUICE_TOKEN_TOO_LONG_LIVED', new RegExp(`${ACCESS_TOKEN_TTL_S} s exceeds .* 300 s`));
      const noIat = await op.token({ customize: (p) => void delete p.iat });
      await rejectsWithCode(auth.verify(noIat), 'SLUICE_TOKEN_TOO_LONG_LIVED');
      const short = await op.token({ customize: (p) => void (p.exp = (p.iat as number) + 240) });
      assert.equal((await auth.verify(short)).issuer, op.issuer);
    } finally {
      c.cleanup();
    }
    // The default cap (12 h) catches a token that lives for 13 hours.
    const auth = await createAuthenticator(cfg.config);
    const long = await op.token({ customize: (p) => void (p.exp = (p.iat as number) + 13 * 3600) });
    await rejectsWithCode(auth.verify(long), 'SLUICE_TOKEN_TOO_LONG_LIVED');
  });

  test('keys are cached: many verifications cost one discovery and one JWKS fetch', async () => {
    const auth = await createAuthenticator(cfg.config);
    const d0 = op.hits.get('/.well-known/openid-configuration') ?? 0;
    const j0 = op.hits.get('/jwks') ?? 0;
    const tokens = await Promise.all([op.token(), op.token(), op.token()]);
    await Promise.all(tokens.map((t) => auth.verify(t)));
    for (const t of tokens) await auth.verify(t);
    assert.equal((op.hits.get('/.well-known/openid-configuration') ?? 0) - d0, 1);
    assert.equal((op.hits.get('/jwks') ?? 0) - j0, 1);
  });
});

describe('key rotation', () => {
  test('a token signed with a new key is accepted after the JWKS is refetched; the cooldown limits refetches', async () => {
    const op = await startTestIssuer();
    const cfg = tempConfig(`  issuers:\n${remoteIssuerYaml(op.issuer)}`);
    try {
      const eager = await createAuthenticator(cfg.config, { jwksCooldownMs: 0 });
      const guarded = await createAuthenticator(cfg.config); // default 30 s cooldown
      const oldToken = await op.token();
      await eager.verify(oldToken);
      await guarded.verify(oldToken);
      const jwksBefore = op.hits.get('/jwks') ?? 0;

      const oldKid = op.signingKey.kid;
      await op.rotateKeys();
      const newToken = await op.token();
      assert.notEqual(JSON.parse(Buffer.from(newToken.split('.')[0] as string, 'base64url').toString()).kid, oldKid);

      // Unknown kid → one refetch → the new key verifies.
      assert.equal((await eager.verify(newToken)).issuer, op.issuer);
      assert.equal((op.hits.get('/jwks') ?? 0) - jwksBefore, 1);
      assert.equal((await eager.verify(oldToken)).issuer, op.issuer, 'the old key is still published and still verifies');

      // Inside the cooldown an unknown kid does not reach the issuer: a kid flood can't amplify.
      await rejectsWithCode(guarded.verify(newToken), 'SLUICE_TOKEN_INVALID', /no key .* matches/);
      assert.equal((op.hits.get('/jwks') ?? 0) - jwksBefore, 1);
    } finally {
      await op.close();
      cfg.cleanup();
    }
  });
});

describe('several issuers at once', () => {
  test('each token is verified against its own issuer, and issuer-restricted roles stay with their issuer', async () => {
    const a = await startTestIssuer();
    const b = await startTestIssuer();
    const cfg = tempConfig(
      `  issuers:\n${remoteIssuerYaml(a.issuer)}${remoteIssuerYaml(b.issuer)}    - local: true\n` +
        `  roles:\n    - name: from-a\n      issuer: ${a.issuer}\n      when: "true"\n    - name: from-b\n      issuer: ${b.issuer}\n      when: "true"\n    - name: any-app\n      when: claims.repository == "acme/app"\n`,
    );
    try {
      const auth = await createAuthenticator(cfg.config);
      const fromA = await auth.verify(await a.token({ claims: { repository: 'acme/app' } }));
      const fromB = await auth.verify(await b.token());
      assert.equal(fromA.issuer, a.issuer);
      assert.deepEqual(fromA.roles, ['from-a', 'any-app']);
      assert.equal(fromB.issuer, b.issuer);
      assert.deepEqual(fromB.roles, ['from-b']);
      // A token claiming A but signed by B's key is not accepted.
      const bKey = await importJWK(b.signingKey.privateJwk, 'RS256');
      const claims = { ...decodePayload(await b.token()), iss: a.issuer };
      const crossSigned = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: a.signingKey.kid }).sign(bKey);
      await rejectsWithCode(auth.verify(crossSigned), 'SLUICE_TOKEN_INVALID', /signature/);
    } finally {
      await a.close();
      await b.close();
      cfg.cleanup();
    }
  });
});

describe('unreachable issuer', () => {
  test('a configured issuer that does not answer yields SLUICE_ISSUER_UNREACHABLE', async () => {
    const issuer = `http://127.0.0.1:${await unusedPort()}`;
    const cfg = tempConfig(`  issuers:\n${remoteIssuerYaml(issuer)}`);
    try {
      const auth = await createAuthenticator(cfg.config, { fetchTimeoutMs: 2000 });
      const { privateKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('rsa', { modulusLength: 2048 }));
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(TEST_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(privateKey);
      const err = await rejectsWithCode(auth.verify(token), 'SLUICE_ISSUER_UNREACHABLE', /discovery document .*ECONNREFUSED/);
      assert.equal(err.httpStatus, 503);
      assert.ok(!err.message.includes(token.split('.')[2] as string), 'the message never echoes the token');
    } finally {
      cfg.cleanup();
    }
  });
});
