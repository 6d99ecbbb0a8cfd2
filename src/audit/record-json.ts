/**
 * RFC 8785 bytes of an audit record, written for the record's known shape: members are emitted in
 * their sorted order directly instead of collecting and sorting keys per object, and `details` (the
 * only free-form member) goes through the generic `canonicalJson`. The output is byte-identical to
 * `canonicalJson({ ...draft, seq, prev })` — `verify` recomputes it that way — and the tests
 * check that over generated records.
 *
 * `seq` and `prev` are only known inside the commit, so the body is prepared in three parts when
 * the event is appended and joined around them in the transaction (`joinRecordBody`).
 */
import { canonicalJsonAt, jsonNumber, jsonString } from './canonical-json.js';
import type { AuditDraft, AuditRecord } from './event.js';

/** The canonical body minus `seq` and `prev`: `head` + prev + `mid` + seq + `tail`. */
export interface RecordBodyParts {
  readonly head: string;
  readonly mid: string;
  readonly tail: string;
}

/**
 * Members in UTF-16 code-unit order (RFC 8785 §3.2.3). `prev` and `seq` split the list; the tests
 * check this order against `Array.prototype.sort`.
 */
export const RECORD_KEYS_BEFORE_PREV = ['approval', 'bytes', 'client', 'command', 'connection', 'decision', 'details', 'durationMs', 'error', 'id', 'identity', 'mask', 'node', 'outcome', 'policyVersion'] as const;
export const RECORD_KEYS_BEFORE_SEQ = ['preview', 'protocol', 'role', 'rows'] as const;
export const RECORD_KEYS_AFTER_SEQ = ['session', 'source', 'ts', 'type', 'upstream', 'v'] as const;

// Depths follow the generic writer's nesting count: the record is depth 0, its members 1, members
// of a sub-object 2, and so on, so anything unexpected in a typed slot fails exactly as it would there.

/** Any value in a typed slot: the common types inline, anything unexpected as the generic writer would. */
function val(v: unknown, depth: number): string {
  if (typeof v === 'string') return jsonString(v);
  if (typeof v === 'number') return jsonNumber(v);
  return canonicalJsonAt(v, depth);
}

function items(list: readonly unknown[], depth: number): string {
  let out = '[';
  for (let i = 0; i < list.length; i++) {
    if (i > 0) out += ',';
    const item = list[i];
    out += item === undefined ? 'null' : val(item, depth);
  }
  return out + ']';
}

/** `,"key":value` when defined; `object` strips the first comma. */
function member(key: string, v: unknown, depth: number): string {
  return v === undefined ? '' : `,"${key}":${val(v, depth)}`;
}

function list(key: string, v: readonly unknown[] | undefined, depth: number): string {
  if (v === undefined) return '';
  return `,"${key}":${Array.isArray(v) ? items(v, depth + 1) : canonicalJsonAt(v, depth)}`;
}

/** Close an object written as `,"a":…,"b":…` members. */
function object(members: string): string {
  return members === '' ? '{}' : `{${members.slice(1)}}`;
}

