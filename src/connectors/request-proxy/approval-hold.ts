/**
 * `review` for request/response protocols. A request is held for up to `waitMs` while an approver
 * decides; if nobody has by then the agent gets the approval id (202 for HTTP, 403 Status for
 * Kubernetes) and retries the *same* request later. Retries of a request that was approved after
 * its answer went out pass once; retries while it is still pending wait on the same approval
 * instead of opening another; an approved grant window covers its fingerprint (see
 * docs/http-and-kubernetes.md). Approvals are bound to the request by `statementHash` (method,
 * path, query and body digest), so an approved `DELETE /orders/1` never lets `/orders/2` through.
 */
import { SluiceError } from '../../errors.js';
import type { SessionInfo } from '../../pipeline/session.js';
import type { Decision } from '../../pipeline/types.js';
import type { ApprovalsLike, HoldOutcome } from '../engine.js';

export type HoldResult =
  | { readonly kind: 'proceed'; readonly approvalId: string; readonly via: 'approved' | 'grant' | 'retry' }
  | { readonly kind: 'pending'; readonly approvalId: string; readonly url: string }
  | { readonly kind: 'refused'; readonly error: SluiceError; readonly approvalId?: string };

export interface HoldInput {
  readonly session: SessionInfo;
  readonly decision: Decision;
  /** Masked request text for the approver. */
  readonly text: string;
  readonly statementHash: string;
  readonly fingerprint: string;
  readonly facts: Readonly<Record<string, unknown>>;
  readonly waitMs: number;
  /** Resolves when the client went away while held. */
  readonly clientGone: Promise<void>;
}

export interface ApprovalHolder {
  settle(input: HoldInput): Promise<HoldResult>;
}

interface Tracked {
  readonly id: string;
  readonly url: string;
  readonly outcome: Promise<HoldOutcome>;
  readonly errorFor: (o: HoldOutcome) => SluiceError;
  state: 'pending' | 'approved' | 'used' | 'closed';
  decidedAt?: number;
}

/** How long an approval that came in after the agent was told to retry stays redeemable. */
const RETRY_WINDOW_MS = 15 * 60_000;
const MAX_TRACKED = 10_000;

export function createApprovalHolder(approvals: ApprovalsLike | undefined, clock: () => number = Date.now): ApprovalHolder {
  const tracked = new Map<string, Tracked>();
  const keyOf = (s: SessionInfo, statementHash: string): string => JSON.stringify([s.identity.issuer, s.identity.subject, s.role, s.connection, statementHash]);

  const prune = (): void => {
    if (tracked.size < MAX_TRACKED) return;
    const now = clock();
    for (const [k, t] of tracked) if (t.state !== 'pending' && (t.state !== 'approved' || now - (t.decidedAt ?? 0) > RETRY_WINDOW_MS)) tracked.delete(k);
  };

  const refusal = (o: HoldOutcome, t: Tracked): HoldResult => {
    const id = t.id;
    if (o.state !== 'approved') {
      // The approvals stage words its own refusals (who denied, when it expired).
      try {
        return { kind: 'refused', approvalId: id, error: t.errorFor(o) };
      } catch {
        // fall through to the generic wording below
      }
    }
    switch (o.state) {
      case 'denied':
        return { kind: 'refused', approvalId: id, error: new SluiceError('SLUICE_APPROVAL_DENIED', `approval ${id} was denied${o.reason !== undefined ? `: ${o.reason}` : ''}`) };
      case 'expired':
        return { kind: 'refused', approvalId: id, error: new SluiceError('SLUICE_APPROVAL_EXPIRED', `approval ${id} expired before anyone approved it`) };
      case 'withdrawn':
        return { kind: 'refused', approvalId: id, error: new SluiceError('SLUICE_APPROVAL_REQUIRED', `approval ${id} was withdrawn${o.reason !== undefined ? `: ${o.reason}` : ''}`) };
      case 'approved':
        return { kind: 'proceed', approvalId: id, via: 'approved' };
      default: {
        const never: never = o.state;
        return { kind: 'refused', error: new SluiceError('SLUICE_APPROVAL_REQUIRED', `approval in unknown state ${String(never)}`) };
      }
    }
  };

  return {
    async settle(input) {
      if (approvals === undefined) {
        return { kind: 'refused', error: new SluiceError('SLUICE_APPROVAL_REQUIRED', `${input.decision.reason}; approvals are not configured on this gateway`) };
      }
      const grant = approvals.findGrant(input.session, input.fingerprint);
      if (grant !== undefined) return { kind: 'proceed', approvalId: grant.id, via: 'grant' };
      const key = keyOf(input.session, input.statementHash);
      let t = tracked.get(key);
      if (t !== undefined && t.state === 'approved') {
        if (clock() - (t.decidedAt ?? 0) <= RETRY_WINDOW_MS) {
          t.state = 'used';
          tracked.delete(key);
          return { kind: 'proceed', approvalId: t.id, via: 'retry' };
        }
        tracked.delete(key);
        t = undefined;
      }
      if (t === undefined || t.state !== 'pending') {
        prune();
        const held = await approvals.hold({
          session: input.session,
          text: input.text,
          statementHash: input.statementHash,
          fingerprint: input.fingerprint,
          facts: input.facts,
          rule: input.decision.rule,
          ...(input.decision.approval !== undefined ? { approval: input.decision.approval } : {}),
        });
        const fresh: Tracked = { id: held.id, url: held.url, outcome: held.outcome, errorFor: (o) => held.errorFor(o), state: 'pending' };
        tracked.set(key, fresh);
        held.outcome.then(
          (o) => {
            if (fresh.state !== 'pending') return;
            if (o.state === 'approved') {
              fresh.state = 'approved';
              fresh.decidedAt = clock();
            } else {
              fresh.state = 'closed';
              if (tracked.get(key) === fresh) tracked.delete(key);
            }
          },
          () => {
            fresh.state = 'closed';
            if (tracked.get(key) === fresh) tracked.delete(key);
          },
        );
        t = fresh;
      }
      const current = t;
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        current.outcome.then((o) => ({ o }) as const),
        new Promise<'timeout'>((r) => {
          timer = setTimeout(() => r('timeout'), Math.max(0, input.waitMs));
        }),
        input.clientGone.then(() => 'gone' as const),
      ]).finally(() => clearTimeout(timer));
      if (waited === 'timeout') return { kind: 'pending', approvalId: current.id, url: current.url };
      if (waited === 'gone') {
        // Nobody is waiting and nobody will retry this exact hold: withdraw it so approvers are not asked in vain.
        if (current.state === 'pending') {
          current.state = 'closed';
          if (tracked.get(key) === current) tracked.delete(key);
          await approvals.withdraw(current.id, 'client disconnected while held').catch(() => undefined);
        }
        return { kind: 'refused', approvalId: current.id, error: new SluiceError('SLUICE_APPROVAL_REQUIRED', 'client disconnected while held') };
      }
      if (waited.o.state === 'approved') {
        current.state = 'used';
        if (tracked.get(key) === current) tracked.delete(key);
      }
      return refusal(waited.o, current);
    },
  };
}
