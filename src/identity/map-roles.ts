/**
 * Claim→role mapping, compiled once from `identity.roles`. Remote tokens earn a role only through
 * its `when` condition (CEL over `claims`, `issuer`, `subject`); a role without `when` is never
 * granted to a remote token, however its claims look — including a `sluice_roles` claim, which
 * only the local issuer's tokens are trusted to carry.
 */
import type { SluiceConfig } from '../config/index.js';
import { SluiceError } from '../errors.js';
import { compileCondition, toCelValue, type Condition } from '../pipeline/cel.js';

/** The value of `identity.roles[].issuer` that restricts a role to the local issuer. */
export const LOCAL_ISSUER_REF = 'local';

export interface RoleContext {
  readonly issuer: string;
  readonly subject: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface RoleMap {
  /** Roles whose `when` holds for this remote token. */
  grantRemote(context: RoleContext): string[];
  /** The requested roles a local token may hold: defined, and not restricted to another issuer. */
  grantLocal(requested: readonly string[]): string[];
  /** Names of roles a local token can be minted for (for error messages). */
  readonly localRoleNames: readonly string[];
}

interface CompiledRole {
  readonly name: string;
  readonly issuer: string | undefined;
  readonly when: Condition | undefined;
}

/** Throws SLUICE_CONFIG_INVALID at startup for a bad condition or an issuer that is not configured. */
export function compileRoleMap(config: SluiceConfig): RoleMap {
  const remoteIssuers = new Set<string>();
  for (const iss of config.identity.issuers) if (iss.kind === 'remote') remoteIssuers.add(iss.issuer);

  const roles: CompiledRole[] = config.identity.roles.map((role, i) => {
    const where = `identity.roles[${i}]`;
    if (role.issuer !== undefined && role.issuer !== LOCAL_ISSUER_REF && !remoteIssuers.has(role.issuer)) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}.issuer: ${role.issuer} is not one of identity.issuers (or "${LOCAL_ISSUER_REF}")`);
    }
    return {
      name: role.name,
      issuer: role.issuer,
      when: role.when === undefined ? undefined : compileCondition(role.when, `${where}.when`),
    };
  });
  const localRoles = roles.filter((r) => r.issuer === undefined || r.issuer === LOCAL_ISSUER_REF);
  const localNames = new Set(localRoles.map((r) => r.name));

  return {
    grantRemote(context) {
      const cel = { claims: toCelValue(context.claims), issuer: context.issuer, subject: context.subject };
      const granted: string[] = [];
      for (const role of roles) {
        if (role.when === undefined) continue;
        if (role.issuer !== undefined && role.issuer !== context.issuer) continue;
        if (role.when(cel) === true) granted.push(role.name);
      }
      return granted;
    },
    grantLocal(requested) {
      return [...new Set(requested)].filter((name) => localNames.has(name));
    },
    localRoleNames: localRoles.map((r) => r.name),
  };
}
