/**
 * The audit event catalog (AU-2) and record content (AU-3). `AuditEventInput` is what the pipeline
 * hands in; `AuditRecord` is what is hashed and stored, after masking and size caps.
 * docs/audit-events.md describes every type.
 */
import type { SessionInfo } from '../pipeline/session.js';
import type { Identity } from '../pipeline/types.js';

export const AUDIT_EVENT_TYPES = [
  'gateway.start',
  'gateway.stop',
  'config.load',
  'config.change',
  'auth.success',
  'auth.failure',
  'session.start',
  'session.end',
  'command',
  'command.result',
  'approval.requested',
  'approval.approved',
  'approval.denied',
  'approval.expired',
  'approval.withdrawn',
  'mask.summary',
  'upstream.error',
  'key.rotate',
  'audit.retention',
  'audit.read',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export const AUDIT_OUTCOMES = ['success', 'failure', 'denied', 'pending', 'cancelled'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** Claims worth keeping on every record: who ran what, from where (GitHub Actions names + Sluice's own). */
export const RECORDED_CLAIMS = [
  'repository',
  'repository_owner',
  'ref',
  'sha',
  'run_id',
  'run_attempt',
  'workflow',
  'job_workflow_ref',
  'environment',
  'actor',
  'event_name',
  'sponsor',
  'model',
  'sluice_model',
  'azp',
  'client_id',
] as const;

export interface AuditIdentity {
  readonly issuer: string;
  readonly subject: string;
  readonly roles?: readonly string[];
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly model?: string;
  readonly sponsor?: string;
  readonly tokenId?: string;
}

export interface AuditDecision {
  readonly effect: 'allow' | 'deny' | 'review';
  readonly rule: string;
  readonly reason?: string;
}

export interface AuditMaskCount {
  readonly detector: string;
  readonly column?: string;
  readonly count: number;
}

export interface AuditPreview {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
}

export interface AuditEventInput {
  readonly type: AuditEventType;
  /** Fills session id, connection, protocol, source, upstream target/account, identity and role. */
  readonly session?: SessionInfo;
  /** Explicit fields override what `session` supplies (e.g. auth.failure before a session exists). */
  readonly sessionId?: string;
  readonly connection?: string;
  readonly protocol?: string;
  readonly source?: string;
  readonly client?: string;
  readonly upstream?: { readonly target?: string; readonly account?: string };
  readonly identity?: Identity | AuditIdentity;
  readonly role?: string;
  readonly command?: {
    readonly text: string;
    readonly kind?: string;
    readonly verb?: string;
    readonly objects?: readonly string[];
  };
  readonly decision?: AuditDecision;
  readonly policyVersion?: string;
  readonly outcome?: AuditOutcome;
  readonly rows?: number;
  readonly bytes?: number;
  readonly durationMs?: number;
  readonly error?: { readonly code?: string; readonly message: string };
  readonly mask?: readonly AuditMaskCount[];
  readonly preview?: AuditPreview;
  readonly approval?: {
    readonly id: string;
    readonly approver?: string;
    readonly approvers?: readonly string[];
    readonly reason?: string;
    readonly expiresAt?: number;
  };
  readonly details?: Readonly<Record<string, unknown>>;
}

/** A stored record: exactly the object whose RFC 8785 bytes are the Merkle leaf. */
export interface AuditRecord {
  readonly v: 1;
  readonly seq: number;
  readonly id: string;
  /** UTC, ms since the epoch. */
  readonly ts: number;
  readonly node: string;
  readonly type: AuditEventType;
  /** Hex leaf hash of the previous record (64 zeros for the first). */
  readonly prev: string;
  readonly session?: string;
  readonly connection?: string;
  readonly protocol?: string;
  readonly source?: string;
  readonly client?: string;
  readonly upstream?: { readonly target?: string; readonly account?: string };
  readonly identity?: {
    readonly issuer: string;
    readonly subject: string;
    readonly roles?: readonly string[];
    readonly claims?: Readonly<Record<string, string | number | boolean>>;
    readonly model?: string;
    readonly sponsor?: string;
    readonly tokenId?: string;
  };
  readonly role?: string;
  readonly command?: { readonly text: string; readonly kind?: string; readonly verb?: string; readonly objects?: readonly string[] };
  readonly decision?: { readonly effect: 'allow' | 'deny' | 'review'; readonly rule: string; readonly reason?: string };
  readonly policyVersion?: string;
  readonly outcome?: AuditOutcome;
  readonly rows?: number;
  readonly bytes?: number;
  readonly durationMs?: number;
  readonly error?: { readonly code?: string; readonly message: string };
  readonly mask?: readonly AuditMaskCount[];
  readonly preview?: { readonly columns: readonly string[]; readonly rows: readonly (readonly (string | null)[])[]; readonly truncated?: boolean };
  readonly approval?: { readonly id: string; readonly approver?: string; readonly approvers?: readonly string[]; readonly reason?: string; readonly expiresAt?: number };
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The record minus what the writer assigns inside the commit (seq, prev). */
export type AuditDraft = Omit<AuditRecord, 'seq' | 'prev'>;

export interface DraftContext {
  readonly mask: (text: string) => string;
  readonly node: string;
  readonly ts: number;
  readonly id: string;
  readonly previewRows: number;
  readonly previewBytes: number;
}

const TYPES = new Set<string>(AUDIT_EVENT_TYPES);
const OUTCOMES = new Set<string>(AUDIT_OUTCOMES);
const MAX_TEXT = 64 * 1024;

function str(value: string | undefined, max = 1024): string | undefined {
  if (value === undefined) return undefined;
  return value.length > max ? value.slice(0, max) : value;
}

function count(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`audit event: ${name} must be a non-negative number`);
  return value;
}

/** Mask every string in a JSON-like value; drop what canonical JSON cannot hold. */
function maskDeep(value: unknown, mask: (s: string) => string, depth = 0): unknown {
  if (depth > 16) return '[too deep]';
  if (typeof value === 'string') return mask(str(value, MAX_TEXT) as string);
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.slice(0, 1000).map((v: unknown) => maskDeep(v, mask, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      // defineProperty, not assignment: an own "__proto__" key from untrusted input must stay
      // data (assignment would swap the object's prototype and drop the key from the record).
      Object.defineProperty(out, mask(k), { value: maskDeep(v, mask, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return undefined;
}

function selectClaims(claims: Readonly<Record<string, unknown>> | undefined): Record<string, string | number | boolean> | undefined {
  if (claims === undefined) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const k of RECORDED_CLAIMS) {
    const v = claims[k];
    if (typeof v === 'string') out[k] = str(v, 512) as string;
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') out[k] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function capPreview(p: AuditPreview, mask: (s: string) => string, maxRows: number, maxBytes: number): AuditRecord['preview'] {
  let bytes = 0;
  let truncated = p.rows.length > maxRows;
  const columns = p.columns.map((c) => mask(c));
  const rows: (string | null)[][] = [];
  for (const row of p.rows.slice(0, maxRows)) {
    const out: (string | null)[] = [];
    for (const cell of row) {
      if (cell === null) {
        out.push(null);
        continue;
      }
      // Mask the full value before cutting it, so a cap can never split a secret past the detector.
      const masked = mask(cell);
      const room = Math.max(0, maxBytes - bytes);
      const kept = Buffer.byteLength(masked) <= room ? masked : Buffer.from(masked).subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
      if (kept.length < masked.length) truncated = true;
      bytes += Buffer.byteLength(kept);
      out.push(kept);
    }
    rows.push(out);
    if (bytes >= maxBytes) {
      truncated = truncated || rows.length < p.rows.length;
      break;
    }
  }
  return truncated ? { columns, rows, truncated: true } : { columns, rows };
}

type DraftIdentity = NonNullable<AuditRecord['identity']>;

// Per verified identity, its record block: the gateway's identities are deep-frozen
// (buildIdentity), so the capped copy can be made once per session and shared (frozen) by every
// event, which also lets the record writer reuse its bytes. Unfrozen identities are copied per event.
const identityBlocks = new WeakMap<object, DraftIdentity>();

function identityBlock(ident: Identity | AuditIdentity): DraftIdentity {
  const frozen = Object.isFrozen(ident) && (ident.claims === undefined || Object.isFrozen(ident.claims)) && (ident.roles === undefined || Object.isFrozen(ident.roles));
  if (frozen) {
    const cached = identityBlocks.get(ident);
    if (cached !== undefined) return cached;
  }
  const out: { -readonly [K in keyof DraftIdentity]: DraftIdentity[K] } = { issuer: str(ident.issuer) as string, subject: str(ident.subject) as string };
  if (ident.roles !== undefined) out.roles = Object.freeze(ident.roles.slice(0, 64).map((r) => str(r, 256) as string));
  const claims = ident.claims === undefined ? undefined : selectClaims(ident.claims);
  if (claims !== undefined) out.claims = Object.freeze(claims);
  if (ident.model !== undefined) out.model = str(ident.model, 256);
  if (ident.sponsor !== undefined) out.sponsor = str(ident.sponsor, 512);
  if (ident.tokenId !== undefined) out.tokenId = str(ident.tokenId, 256);
  Object.freeze(out);
  if (frozen) identityBlocks.set(ident, out);
  return out;
}

/**
 * Build the masked, capped draft of a record. Throws TypeError for a malformed event (a caller bug,
 * reported at the call site rather than stored). Members that are undefined are left out (canonical
 * JSON would drop them too; this keeps stored bodies and in-memory records equal).
 */
export function buildDraft(input: AuditEventInput, ctx: DraftContext): AuditDraft {
  if (!TYPES.has(input.type)) throw new TypeError(`audit event: unknown type ${JSON.stringify(input.type)}`);
  if (input.outcome !== undefined && !OUTCOMES.has(input.outcome)) throw new TypeError(`audit event: unknown outcome ${JSON.stringify(input.outcome)}`);
  const m = ctx.mask;
  const s = input.session;
  const r: Record<string, unknown> = { v: 1, id: ctx.id, ts: ctx.ts, node: ctx.node, type: input.type };
  const put = (key: string, value: unknown): void => {
    if (value !== undefined) r[key] = value;
  };
  put('session', str(input.sessionId ?? s?.id, 256));
  put('connection', str(input.connection ?? s?.connection, 256));
  put('protocol', str(input.protocol ?? s?.protocol, 64));
  put('source', str(input.source ?? s?.source, 256));
  const client = input.client ?? s?.client;
  if (client !== undefined) r.client = m(str(client, 512) as string);
  const upstreamTarget = input.upstream?.target ?? s?.upstreamTarget;
  const upstreamAccount = input.upstream?.account ?? s?.upstreamUser;
  if (upstreamTarget !== undefined || upstreamAccount !== undefined) {
    const u: { target?: string; account?: string } = {};
    if (upstreamTarget !== undefined) u.target = str(upstreamTarget);
    if (upstreamAccount !== undefined) u.account = str(upstreamAccount);
    r.upstream = u;
  }
  const ident = input.identity ?? s?.identity;
  if (ident !== undefined) r.identity = identityBlock(ident);
  put('role', str(input.role ?? s?.role, 256));
  const cmd = input.command;
  if (cmd !== undefined) {
    const c: { text: string; kind?: string; verb?: string; objects?: string[] } = { text: m(str(cmd.text, MAX_TEXT) as string) };
    if (cmd.kind !== undefined) c.kind = str(cmd.kind, 64);
    if (cmd.verb !== undefined) c.verb = str(cmd.verb, 64);
    if (cmd.objects !== undefined) c.objects = cmd.objects.slice(0, 256).map((o) => m(str(o, 512) as string));
    r.command = c;
  }
  const dec = input.decision;
  if (dec !== undefined) {
    const d: { effect: AuditDecision['effect']; rule: string; reason?: string } = { effect: dec.effect, rule: str(dec.rule, 512) as string };
    if (dec.reason !== undefined) d.reason = m(str(dec.reason, 4096) as string);
    r.decision = d;
  }
  put('policyVersion', str(input.policyVersion, 256));
  put('outcome', input.outcome);
  put('rows', count('rows', input.rows));
  put('bytes', count('bytes', input.bytes));
  put('durationMs', count('durationMs', input.durationMs));
  if (input.error !== undefined) {
    const e: { code?: string; message: string } = { message: m(str(input.error.message, 8192) as string) };
    if (input.error.code !== undefined) e.code = str(input.error.code, 128);
    r.error = e;
  }
  if (input.mask !== undefined) {
    r.mask = input.mask.slice(0, 256).map((c) => {
      const out: { detector: string; column?: string; count: number } = { detector: str(c.detector, 128) as string, count: count('mask.count', c.count) as number };
      if (c.column !== undefined) out.column = m(str(c.column, 512) as string);
      return out;
    });
  }
  if (input.preview !== undefined) r.preview = capPreview(input.preview, m, ctx.previewRows, ctx.previewBytes);
  const ap = input.approval;
  if (ap !== undefined) {
    const a: { id: string; approver?: string; approvers?: string[]; reason?: string; expiresAt?: number } = { id: str(ap.id, 256) as string };
    if (ap.approver !== undefined) a.approver = str(ap.approver, 512);
    if (ap.approvers !== undefined) a.approvers = ap.approvers.slice(0, 64).map((x) => str(x, 512) as string);
    if (ap.reason !== undefined) a.reason = m(str(ap.reason, 4096) as string);
    if (ap.expiresAt !== undefined) a.expiresAt = ap.expiresAt;
    r.approval = a;
  }
  if (input.details !== undefined) put('details', maskDeep(input.details, m));
  return r as unknown as AuditDraft;
}

/** Parse a stored body back into a record; throws on anything that is not a record object. */
export function parseRecord(body: string): AuditRecord {
  const v: unknown = JSON.parse(body);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError('record body is not an object');
  const r = v as Record<string, unknown>;
  if (typeof r.seq !== 'number' || typeof r.id !== 'string' || typeof r.ts !== 'number' || typeof r.type !== 'string' || typeof r.prev !== 'string') {
    throw new TypeError('record body lacks seq, id, ts, type or prev');
  }
  return v as AuditRecord;
}
