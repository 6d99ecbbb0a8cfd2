/**
 * OpenID Connect Discovery 1.0 §4: the issuer publishes `<issuer>/.well-known/openid-configuration`,
 * and §4.3 requires the document's `issuer` to equal the URL it was fetched for — otherwise one
 * issuer could hand out another's keys (the "mix-up" the spec warns about).
 * https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation
 */
import { SluiceError } from '../errors.js';
import { assertFetchableUrl, fetchJsonObject, type FetchLimits } from './fetch-json.js';

/** A discovery document is a few KiB; 64 KiB leaves room for large providers and nothing more. */
export const MAX_DISCOVERY_BYTES = 64 * 1024;

export function discoveryUrl(issuer: string): string {
  // §4.1: remove any trailing "/" from the issuer, then append the well-known path.
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/** Fetch the issuer's discovery document and return its vetted `jwks_uri`. */
export async function discoverJwksUri(issuer: string, limits: Omit<FetchLimits, 'maxBytes'>): Promise<URL> {
  const doc = await fetchJsonObject(discoveryUrl(issuer), `discovery document of ${issuer}`, { ...limits, maxBytes: MAX_DISCOVERY_BYTES });
  return readJwksUri(issuer, doc);
}

/** Validate a discovery document fetched for `issuer` and return its `jwks_uri`. */
export function readJwksUri(issuer: string, doc: Readonly<Record<string, unknown>>): URL {
  if (doc.issuer !== issuer) {
    throw new SluiceError(
      'SLUICE_ISSUER_UNREACHABLE',
      `discovery document of ${issuer} names a different issuer; refusing its keys (OIDC Discovery §4.3)`,
    );
  }
  if (typeof doc.jwks_uri !== 'string') {
    throw new SluiceError('SLUICE_ISSUER_UNREACHABLE', `discovery document of ${issuer} has no jwks_uri`);
  }
  const jwksUri = assertFetchableUrl(doc.jwks_uri, `jwks_uri of ${issuer}`);
  // Loopback http is a test/sidecar allowance for loopback issuers. An https issuer pointing us at
  // plain http (even on loopback) would be a downgrade, or a way to make the gateway probe its own host.
  if (new URL(issuer).protocol === 'https:' && jwksUri.protocol !== 'https:') {
    throw new SluiceError('SLUICE_ISSUER_UNREACHABLE', `jwks_uri of ${issuer} must use https:// like the issuer itself`);
  }
  return jwksUri;
}
