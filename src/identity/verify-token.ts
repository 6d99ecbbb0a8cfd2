/**
 * Signature and registered-claim checks (RFC 7519 §4.1) for one token against one issuer's policy.
 * jose does the cryptography and the iss/aud/exp/nbf checks; this file adds what jose leaves to
 * the caller (a lifetime cap, `iat` not in the future) and turns every jose failure into a
 * SluiceError whose message names the reason without echoing the token.
 */
import { errors, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey, type KeyObject } from 'jose';
import { SluiceError } from '../errors.js';

export interface VerifyPolicy {
  readonly issuer: string;
  readonly audience: readonly string[];
  /** Asymmetric algorithms only; config rejects `none` and HS*. */
  readonly algorithms: readonly string[];
  readonly clockSkewMs: number;
  readonly maxTokenLifetimeMs: number;
  /** Current time, milliseconds since epoch. */
  readonly now: number;
}

export type VerificationKey = CryptoKey | KeyObject | JWTVerifyGetKey;

export async function verifySignedToken(token: string, key: VerificationKey, policy: VerifyPolicy): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    const options = {
      issuer: policy.issuer,
      audience: [...policy.audience],
      // The allow-list is what defeats `alg: none` and RS→HS confusion: jose refuses any alg not
      // listed here before it looks at a key.
      algorithms: [...policy.algorithms],
      clockTolerance: policy.clockSkewMs / 1000,
      currentDate: new Date(policy.now),
      requiredClaims: ['exp'],
    };
    // Two calls because jose's overloads take a key or a resolver, not a union of both.
    payload =
      typeof key === 'function'
        ? (await jwtVerify(token, key, options)).payload
        : (await jwtVerify(token, key, options)).payload;
  } catch (err) {
    throw toTokenError(err, policy.issuer);
  }
  checkLifetime(payload, policy);
  return payload;
}

/**
 * A stolen long-lived token is a long-lived credential. The lifetime is the issuer's promise
 * (exp − iat); without `iat` we can only bound what remains (exp − now).
 */
function checkLifetime(payload: JWTPayload, policy: VerifyPolicy): void {
  const nowSec = policy.now / 1000;
  const skewSec = policy.clockSkewMs / 1000;
  const exp = payload.exp as number; // required and type-checked by jose
  if (payload.iat !== undefined && payload.iat > nowSec + skewSec) {
    throw new SluiceError('SLUICE_TOKEN_INVALID', 'token is issued in the future ("iat" is later than now plus the allowed clock skew)');
  }
  const lifetimeSec = exp - (payload.iat ?? nowSec);
  if (lifetimeSec * 1000 > policy.maxTokenLifetimeMs) {
    throw new SluiceError(
      'SLUICE_TOKEN_TOO_LONG_LIVED',
      `token lifetime of ${Math.round(lifetimeSec)} s exceeds the issuer's maximum of ${Math.floor(policy.maxTokenLifetimeMs / 1000)} s`,
    );
  }
}

function toTokenError(err: unknown, issuer: string): SluiceError {
  if (err instanceof SluiceError) return err;
  const invalid = (why: string): SluiceError => new SluiceError('SLUICE_TOKEN_INVALID', why, { cause: err });
  if (err instanceof errors.JWTExpired) return new SluiceError('SLUICE_TOKEN_EXPIRED', 'token has expired', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return invalid('token is not valid yet ("nbf" is in the future)');
      case 'aud':
        return invalid(err.reason === 'missing' ? 'token has no "aud" claim' : 'token audience does not match this gateway');
      case 'iss':
        return invalid('token issuer does not match');
      default:
        return invalid(err.reason === 'missing' ? `token has no "${err.claim}" claim` : `token claim "${err.claim}" is invalid`);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid('token signature verification failed');
  if (err instanceof errors.JOSEAlgNotAllowed) return invalid('token algorithm is not allowed for this issuer');
  if (err instanceof errors.JWKSNoMatchingKey) return invalid(`no key of ${issuer} matches the token's "kid" and "alg"`);
  if (err instanceof errors.JWKSMultipleMatchingKeys) return invalid(`several keys of ${issuer} match the token; it must name a "kid"`);
  if (err instanceof errors.JWKSTimeout) return new SluiceError('SLUICE_ISSUER_UNREACHABLE', `JWKS of ${issuer} did not answer in time`, { cause: err });
  if (err instanceof errors.JWKSInvalid) return new SluiceError('SLUICE_ISSUER_UNREACHABLE', `JWKS of ${issuer} is malformed`, { cause: err });
  if (err instanceof errors.JOSEError) return invalid('token is malformed or cannot be verified');
  // Anything else (jose's TypeError for a bad option, a bug of ours) is not the token's fault:
  // still a denial, but reported as internal so it gets looked at.
  return new SluiceError('SLUICE_INTERNAL', 'token verification failed unexpectedly', { cause: err });
}