function isPlain(v: unknown): v is object {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** A sub-object of the record (depth 1) whose members sit at depth 2. */
function sub<T extends object>(key: string, v: T | undefined, write: (v: T) => string): string {
  if (v === undefined) return '';
  // Anything but a plain object in a typed slot: the generic writer decides (or refuses) it.
  return `,"${key}":${isPlain(v) ? write(v) : canonicalJsonAt(v, 1)}`;
}

type Identity = NonNullable<AuditRecord['identity']>;
type Approval = NonNullable<AuditRecord['approval']>;
type Command = NonNullable<AuditRecord['command']>;
type Decision = NonNullable<AuditRecord['decision']>;
type ErrorBlock = NonNullable<AuditRecord['error']>;
type MaskCount = NonNullable<AuditRecord['mask']>[number];
type Preview = NonNullable<AuditRecord['preview']>;
type Upstream = NonNullable<AuditRecord['upstream']>;

// Keyed by the draft's identity block, which buildDraft shares (frozen) between the events of one
// verified identity: its bytes are computed once per session, not once per event.
const identityJson = new WeakMap<Identity, string>();

function isFrozenIdentity(i: Identity): boolean {
  return Object.isFrozen(i) && (i.roles === undefined || Object.isFrozen(i.roles)) && (i.claims === undefined || Object.isFrozen(i.claims));
}

function writeIdentity(i: Identity): string {
  const cached = identityJson.get(i);
  if (cached !== undefined) return cached;
  const json = object(
    (i.claims === undefined ? '' : `,"claims":${canonicalJsonAt(i.claims, 2)}`) +
      member('issuer', i.issuer, 2) +
      member('model', i.model, 2) +
      list('roles', i.roles, 2) +
      member('sponsor', i.sponsor, 2) +
      member('subject', i.subject, 2) +
      member('tokenId', i.tokenId, 2),
  );
  // Only a frozen block (claims are primitives, so a shallow freeze of each part suffices) can be
  // trusted to still hold what its bytes say.
  if (isFrozenIdentity(i)) identityJson.set(i, json);
  return json;
}

const writeApproval = (a: Approval): string =>
  object(member('approver', a.approver, 2) + list('approvers', a.approvers, 2) + member('expiresAt', a.expiresAt, 2) + member('id', a.id, 2) + member('reason', a.reason, 2));
const writeCommand = (c: Command): string => object(member('kind', c.kind, 2) + list('objects', c.objects, 2) + member('text', c.text, 2) + member('verb', c.verb, 2));
const writeDecision = (d: Decision): string => object(member('effect', d.effect, 2) + member('reason', d.reason, 2) + member('rule', d.rule, 2));
const writeError = (e: ErrorBlock): string => object(member('code', e.code, 2) + member('message', e.message, 2));
const writeUpstream = (u: Upstream): string => object(member('account', u.account, 2) + member('target', u.target, 2));

function writeMask(list: readonly MaskCount[]): string {
  let out = '[';
  for (let i = 0; i < list.length; i++) {
    if (i > 0) out += ',';
    const m: unknown = list[i];
    out += isPlain(m) ? object(member('column', (m as MaskCount).column, 3) + member('count', (m as MaskCount).count, 3) + member('detector', (m as MaskCount).detector, 3)) : canonicalJsonAt(m ?? null, 2);
  }
  return out + ']';
}

function writePreview(p: Preview): string {
  let rows = '';
  const r: unknown = p.rows;
  if (r !== undefined) {
    if (!Array.isArray(r)) rows = `,"rows":${canonicalJsonAt(r, 2)}`;
    else {
      rows = ',"rows":[';
      for (let i = 0; i < r.length; i++) {
        const row: unknown = r[i];
        rows += (i > 0 ? ',' : '') + (Array.isArray(row) ? items(row, 4) : canonicalJsonAt(row ?? null, 3));
      }
      rows += ']';
    }
  }
  return object(list('columns', p.columns, 2) + rows + member('truncated', p.truncated, 2));
}

/**
 * The parts of a draft's canonical body. Throws CanonicalJsonError (a TypeError) for what RFC 8785
 * cannot represent, as `canonicalJson` would.
 */
export function recordBodyParts(d: AuditDraft): RecordBodyParts {
  const mask: unknown = d.mask;
  const beforePrev =
    sub('approval', d.approval, writeApproval) +
    member('bytes', d.bytes, 1) +
    member('client', d.client, 1) +
    sub('command', d.command, writeCommand) +
    member('connection', d.connection, 1) +
    sub('decision', d.decision, writeDecision) +
    (d.details === undefined ? '' : `,"details":${canonicalJsonAt(d.details, 1)}`) +
    member('durationMs', d.durationMs, 1) +
    sub('error', d.error, writeError) +
    member('id', d.id, 1) +
    sub('identity', d.identity, writeIdentity) +
    (mask === undefined ? '' : `,"mask":${Array.isArray(mask) ? writeMask(mask) : canonicalJsonAt(mask, 1)}`) +
    member('node', d.node, 1) +
    member('outcome', d.outcome, 1) +
    member('policyVersion', d.policyVersion, 1);
  const mid = sub('preview', d.preview, writePreview) + member('protocol', d.protocol, 1) + member('role', d.role, 1) + member('rows', d.rows, 1);
  const tail = member('session', d.session, 1) + member('source', d.source, 1) + member('ts', d.ts, 1) + member('type', d.type, 1) + sub('upstream', d.upstream, writeUpstream) + member('v', d.v, 1) + '}';
  return { head: `{${beforePrev.slice(1)}${beforePrev === '' ? '' : ','}"prev":`, mid: `${mid},"seq":`, tail };
}

/** The canonical body of the record `{ ...draft, seq, prev }`. */
export function joinRecordBody(parts: RecordBodyParts, seq: number, prevHex: string): string {
  return `${parts.head}"${prevHex}"${parts.mid}${jsonNumber(seq)}${parts.tail}`;
}
