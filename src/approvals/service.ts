/**
 * The approval service: holds review requests in the store, enforces who may answer them (AC-5),
 * settles each waiting client exactly once, and records every transition in the audit log
 * (AC-2(4)). A waiter costs one promise and one timer, so hundreds of held statements are cheap.
 *
 * Transitions are serialised per request in this process and compare-and-set in the store, and a
 * transition takes effect only once its audit event is written: if the audit log refuses an
 * approval, the approval is rolled back and the statement stays held (fail closed).
 */
import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../config/index.js';
import { SluiceError } from '../errors.js';
import type { SessionInfo } from '../pipeline/session.js';
import type { Identity } from '../pipeline/types.js';
import { ApprovalNotPendingError, notFound } from './errors.js';
import { createNotifier, type NotifierOptions } from './notify.js';
import { openPostgresApprovalStore } from './postgres-store.js';
import { approverRoleNames, MAX_APPROVAL_TIMEOUT_MS, validateApprovalConfig } from './resolve-spec.js';
import { authorizeReviewer } from './separation-of-duties.js';
import { openSqliteApprovalStore } from './sqlite-store.js';
import type { ApprovalStore } from './store.js';
import type {
  ApprovalAuditEvent,
  ApprovalGrant,
  ApprovalOutcome,
  ApprovalRequestInput,
  ApprovalService,
  ApprovalState,
  ApprovalView,
  ApprovalVote,
} from './types.js';
import { APPROVAL_STATES, APPROVALS_API_PREFIX } from './types.js';

export interface ApprovalServiceDeps {
  /** Append an audit event durably (the pipeline's `record`); a rejection fails the transition. */
  readonly record: (event: ApprovalAuditEvent) => Promise<void>;
  /** Milliseconds since the epoch; drives expiry checks and grant windows. Default Date.now. */
  readonly clock?: () => number;
  /** Used for notifications. Default the global fetch. */
  readonly fetch?: typeof fetch;
  /** Base URL reviewers reach the gateway's HTTP listener at. Default approvals.publicUrl, else http://<listen.http>. */
  readonly publicUrl?: string;
  readonly log?: (line: string) => void;
  /** Notification retry settings (attempts, baseDelayMs, timeoutMs). */
  readonly notify?: Omit<NotifierOptions, 'fetch' | 'log'>;
  /** A store to use instead of the one `config.store` names (tests). */
  readonly store?: ApprovalStore;
  /** Shared (PostgreSQL) stores: how often to look for decisions made by other replicas. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Request id source. Default `apr_` + 96 random bits. */
  readonly newId?: () => string;
}

/** Mount point of the REST API; request URLs point under it. */
export { APPROVALS_API_PREFIX };
export const RESTART_REASON = 'gateway restarted';
const MAX_NOTE = 1000;
const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 1000;
/** Claims kept as the requester's CI context (GitHub Actions names and Sluice's own). */
const CONTEXT_CLAIMS = ['repository', 'repository_owner', 'ref', 'sha', 'run_id', 'run_attempt', 'workflow', 'job_workflow_ref', 'environment', 'actor', 'event_name'] as const;

export function newApprovalId(): string {
  return 'apr_' + randomBytes(12).toString('base64url');
}

/** Ids are `apr_` + base64url; anything else is refused before it reaches the store. */
export function isApprovalId(id: string): boolean {
  return /^apr_[A-Za-z0-9_-]{8,64}$/.test(id);
}

