/**
 * Turns a rule's `approval:` block (carried on the Decision) into an `ApprovalSpec`, and checks
 * every review rule of a config at startup: an approver role must exist and be marked
 * `approver: true`, so a rule can never name an agent role as its reviewer (AC-5).
 */
import { parseDuration, type SluiceConfig } from '../config/index.js';
import { SluiceError } from '../errors.js';
import type { ApprovalSpec } from './types.js';

/** Issue 5: a held statement expires after 10 minutes unless the rule or `approvals.defaultTimeout` says otherwise. */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 10 * 60_000;
/** setTimeout holds a signed 32-bit delay; anything longer would fire at once. */
export const MAX_APPROVAL_TIMEOUT_MS = 2_147_483_647;

/** Roles configured with `approver: true`. */
export function approverRoleNames(config: SluiceConfig): string[] {
  return config.identity.roles.filter((r) => r.approver === true).map((r) => r.name);
}

function invalid(message: string): never {
  throw new SluiceError('SLUICE_CONFIG_INVALID', message);
}

function duration(value: unknown, where: string): number {
  if (typeof value !== 'string' && typeof value !== 'number') invalid(`${where}: expected a duration such as 10m`);
  return parseDuration(value, where);
}

export function defaultTimeoutMs(config: SluiceConfig): number {
  const d = config.approvals.defaultTimeout;
  return d === undefined ? DEFAULT_APPROVAL_TIMEOUT_MS : duration(d, 'approvals.defaultTimeout');
}

/**
 * `raw` is a rule's `approval` block (or undefined for a bare `review:` rule). Throws
 * SLUICE_CONFIG_INVALID naming `where` for anything that could let the wrong person approve.
 */
export function resolveApprovalSpec(config: SluiceConfig, raw: Readonly<Record<string, unknown>> | undefined, where = 'approval'): ApprovalSpec {
  const allowed = approverRoleNames(config);
  const r = raw ?? {};
  let approvers: string[];
  if (r.approvers === undefined) {
    approvers = allowed;
  } else {
    if (!Array.isArray(r.approvers) || !r.approvers.every((a): a is string => typeof a === 'string')) invalid(`${where}.approvers: expected a list of role names`);
    approvers = [...new Set(r.approvers)];
    for (const a of approvers) {
      const role = config.identity.roles.find((x) => x.name === a);
      if (role === undefined) invalid(`${where}.approvers: role ${a} is not defined under identity.roles`);
      if (role.approver !== true) invalid(`${where}.approvers: role ${a} is not an approver role (set approver: true on it under identity.roles)`);
    }
  }
  if (approvers.length === 0) invalid(`${where}: no role may approve this rule; mark a reviewers' role with approver: true under identity.roles`);
  const required = r.required === undefined ? 1 : r.required;
  if (typeof required !== 'number' || !Number.isInteger(required) || required < 1 || required > 10) invalid(`${where}.required: expected an integer from 1 to 10`);
  const timeoutMs = r.timeout === undefined ? defaultTimeoutMs(config) : duration(r.timeout, `${where}.timeout`);
  if (timeoutMs < 1 || timeoutMs > MAX_APPROVAL_TIMEOUT_MS) invalid(`${where}.timeout: expected between 1ms and 24 days`);
  const spec: ApprovalSpec = { approvers, required, timeoutMs };
  const withGrant = r.grant === undefined ? spec : { ...spec, grantMs: duration(r.grant, `${where}.grant`) };
  if (withGrant.grantMs !== undefined && withGrant.grantMs < 1) invalid(`${where}.grant: expected a positive duration`);
  return r.explain === true ? { ...withGrant, explain: true } : withGrant;
}

/** Check every review rule of the config; called when the approval service is built. */
export function validateApprovalConfig(config: SluiceConfig): void {
  defaultTimeoutMs(config);
  config.policies.forEach((p, i) => {
    p.rules.forEach((rule, j) => {
      const where = `policies[${i}].rules[${j}].approval`;
      if (rule.review !== undefined || rule.approval !== undefined) resolveApprovalSpec(config, rule.approval, where);
    });
  });
}
