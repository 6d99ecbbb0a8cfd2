/**
 * Key resolution for one remote issuer: discovery (unless `jwksUri` is configured) → JWKS through
 * jose's createRemoteJWKSet, which caches the set and refetches it when a token names a `kid` it
 * has not seen (key rotation) — but at most once per cooldown, so a flood of tokens with random
 * `kid`s cannot turn the gateway into a traffic amplifier against the issuer.
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey, type RemoteJWKSet } from 'jose';
import { SluiceError } from '../errors.js';
import { discoverJwksUri } from './discovery.js';
import { assertFetchableUrl, fetchJsonObject } from './fetch-json.js';

/** Real JWKS are a few KiB; a cap keeps a hostile or broken issuer from filling memory. */
export const MAX_JWKS_BYTES = 256 * 1024;

export interface RemoteKeyOptions {
  /** Per-request timeout for discovery and JWKS fetches. */
  readonly fetchTimeoutMs: number;
  /** Minimum time between refetches triggered by an unknown `kid`. */
  readonly cooldownMs: number;
  /** How long cached keys are trusted before a refetch. */
  readonly cacheMaxAgeMs: number;
  /** After a failed discovery or JWKS fetch, fail fast for this long instead of hammering the issuer. */
  readonly retryAfterFailureMs: number;
}

/** A jose key resolver for `issuer`; the network is touched only when a token needs it. */
export function createRemoteKeyResolver(issuer: string, configuredJwksUri: string | undefined, options: RemoteKeyOptions): JWTVerifyGetKey {
  let keySet: RemoteJWKSet | undefined;
  let pending: Promise<RemoteJWKSet> | undefined;
  let failure: { readonly at: number; readonly error: SluiceError } | undefined;
  let jwksFailure: { readonly at: number; readonly error: SluiceError } | undefined;

  const build = async (): Promise<RemoteJWKSet> => {
    const jwksUrl =
      configuredJwksUri !== undefined
        ? assertFetchableUrl(configuredJwksUri, `jwksUri of ${issuer}`)
        : await discoverJwksUri(issuer, { timeoutMs: options.fetchTimeoutMs });
    return createRemoteJWKSet(jwksUrl, {
      timeoutDuration: options.fetchTimeoutMs,
      cooldownDuration: options.cooldownMs,
      cacheMaxAge: options.cacheMaxAgeMs,
      // jose's own fetch has no size cap and would surface network failures as untyped errors;
      // ours caps the body and throws SLUICE_ISSUER_UNREACHABLE, which jose passes through.
      [customFetch]: async (url, init) => {
        // jose only calls this when it needs keys it lacks, so failing fast here never blocks a
        // token whose key is cached. jose's cooldown counts from the last *successful* fetch, so
        // without this a down JWKS endpoint would be hit once per incoming token.
        if (jwksFailure !== undefined && performance.now() - jwksFailure.at < options.retryAfterFailureMs) throw jwksFailure.error;
        try {
          const json = await fetchJsonObject(url, `JWKS of ${issuer}`, { timeoutMs: options.fetchTimeoutMs, maxBytes: MAX_JWKS_BYTES, signal: init.signal });
          if (!Array.isArray(json.keys)) throw new SluiceError('SLUICE_ISSUER_UNREACHABLE', `JWKS of ${issuer} has no "keys" array`);
          jwksFailure = undefined;
          return new Response(JSON.stringify(json), { status: 200, headers: { 'content-type': 'application/json' } });
        } catch (err) {
          const error = err instanceof SluiceError ? err : new SluiceError('SLUICE_ISSUER_UNREACHABLE', `cannot fetch the JWKS of ${issuer}`, { cause: err });
          jwksFailure = { at: performance.now(), error };
          throw error;
        }
      },
    });
  };

  const getKeySet = async (): Promise<RemoteJWKSet> => {
    if (keySet !== undefined) return keySet;
    if (failure !== undefined && performance.now() - failure.at < options.retryAfterFailureMs) throw failure.error;
    pending ??= build().then(
      (set) => {
        keySet = set;
        failure = undefined;
        return set;
      },
      (err: unknown) => {
        const error =
          err instanceof SluiceError ? err : new SluiceError('SLUICE_ISSUER_UNREACHABLE', `cannot load the keys of ${issuer}`, { cause: err });
        failure = { at: performance.now(), error };
        throw error;
      },
    ).finally(() => {
      pending = undefined;
    });
    return pending;
  };

  return async (header, token) => (await getKeySet())(header, token);
}