interface Held {
  readonly resolve: (o: ApprovalOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Step {
  readonly next: ApprovalView;
  readonly events: readonly ApprovalAuditEvent[];
  /** Fail closed: undo the state change if its audit event cannot be written. */
  readonly rollbackOnAuditFailure: boolean;
  /** Thrown after the step commits (an approval that found the request already expired). */
  readonly thenThrow?: Error;
}

type StepFn = (current: ApprovalView, now: number) => Step | ApprovalView;

function checkNote(value: string | undefined, what: string, required: boolean): string | undefined {
  if (value === undefined || value.trim() === '') {
    if (required) throw new SluiceError('SLUICE_BAD_REQUEST', `a ${what} is required`);
    return undefined;
  }
  const v = value.trim();
  if (v.length > MAX_NOTE) throw new SluiceError('SLUICE_BAD_REQUEST', `${what} is longer than ${MAX_NOTE} characters`);
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(v)) throw new SluiceError('SLUICE_BAD_REQUEST', `${what} contains control characters`);
  return v;
}

function pickContext(claims: Readonly<Record<string, unknown>>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const k of CONTEXT_CLAIMS) {
    const v = claims[k];
    if (typeof v === 'string') out[k] = v.slice(0, 512);
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

export function outcomeOf(view: ApprovalView): ApprovalOutcome | undefined {
  switch (view.state) {
    case 'pending':
      return undefined;
    case 'approved':
      return { state: 'approved', approvers: view.approvals.map((a) => a.subject) };
    case 'denied':
      return { state: 'denied', approvers: view.deniedBy === undefined ? [] : [view.deniedBy.subject], ...(view.reason !== undefined ? { reason: view.reason } : {}) };
    case 'expired':
    case 'withdrawn':
      return { state: view.state, approvers: [], ...(view.reason !== undefined ? { reason: view.reason } : {}) };
    default: {
      const never: never = view.state;
      throw new SluiceError('SLUICE_INTERNAL', `unknown approval state ${String(never)}`);
    }
  }
}

function requesterIdentity(view: ApprovalView): NonNullable<ApprovalAuditEvent['identity']> {
  const r = view.requester;
  return {
    issuer: r.issuer,
    subject: r.subject,
    roles: [r.role],
    claims: r.context,
    ...(r.model !== undefined ? { model: r.model } : {}),
    ...(r.sponsor !== undefined ? { sponsor: r.sponsor } : {}),
  };
}

function reviewerIdentity(who: Identity): NonNullable<ApprovalAuditEvent['identity']> {
  return {
    issuer: who.issuer,
    subject: who.subject,
    roles: who.roles,
    claims: who.claims,
    ...(who.model !== undefined ? { model: who.model } : {}),
    ...(who.sponsor !== undefined ? { sponsor: who.sponsor } : {}),
    ...(who.tokenId !== undefined ? { tokenId: who.tokenId } : {}),
  };
}

/** The fields every event of one request shares: its session, statement and rule. */
function about(view: ApprovalView): Pick<ApprovalAuditEvent, 'sessionId' | 'connection' | 'protocol' | 'source' | 'command' | 'decision'> {
  const kind = typeof view.facts.kind === 'string' ? view.facts.kind : undefined;
  return {
    sessionId: view.sessionId,
    connection: view.connection,
    protocol: view.protocol,
    source: view.source,
    command: { text: view.text, ...(kind !== undefined ? { kind } : {}) },
    decision: { effect: 'review', rule: view.rule },
  };
}

function grantKey(issuer: string, subject: string, role: string, connection: string, fingerprint: string): string {
  return JSON.stringify([issuer, subject, role, connection, fingerprint]);
}

function baseUrl(config: SluiceConfig, override: string | undefined): string {
  const raw = override ?? config.approvals.publicUrl ?? (config.listen.http !== undefined ? `http://${config.listen.http}` : '');
  return raw.replace(/\/+$/, '');
}

export async function createApprovalService(config: SluiceConfig, deps: ApprovalServiceDeps): Promise<ApprovalService> {
  validateApprovalConfig(config);
  const clock = deps.clock ?? Date.now;
  const log = deps.log ?? (() => undefined);
  const newId = deps.newId ?? newApprovalId;
  const approverRoles = new Set(approverRoleNames(config));
  const urlBase = baseUrl(config, deps.publicUrl);
  const notifier = createNotifier(config, { ...deps.notify, ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}), log });
  const store = deps.store ?? ('sqlite' in config.store ? openSqliteApprovalStore(config.store.sqlite) : await openPostgresApprovalStore(config.store.postgres.reveal()));
  const node = config.node;

  const held = new Map<string, Held>();
  const locks = new Map<string, Promise<unknown>>();
  const grants = new Map<string, ApprovalGrant>();
  let closed = false;

  const record = async (event: ApprovalAuditEvent): Promise<void> => {
    try {
      await deps.record(event);
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE') throw err;
      throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit log unavailable: approval transition refused', { cause: err });
    }
  };

