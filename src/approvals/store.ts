/**
 * Where requests live: one table (`sluice_approvals`) in the configured store, SQLite or
 * PostgreSQL, behind this small interface. A row holds the request as JSON plus the columns the
 * service queries by; `version` makes every transition a compare-and-set, so two reviewers (or
 * two replicas) racing on one request cannot both win.
 */
import type { ApprovalState, ApprovalView } from './types.js';

export interface StoredApproval {
  readonly view: ApprovalView;
  readonly version: number;
}

export interface ApprovalStore {
  /** True when other gateway replicas may change rows (PostgreSQL): the service then polls the states of requests it holds. */
  readonly shared: boolean;
  insert(view: ApprovalView): Promise<void>;
  /** Write `next` only if the row is still at `version`; false when someone else changed it first. */
  update(next: ApprovalView, version: number): Promise<boolean>;
  get(id: string): Promise<StoredApproval | undefined>;
  /** Newest first. */
  list(filter: { readonly state?: ApprovalState; readonly limit: number }): Promise<ApprovalView[]>;
  /** Pending requests held by `node` (left over by a crash when read at startup). */
  pendingOf(node: string): Promise<StoredApproval[]>;
  /** Current states of the given ids (missing ids are omitted). */
  states(ids: readonly string[]): Promise<Map<string, ApprovalState>>;
  /** Approved requests whose grant window is still open at `now`. */
  openGrants(now: number): Promise<ApprovalView[]>;
  close(): Promise<void>;
}

export const TABLE = 'sluice_approvals';

export function parseView(body: string): ApprovalView {
  const v: unknown = JSON.parse(body);
  if (v === null || typeof v !== 'object' || typeof (v as { id?: unknown }).id !== 'string') throw new TypeError('approval row body is not a request');
  return v as ApprovalView;
}
