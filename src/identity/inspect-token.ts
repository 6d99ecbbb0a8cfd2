/**
 * `sluice token inspect`: the verdict the gateway would reach on a token, as data. Only a token
 * that passed verification contributes subject, issuer and roles; a rejected token's claims are
 * unverified and are not reported.
 */
import type { SluiceConfig } from '../config/index.js';
import { isSluiceError } from '../errors.js';
import { createAuthenticator, type IdentityDeps } from './authenticator.js';

export interface InspectResult {
  readonly valid: boolean;
  readonly subject?: string;
  readonly issuer?: string;
  readonly roles: string[];
  /** ISO 8601. */
  readonly expiresAt?: string;
  readonly model?: string;
  readonly sponsor?: string;
  readonly error?: string;
  readonly code?: string;
}

/** Misconfiguration still throws (SLUICE_CONFIG_INVALID): that is not a verdict on the token. */
export async function inspectToken(config: SluiceConfig, token: string, deps: IdentityDeps = {}): Promise<InspectResult> {
  const authenticator = await createAuthenticator(config, deps);
  try {
    const identity = await authenticator.verify(token);
    return {
      valid: true,
      subject: identity.subject,
      issuer: identity.issuer,
      roles: [...identity.roles],
      expiresAt: new Date(identity.expiresAt * 1000).toISOString(),
      ...(identity.model !== undefined ? { model: identity.model } : {}),
      ...(identity.sponsor !== undefined ? { sponsor: identity.sponsor } : {}),
    };
  } catch (err) {
    if (!isSluiceError(err)) throw err;
    return { valid: false, roles: [], error: err.message, code: err.code };
  }
}
