/**
 * Turns a verified claims set into the pipeline's `Identity`. Runs only after signature and
 * claim checks passed; still treats every claim as `unknown` and narrows it, because "signed" means
 * "the issuer said so", not "the shape is right".
 */
import type { JWTPayload } from 'jose';
import { SluiceError } from '../errors.js';
import type { Identity } from '../pipeline/types.js';

export interface IdentityParts {
  readonly issuer: string;
  readonly subject: string;
  readonly roles: readonly string[];
  readonly payload: JWTPayload;
}

/** The subject: `sub`, or the issuer's configured `subjectClaim`. Must be a non-empty string. */
export function readSubject(payload: JWTPayload, claim = 'sub'): string {
  const value = payload[claim];
  if (typeof value !== 'string' || value === '') {
    throw new SluiceError('SLUICE_TOKEN_INVALID', `token has no string "${claim}" claim to identify its subject`);
  }
  return value;
}

/** The roles a local token names; anything but an array of strings is a malformed token. */
export function readRolesClaim(payload: JWTPayload, claim: string): string[] {
  const value = payload[claim];
  if (!Array.isArray(value) || !value.every((r): r is string => typeof r === 'string')) {
    throw new SluiceError('SLUICE_TOKEN_INVALID', `token "${claim}" claim must be an array of role names`);
  }
  return value;
}

export function buildIdentity(parts: IdentityParts): Identity {
  const { payload } = parts;
  const model = stringClaim(payload.sluice_model) ?? stringClaim(payload.model);
  // RFC 8693 §4.1: `act.sub` names the party acting on the subject's behalf — the sponsor.
  const act = payload.act;
  const actSub = typeof act === 'object' && act !== null && !Array.isArray(act) ? stringClaim((act as Record<string, unknown>).sub) : undefined;
  const sponsor = stringClaim(payload.sluice_sponsor) ?? actSub;
  const tokenId = stringClaim(payload.jti);
  return Object.freeze({
    issuer: parts.issuer,
    subject: parts.subject,
    // Frozen so no later stage can change what CEL conditions and the audit log see.
    claims: deepFreeze(payload) as Readonly<Record<string, unknown>>,
    roles: Object.freeze([...parts.roles]),
    expiresAt: payload.exp as number,
    ...(model !== undefined ? { model } : {}),
    ...(sponsor !== undefined ? { sponsor } : {}),
    ...(tokenId !== undefined ? { tokenId } : {}),
  });
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
