/** Just-in-time approval of risky commands: requests, separation of duties, notifications, REST API. */
export { createApprovalService, newApprovalId, isApprovalId, outcomeOf, APPROVALS_API_PREFIX, RESTART_REASON } from './service.js';
export type { ApprovalServiceDeps } from './service.js';
export { createApprovalsApi } from './api.js';
export type { ApprovalsApiOptions } from './api.js';
export { resolveApprovalSpec, validateApprovalConfig, approverRoleNames, DEFAULT_APPROVAL_TIMEOUT_MS } from './resolve-spec.js';
export { ApprovalNotPendingError } from './errors.js';
export { holdNotice, outcomeError } from './hold-messages.js';
export { signBody, slackMessage, webhookPayload } from './notify.js';
export { openSqliteApprovalStore } from './sqlite-store.js';
export { openPostgresApprovalStore } from './postgres-store.js';
export type { ApprovalStore, StoredApproval } from './store.js';
export { APPROVAL_STATES } from './types.js';
export type {
  ApprovalState,
  ApprovalFinalState,
  ApprovalSpec,
  ApprovalRequestInput,
  ApprovalOutcome,
  ApprovalVote,
  ApprovalRequester,
  ApprovalView,
  ApprovalGrant,
  ApprovalHandle,
  ApprovalListFilter,
  ApprovalService,
  ApprovalEventType,
  ApprovalAuditEvent,
} from './types.js';