  /** Run `fn` after every earlier transition of `id` in this process. */
  const serial = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    locks.set(id, tail);
    void tail.then(() => {
      if (locks.get(id) === tail) locks.delete(id);
    });
    return run;
  };

  const openGrant = (view: ApprovalView): void => {
    if (view.state !== 'approved' || view.grantExpiresAt === undefined) return;
    const r = view.requester;
    grants.set(grantKey(r.issuer, r.subject, r.role, view.connection, view.fingerprint), { id: view.id, expiresAt: view.grantExpiresAt });
  };

  const settle = (view: ApprovalView): void => {
    const outcome = outcomeOf(view);
    if (outcome === undefined) return;
    openGrant(view);
    const h = held.get(view.id);
    if (h === undefined) return;
    held.delete(view.id);
    if (h.timer !== undefined) clearTimeout(h.timer);
    h.resolve(outcome);
  };

  /** Apply `fn` to the stored request; retries when another replica changed the row in between. */
  const transition = (id: string, fn: StepFn): Promise<ApprovalView> =>
    serial(id, async () => {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const stored = await store.get(id);
        if (stored === undefined) throw notFound(id);
        const step = fn(stored.view, clock());
        if (!('next' in step)) return step;
        if (!(await store.update(step.next, stored.version))) continue;
        try {
          for (const event of step.events) await record(event);
        } catch (err) {
          if (step.rollbackOnAuditFailure) {
            await store.update(stored.view, stored.version + 1).catch((e: unknown) => log(`approvals: rollback of ${id} failed: ${String(e)}`));
            throw err;
          }
          log(`approvals: ${id} became ${step.next.state} but its audit event failed: ${String(err)}`);
        }
        settle(step.next);
        if (step.thenThrow !== undefined) throw step.thenThrow;
        return step.next;
      }
      throw new SluiceError('SLUICE_INTERNAL', `approval request ${id} kept changing under concurrent updates`);
    });

  const expireStep = (view: ApprovalView, now: number): Step => {
    const next: ApprovalView = { ...view, state: 'expired', decidedAt: now, reason: 'no decision before the timeout' };
    return {
      next,
      rollbackOnAuditFailure: false,
      events: [
        {
          type: 'approval.expired',
          ...about(view),
          identity: requesterIdentity(view),
          role: view.requester.role,
          outcome: 'failure',
          approval: { id: view.id, approvers: view.approvals.map((a) => a.subject), reason: 'timeout', expiresAt: view.expiresAt },
          details: { approvals: view.approvals.length, required: view.required },
        },
      ],
    };
  };

  const withdrawStep = (view: ApprovalView, now: number, reason: string): Step => {
    const next: ApprovalView = { ...view, state: 'withdrawn', decidedAt: now, reason };
    return {
      next,
      rollbackOnAuditFailure: false,
      events: [
        {
          type: 'approval.withdrawn',
          ...about(view),
          identity: requesterIdentity(view),
          role: view.requester.role,
          outcome: 'cancelled',
          approval: { id: view.id, reason },
        },
      ],
    };
  };

  /** Before a reviewer acts: a request past its deadline expires now, even if its timer has not fired. */
  const pendingOrThrow = (view: ApprovalView, now: number): Step | undefined => {
    if (view.state !== 'pending') throw new ApprovalNotPendingError(view.id, view.state);
    if (now >= view.expiresAt) return { ...expireStep(view, now), thenThrow: new ApprovalNotPendingError(view.id, 'expired') };
    return undefined;
  };

  const expire = (id: string): void => {
    transition(id, (view, now) => (view.state === 'pending' ? expireStep(view, now) : view)).catch((err: unknown) => {
      log(`approvals: expiring ${id} failed: ${String(err)}`);
      // The store is unreachable: still release the waiter, as expired, so no client hangs forever.
      const h = held.get(id);
      if (h !== undefined) {
        held.delete(id);
        h.resolve({ state: 'expired', approvers: [], reason: 'no decision before the timeout' });
      }
    });
  };

  // Startup: whatever this node held when it stopped can no longer reach its client.
  for (const { view } of await store.pendingOf(node)) {
    await transition(view.id, (v, now) => (v.state === 'pending' ? withdrawStep(v, now, RESTART_REASON) : v));
  }
  for (const view of await store.openGrants(clock())) openGrant(view);

  // Shared stores: a reviewer may have answered through another replica.
  let polling = false;
  const poll =
    store.shared
      ? setInterval(() => {
          if (polling || held.size === 0) return;
          polling = true;
          void (async () => {
            const states = await store.states([...held.keys()]);
            for (const [id, state] of states) {
              if (state === 'pending') continue;
              const stored = await store.get(id);
              if (stored !== undefined) settle(stored.view);
            }
          })()
            .catch((err: unknown) => log(`approvals: polling the store failed: ${String(err)}`))
            .finally(() => {
              polling = false;
            });
        }, deps.pollIntervalMs ?? 1000)
      : undefined;
  poll?.unref();

  const service: ApprovalService = {
    async request(input) {
      if (closed) throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'the gateway is shutting down');
      const { session, spec } = input;
      if (typeof input.statementHash !== 'string' || input.statementHash === '') throw new TypeError('approval request: statementHash is required');
      if (typeof input.fingerprint !== 'string' || input.fingerprint === '') throw new TypeError('approval request: fingerprint is required');
      if (!Number.isInteger(spec.required) || spec.required < 1) throw new TypeError('approval request: spec.required must be a positive integer');
      if (!Number.isFinite(spec.timeoutMs) || spec.timeoutMs < 1 || spec.timeoutMs > MAX_APPROVAL_TIMEOUT_MS) throw new TypeError('approval request: spec.timeoutMs is out of range');
      if (spec.grantMs !== undefined && (!Number.isFinite(spec.grantMs) || spec.grantMs < 1)) throw new TypeError('approval request: spec.grantMs must be positive');
      const approverRolesOfRule = [...new Set(spec.approvers)].filter((r) => approverRoles.has(r));
      if (approverRolesOfRule.length === 0) {
        throw new SluiceError('SLUICE_CONFIG_INVALID', `rule ${input.rule}: none of its approver roles (${spec.approvers.join(', ') || 'none'}) is configured with approver: true`);
      }
      const now = clock();
      const id = newId();
      const ident = session.identity;
      const view: ApprovalView = {
        id,
        state: 'pending',
        createdAt: now,
        expiresAt: now + spec.timeoutMs,
        requester: {
          issuer: ident.issuer,
          subject: ident.subject,
          role: session.role,
          ...(ident.model !== undefined ? { model: ident.model } : {}),
          ...(ident.sponsor !== undefined ? { sponsor: ident.sponsor } : {}),
          context: pickContext(ident.claims),
        },
        sessionId: session.id,
        connection: session.connection,
        protocol: session.protocol,
        source: session.source,
        text: input.text,
        statementHash: input.statementHash,
        fingerprint: input.fingerprint,
        facts: input.facts,
        rule: input.rule,
        ...(input.estimatedRows !== undefined ? { estimatedRows: input.estimatedRows } : {}),
        approverRoles: approverRolesOfRule,
        required: spec.required,
        approvals: [],
        ...(spec.grantMs !== undefined ? { grantMs: spec.grantMs } : {}),
        url: `${urlBase}${APPROVALS_API_PREFIX}/${id}`,
        node,
      };
      let resolve!: (o: ApprovalOutcome) => void;
      const outcome = new Promise<ApprovalOutcome>((r) => {
        resolve = r;
      });
      const h: Held = { resolve, timer: undefined };
      held.set(id, h);
      try {
        await store.insert(view);
      } catch (err) {
        held.delete(id);
        throw new SluiceError('SLUICE_INTERNAL', 'approval store unavailable: request not created', { cause: err });
      }
      try {
        await record({
          type: 'approval.requested',
          session,
          command: { text: view.text, ...(typeof input.facts.kind === 'string' ? { kind: input.facts.kind } : {}) },
          decision: { effect: 'review', rule: input.rule },
          outcome: 'pending',
          approval: { id, expiresAt: view.expiresAt },
          details: {
            statementHash: input.statementHash,
            fingerprint: input.fingerprint,
            approverRoles: approverRolesOfRule,
            required: spec.required,
            ...(spec.grantMs !== undefined ? { grantMs: spec.grantMs } : {}),
            ...(input.estimatedRows !== undefined ? { estimatedRows: input.estimatedRows } : {}),
          },
        });
      } catch (err) {
        held.delete(id);
        await store.update({ ...view, state: 'withdrawn', decidedAt: clock(), reason: 'audit log unavailable' }, 1).catch(() => undefined);
        throw err;
      }
      // Not unref'd: a held statement is work in progress, and close() clears the timer.
      h.timer = setTimeout(() => expire(id), Math.max(0, view.expiresAt - clock()));
      notifier.notify(view);
      return { id, url: view.url, expiresAt: view.expiresAt, outcome };
    },

    findGrant(session: SessionInfo, fingerprint: string) {
      const key = grantKey(session.identity.issuer, session.identity.subject, session.role, session.connection, fingerprint);
      const g = grants.get(key);
      if (g === undefined) return undefined;
      if (clock() >= g.expiresAt) {
        grants.delete(key);
        return undefined;
      }
      return g;
    },

    async withdraw(id, reason) {
      const why = checkNote(reason, 'reason', false) ?? 'withdrawn';
      try {
        await transition(id, (view, now) => (view.state === 'pending' ? withdrawStep(view, now, why) : view));
      } catch (err) {
        if (err instanceof SluiceError && err.code === 'SLUICE_APPROVAL_NOT_FOUND') return;
        throw err;
      }
    },

    async approve(id, approver, comment) {
      const note = checkNote(comment, 'comment', false);
      if (!isApprovalId(id)) throw notFound(id);
      return transition(id, (view, now) => {
        const expired = pendingOrThrow(view, now);
        const role = authorizeReviewer(view, approver, approverRoles);
        if (expired !== undefined) return expired;
        // The same person approving twice still counts once (N distinct approvers).
        if (view.approvals.some((a) => a.subject === approver.subject)) return view;
        const vote: ApprovalVote = { subject: approver.subject, issuer: approver.issuer, role, at: now, ...(note !== undefined ? { comment: note } : {}) };
        const approvals = [...view.approvals, vote];
        const final = approvals.length >= view.required;
        const grantExpiresAt = final && view.grantMs !== undefined ? now + view.grantMs : undefined;
        const next: ApprovalView = final
          ? { ...view, approvals, state: 'approved', decidedAt: now, ...(grantExpiresAt !== undefined ? { grantExpiresAt } : {}) }
          : { ...view, approvals };
        return {
          next,
          rollbackOnAuditFailure: true,
          events: [
            {
              type: 'approval.approved',
              ...about(view),
              identity: reviewerIdentity(approver),
              role,
              outcome: final ? 'success' : 'pending',
              approval: {
                id,
                approver: approver.subject,
                approvers: approvals.map((a) => a.subject),
                ...(grantExpiresAt !== undefined ? { expiresAt: grantExpiresAt } : {}),
              },
              details: {
                final,
                approvals: approvals.length,
                required: view.required,
                requester: view.requester.subject,
                statementHash: view.statementHash,
                ...(note !== undefined ? { comment: note } : {}),
                ...(grantExpiresAt !== undefined ? { grant: { fingerprint: view.fingerprint, grantMs: view.grantMs, expiresAt: grantExpiresAt } } : {}),
              },
            },
          ],
        };
      });
    },

    async deny(id, approver, reason) {
      const why = checkNote(reason, 'reason', true) as string;
      if (!isApprovalId(id)) throw notFound(id);
      return transition(id, (view, now) => {
        const expired = pendingOrThrow(view, now);
        const role = authorizeReviewer(view, approver, approverRoles);
        if (expired !== undefined) return expired;
        const vote: ApprovalVote = { subject: approver.subject, issuer: approver.issuer, role, at: now };
        return {
          next: { ...view, state: 'denied', decidedAt: now, deniedBy: vote, reason: why },
          rollbackOnAuditFailure: true,
          events: [
            {
              type: 'approval.denied',
              ...about(view),
              identity: reviewerIdentity(approver),
              role,
              outcome: 'denied',
              approval: { id, approver: approver.subject, reason: why },
              details: { requester: view.requester.subject, statementHash: view.statementHash },
            },
          ],
        };
      });
    },

    async get(id) {
      if (!isApprovalId(id)) return undefined;
      return (await store.get(id))?.view;
    },

    async list(filter = {}) {
      if (filter.state !== undefined && !(APPROVAL_STATES as readonly string[]).includes(filter.state)) {
        throw new SluiceError('SLUICE_BAD_REQUEST', `unknown approval state ${JSON.stringify(String(filter.state).slice(0, 32))} (expected ${APPROVAL_STATES.join(', ')})`);
      }
      const limit = Math.min(Math.max(1, Math.floor(filter.limit ?? DEFAULT_LIST_LIMIT)), MAX_LIST_LIMIT);
      return store.list({ ...(filter.state !== undefined ? { state: filter.state as ApprovalState } : {}), limit });
    },

    isReviewer(identity) {
      return identity.roles.some((r) => approverRoles.has(r));
    },

    async close() {
      if (closed) return;
      closed = true;
      if (poll !== undefined) clearInterval(poll);
      await Promise.allSettled([...held.keys()].map((id) => service.withdraw(id, RESTART_REASON)));
      // Anything the store could not withdraw still gets its answer.
      for (const [id, h] of held) {
        held.delete(id);
        if (h.timer !== undefined) clearTimeout(h.timer);
        h.resolve({ state: 'withdrawn', approvers: [], reason: RESTART_REASON });
      }
      notifier.close();
      await Promise.allSettled([...locks.values()]);
      await store.close();
    },
  };
  return service;
}
