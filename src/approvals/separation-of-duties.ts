/**
 * Who may answer a request (AC-5 separation of duties, AC-6 least privilege). Checked by the
 * service on every approve and deny, whatever the caller (REST API, CLI, a future console).
 */
import type { Identity } from '../pipeline/types.js';
import { forbidden } from './errors.js';
import type { ApprovalView } from './types.js';

/**
 * The requester may not review its own request: not the same subject, not the same sponsor, and
 * not the human sponsoring the agent that asked (nor an agent sponsored by the requester).
 */
function sameParty(request: ApprovalView['requester'], reviewer: Identity): string | undefined {
  if (reviewer.subject === request.subject) return 'the requester cannot review its own request';
  if (reviewer.sponsor !== undefined && request.sponsor !== undefined && reviewer.sponsor === request.sponsor) {
    return `the reviewer and the requester share the sponsor ${reviewer.sponsor}`;
  }
  if (request.sponsor !== undefined && reviewer.subject === request.sponsor) return 'the sponsor of the requesting agent cannot review its request';
  if (reviewer.sponsor !== undefined && reviewer.sponsor === request.subject) return 'a reviewer sponsored by the requester cannot review its request';
  return undefined;
}

/**
 * Returns the role under which `reviewer` may answer `request`, or throws SLUICE_APPROVAL_FORBIDDEN.
 * `approverRoles` is the set of roles configured `approver: true` now: a role demoted since the
 * request was made no longer qualifies.
 */
export function authorizeReviewer(request: ApprovalView, reviewer: Identity, approverRoles: ReadonlySet<string>): string {
  const conflict = sameParty(request.requester, reviewer);
  if (conflict !== undefined) throw forbidden(`${reviewer.subject} may not review approval request ${request.id}: ${conflict} (separation of duties)`);
  const role = reviewer.roles.find((r) => request.approverRoles.includes(r) && approverRoles.has(r));
  if (role === undefined) {
    throw forbidden(
      `${reviewer.subject} may not review approval request ${request.id}: it needs one of the approver roles ${request.approverRoles.join(', ')} (held: ${reviewer.roles.join(', ') || 'none'})`,
    );
  }
  return role;
}

/** Reviewers see every request; anyone else sees only their own. */
export function canView(request: ApprovalView, viewer: Identity, viewerIsReviewer: boolean): boolean {
  return viewerIsReviewer || viewer.subject === request.requester.subject;
}
