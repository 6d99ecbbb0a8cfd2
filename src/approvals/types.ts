/**
 * The approvals vocabulary: what a held command asks for, who may answer, and what a reviewer sees.
 * A request is bound to one statement (its hash), one session and one identity (AC-3(2), AC-5).
 */
import type { SessionInfo } from '../pipeline/session.js';
import type { Identity } from '../pipeline/types.js';

/** Where the approvals REST API is mounted on the HTTP listener. */
export const APPROVALS_API_PREFIX = '/api/v1/approvals';

export const APPROVAL_STATES = ['pending', 'approved', 'denied', 'expired', 'withdrawn'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];
export type ApprovalFinalState = Exclude<ApprovalState, 'pending'>;

export interface ApprovalSpec {
  /** Roles whose holders may approve; each must be configured with `approver: true`. */
  readonly approvers: readonly string[];
  /** Distinct approvals needed (N of M). */
  readonly required: number;
  readonly timeoutMs: number;
  /** Grant mode: a final approval opens a window of this length for the same fingerprint. */
  readonly grantMs?: number;
  /** The rule asks the engine to run EXPLAIN for an estimated row count. */
  readonly explain?: boolean;
}

export interface ApprovalRequestInput {
  readonly session: SessionInfo;
  /** The statement text, already masked by the caller. */
  readonly text: string;
  /** sha256 of the parsed statement and its bound parameters: the approval covers exactly this. */
  readonly statementHash: string;
  /** Normalised statement fingerprint, the key of grant windows. */
  readonly fingerprint: string;
  /** Parsed facts shown to reviewers (kind, tables, WHERE present, …). */
  readonly facts: Readonly<Record<string, unknown>>;
  readonly rule: string;
  readonly spec: ApprovalSpec;
  readonly estimatedRows?: number;
}

export interface ApprovalOutcome {
  readonly state: ApprovalFinalState;
  /** Subjects that approved (for `approved`), or the one that denied (for `denied`). */
  readonly approvers: readonly string[];
  readonly reason?: string;
}

export interface ApprovalVote {
  readonly subject: string;
  readonly issuer: string;
  /** The approver role that qualified this reviewer. */
  readonly role: string;
  readonly at: number;
  readonly comment?: string;
}

/** Who asked: the requester's identity as a reviewer needs to see it (CI context from its claims). */
export interface ApprovalRequester {
  readonly issuer: string;
  readonly subject: string;
  readonly role: string;
  readonly model?: string;
  readonly sponsor?: string;
  /** Recorded claims such as repository, run_id, workflow, ref, sha, actor. */
  readonly context: Readonly<Record<string, string | number | boolean>>;
}

/** A request as stored and as the REST API returns it. */
export interface ApprovalView {
  readonly id: string;
  readonly state: ApprovalState;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly decidedAt?: number;
  readonly requester: ApprovalRequester;
  readonly sessionId: string;
  readonly connection: string;
  readonly protocol: string;
  readonly source: string;
  readonly text: string;
  readonly statementHash: string;
  readonly fingerprint: string;
  readonly facts: Readonly<Record<string, unknown>>;
  readonly rule: string;
  readonly estimatedRows?: number;
  readonly approverRoles: readonly string[];
  readonly required: number;
  readonly approvals: readonly ApprovalVote[];
  readonly deniedBy?: ApprovalVote;
  /** Why it was denied, withdrawn or expired. */
  readonly reason?: string;
  /** Grant mode: length of the window, and its end once approved. */
  readonly grantMs?: number;
  readonly grantExpiresAt?: number;
  /** Where to approve it (REST URL). */
  readonly url: string;
  /** Gateway node that holds the waiting client. */
  readonly node: string;
}

export interface ApprovalGrant {
  /** The request whose approval opened the window. */
  readonly id: string;
  readonly expiresAt: number;
}

export interface ApprovalHandle {
  readonly id: string;
  readonly url: string;
  readonly expiresAt: number;
  /** Settles (never rejects) when the request leaves `pending`. */
  readonly outcome: Promise<ApprovalOutcome>;
}

export interface ApprovalListFilter {
  readonly state?: ApprovalState;
  /** Newest first; default 100, at most 1000. */
  readonly limit?: number;
}

export interface ApprovalService {
  /**
   * Persist a pending request, record `approval.requested` and notify reviewers in the background.
   * Throws SLUICE_AUDIT_UNAVAILABLE if the request cannot be recorded (the command must not run).
   */
  request(input: ApprovalRequestInput): Promise<ApprovalHandle>;
  /** The grant window covering (issuer, subject, role, connection, fingerprint) now, if any. */
  findGrant(session: SessionInfo, fingerprint: string): ApprovalGrant | undefined;
  /** Client cancelled or disconnected. A request no longer pending is left as it is. */
  withdraw(id: string, reason: string): Promise<void>;
  approve(id: string, approver: Identity, comment?: string): Promise<ApprovalView>;
  deny(id: string, approver: Identity, reason: string): Promise<ApprovalView>;
  get(id: string): Promise<ApprovalView | undefined>;
  list(filter?: ApprovalListFilter): Promise<ApprovalView[]>;
  /** Whether `identity` holds a role that may approve something (an approver role). */
  isReviewer(identity: Identity): boolean;
  /** Withdraw every request this node holds ('gateway restarted'), settle waiters, close the store. */
  close(): Promise<void>;
}

export type ApprovalEventType = 'approval.requested' | 'approval.approved' | 'approval.denied' | 'approval.expired' | 'approval.withdrawn';

/**
 * The audit events the service emits: a subset of the audit log's `AuditEventInput`, written as a
 * type alias so it is also assignable to the pipeline's `record(event)` parameter.
 */
export type ApprovalAuditEvent = {
  readonly type: ApprovalEventType;
  readonly session?: SessionInfo;
  readonly sessionId?: string;
  readonly connection?: string;
  readonly protocol?: string;
  readonly source?: string;
  /** Who acted: the requester for requested/expired/withdrawn, the reviewer for approved/denied. */
  readonly identity?: {
    readonly issuer: string;
    readonly subject: string;
    readonly roles?: readonly string[];
    readonly claims?: Readonly<Record<string, unknown>>;
    readonly model?: string;
    readonly sponsor?: string;
    readonly tokenId?: string;
  };
  readonly role?: string;
  readonly command?: { readonly text: string; readonly kind?: string; readonly objects?: readonly string[] };
  readonly decision?: { readonly effect: 'review'; readonly rule: string; readonly reason?: string };
  readonly outcome?: 'success' | 'failure' | 'denied' | 'pending' | 'cancelled';
  readonly approval: {
    readonly id: string;
    readonly approver?: string;
    readonly approvers?: readonly string[];
    readonly reason?: string;
    readonly expiresAt?: number;
  };
  readonly details?: Readonly<Record<string, unknown>>;
};
