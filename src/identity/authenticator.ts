/**
 * The identity stage: a bearer token in, a verified `Identity` out, or a SluiceError naming why
 * not. Built once from config (conditions compiled, issuers indexed, local key loaded) so that a
 * misconfiguration stops startup instead of failing a request.
 */
import type { SluiceConfig } from '../config/index.js';
import { SluiceError, toSluiceError } from '../errors.js';
import type { Identity } from '../pipeline/types.js';
import { buildIdentity, readRolesClaim, readSubject } from './build-identity.js';
import { createRemoteKeyResolver } from './jwks.js';
import { LOCAL_ALGORITHM, LOCAL_ISSUER, ROLES_CLAIM } from './local-issuer.js';
import { loadOrCreateLocalKey } from './local-key-file.js';
import { compileRoleMap, type RoleMap } from './map-roles.js';
import { quoteUntrusted, readUnverified } from './read-unverified.js';
import { verifySignedToken, type VerificationKey } from './verify-token.js';

export interface Authenticator {
  /** Verify `token`; throws SluiceError (SLUICE_TOKEN_* / SLUICE_ISSUER_*) on any failure. */
  verify(token: string): Promise<Identity>;
}

export interface IdentityDeps {
  /** Milliseconds since epoch; drives exp/nbf/iat checks. Default Date.now. */
  readonly clock?: () => number;
  /** Timeout of each discovery/JWKS request. Default 5000. */
  readonly fetchTimeoutMs?: number;
  /** Minimum gap between JWKS refetches caused by an unknown `kid`. Default 30000. */
  readonly jwksCooldownMs?: number;
  /** How long fetched keys are used before refetching. Default 600000. */
  readonly jwksCacheMaxAgeMs?: number;
  /** After a failed discovery, how long to fail fast before asking the issuer again. Default 5000. */
  readonly retryAfterFailureMs?: number;
}

interface IssuerEntry {
  readonly issuer: string;
  readonly local: boolean;
  readonly key: VerificationKey;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly maxTokenLifetimeMs: number;
  readonly subjectClaim: string;
}

export async function createAuthenticator(config: SluiceConfig, deps: IdentityDeps = {}): Promise<Authenticator> {
  const clock = deps.clock ?? Date.now;
  const keyOptions = {
    fetchTimeoutMs: nonNegative(deps.fetchTimeoutMs, 5000, 'fetchTimeoutMs'),
    cooldownMs: nonNegative(deps.jwksCooldownMs, 30_000, 'jwksCooldownMs'),
    cacheMaxAgeMs: nonNegative(deps.jwksCacheMaxAgeMs, 600_000, 'jwksCacheMaxAgeMs'),
    retryAfterFailureMs: nonNegative(deps.retryAfterFailureMs, 5000, 'retryAfterFailureMs'),
  };
  const roleMap = compileRoleMap(config);
  const { clockSkewMs, maxTokenBytes } = config.identity;

  const issuers = new Map<string, IssuerEntry>();
  for (const iss of config.identity.issuers) {
    if (iss.kind === 'local') {
      const key = await loadOrCreateLocalKey(config.dataDir);
      issuers.set(LOCAL_ISSUER, {
        issuer: LOCAL_ISSUER,
        local: true,
        key: key.publicKey,
        audience: [iss.audience],
        algorithms: [LOCAL_ALGORITHM],
        maxTokenLifetimeMs: iss.maxTokenLifetimeMs,
        subjectClaim: 'sub',
      });
    } else {
      issuers.set(iss.issuer, {
        issuer: iss.issuer,
        local: false,
        key: createRemoteKeyResolver(iss.issuer, iss.jwksUri, keyOptions),
        audience: iss.audience,
        algorithms: iss.algorithms,
        maxTokenLifetimeMs: iss.maxTokenLifetimeMs,
        subjectClaim: iss.subjectClaim ?? 'sub',
      });
    }
  }

  const verify = async (token: string): Promise<Identity> => {
    const unverified = readUnverified(token, maxTokenBytes);
    const entry = issuers.get(unverified.issuer);
    if (entry === undefined) {
      throw new SluiceError('SLUICE_ISSUER_UNKNOWN', `token issuer ${quoteUntrusted(unverified.issuer)} is not configured under identity.issuers`);
    }
    // Checked before any key is fetched: a token with a forbidden alg costs no network round trip.
    if (!entry.algorithms.includes(unverified.alg)) {
      throw new SluiceError('SLUICE_TOKEN_INVALID', `token algorithm ${quoteUntrusted(unverified.alg, 20)} is not allowed for issuer ${entry.issuer}`);
    }
    const payload = await verifySignedToken(token, entry.key, {
      issuer: entry.issuer,
      audience: entry.audience,
      algorithms: entry.algorithms,
      clockSkewMs,
      maxTokenLifetimeMs: entry.maxTokenLifetimeMs,
      now: clock(),
    });
    const subject = readSubject(payload, entry.subjectClaim);
    const roles = grantRoles(roleMap, entry, subject, payload);
    return buildIdentity({ issuer: entry.issuer, subject, roles, payload });
  };

  return {
    async verify(token) {
      try {
        return await verify(token);
      } catch (err) {
        // Fail closed with a typed error whatever went wrong; never let a raw exception escape.
        throw toSluiceError(err);
      }
    },
  };
}

function grantRoles(roleMap: RoleMap, entry: IssuerEntry, subject: string, payload: Record<string, unknown>): string[] {
  if (entry.local) return roleMap.grantLocal(readRolesClaim(payload, ROLES_CLAIM));
  return roleMap.grantRemote({ issuer: entry.issuer, subject, claims: payload });
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer`);
  return value;
}
