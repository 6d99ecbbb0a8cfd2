/**
 * The local issuer: Sluice signs short-lived EdDSA tokens itself, for operators and demo agents
 * that have no OIDC provider. Its tokens name their roles in `sluice_roles`; verification still
 * runs every check a remote token gets (signature, aud, exp, lifetime cap).
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { SignJWT } from 'jose';
import type { ResolvedLocalIssuer, SluiceConfig } from '../config/index.js';
import { SluiceError } from '../errors.js';
import { loadOrCreateLocalKey } from './local-key-file.js';
import { compileRoleMap } from './map-roles.js';

/** `iss` of local tokens. Not a URL, so no remote issuer (config requires https/loopback URLs) can claim it. */
export const LOCAL_ISSUER = 'sluice:local';
/** EdDSA over Ed25519 (RFC 8037) is the only algorithm local tokens may use. */
export const LOCAL_ALGORITHM = 'EdDSA';
export const DEFAULT_LOCAL_TTL_MS = 15 * 60_000;
/** Claim carrying a local token's roles. */
export const ROLES_CLAIM = 'sluice_roles';

const MAX_SUBJECT_LENGTH = 256;

export interface MintOptions {
  readonly role: string | readonly string[];
  /** Default: the OS user name + "@local". */
  readonly subject?: string;
  readonly ttlMs?: number;
  readonly model?: string;
  readonly sponsor?: string;
}

export interface MintDeps {
  /** Milliseconds since epoch. */
  readonly clock?: () => number;
}

export function findLocalIssuer(config: SluiceConfig): ResolvedLocalIssuer | undefined {
  for (const iss of config.identity.issuers) if (iss.kind === 'local') return iss;
  return undefined;
}

/** Mint a local token. Refuses (typed SluiceError) unknown roles, a TTL over the cap, or a config with no local issuer. */
export async function mintLocalToken(config: SluiceConfig, opts: MintOptions, deps: MintDeps = {}): Promise<string> {
  const issuer = findLocalIssuer(config);
  if (issuer === undefined) {
    throw new SluiceError('SLUICE_ISSUER_UNKNOWN', 'no local issuer is configured; add "- local: true" under identity.issuers to mint tokens');
  }
  const roles = checkRoles(config, typeof opts.role === 'string' ? [opts.role] : opts.role);
  const ttlMs = opts.ttlMs ?? DEFAULT_LOCAL_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs < 1000) {
    throw new SluiceError('SLUICE_BAD_REQUEST', 'token TTL must be at least 1 second');
  }
  if (ttlMs > issuer.maxTokenLifetimeMs) {
    throw new SluiceError(
      'SLUICE_TOKEN_TOO_LONG_LIVED',
      `token TTL of ${Math.round(ttlMs / 1000)} s exceeds the local issuer's maximum of ${Math.floor(issuer.maxTokenLifetimeMs / 1000)} s`,
    );
  }
  const subject = opts.subject ?? defaultSubject();
  checkText(subject, 'subject');
  if (opts.model !== undefined) checkText(opts.model, 'model');
  if (opts.sponsor !== undefined) checkText(opts.sponsor, 'sponsor');

  const key = await loadOrCreateLocalKey(config.dataDir);
  const iat = Math.floor((deps.clock ?? Date.now)() / 1000);
  const claims: Record<string, unknown> = { [ROLES_CLAIM]: roles };
  if (opts.model !== undefined) claims.sluice_model = opts.model;
  if (opts.sponsor !== undefined) claims.sluice_sponsor = opts.sponsor;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: LOCAL_ALGORITHM, typ: 'JWT', kid: key.kid })
    .setIssuer(LOCAL_ISSUER)
    .setAudience(issuer.audience)
    .setSubject(subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.floor(ttlMs / 1000))
    .setJti(randomUUID())
    .sign(key.privateKey);
}

function checkRoles(config: SluiceConfig, requested: readonly string[]): string[] {
  const roleMap = compileRoleMap(config);
  if (requested.length === 0) throw new SluiceError('SLUICE_BAD_REQUEST', `name at least one role; defined roles: ${listRoles(roleMap.localRoleNames)}`);
  const granted = roleMap.grantLocal(requested);
  const refused = requested.filter((r) => !granted.includes(r));
  if (refused.length > 0) {
    throw new SluiceError(
      'SLUICE_BAD_REQUEST',
      `role ${refused.map((r) => JSON.stringify(r)).join(', ')} is not defined for the local issuer under identity.roles; defined roles: ${listRoles(roleMap.localRoleNames)}`,
    );
  }
  return granted;
}

function listRoles(names: readonly string[]): string {
  return names.length === 0 ? '(none)' : names.join(', ');
}

function checkText(value: string, what: string): void {
  if (value.length === 0 || value.length > MAX_SUBJECT_LENGTH || /[\x00-\x1f\x7f]/.test(value)) {
    throw new SluiceError('SLUICE_BAD_REQUEST', `${what} must be 1–${MAX_SUBJECT_LENGTH} printable characters`);
  }
}

function defaultSubject(): string {
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    // No passwd entry (common in containers): fall back to the environment.
  }
  name ||= process.env.USER ?? process.env.USERNAME ?? 'unknown';
  return `${name}@local`;
}
