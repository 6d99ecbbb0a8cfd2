/**
 * Map records to OCSF 1.3.0 (https://schema.ocsf.io/1.3.0/) for SIEMs:
 *   command, command.result (sql)            → Datastore Activity (6005)
 *   command, command.result (http, k8s, mcp) → API Activity (6003)
 *   auth.*, session.*                        → Authentication (3002)
 *   everything else                          → Base Event (0)
 * A statement is two events of its class: the decision (`command`) and how it ended
 * (`command.result`: status, duration, bytes, the HTTP status as `api.response.code`).
 * Commands and approvals carry the `security_control` profile (action, disposition, policy).
 * Sluice fields with no OCSF attribute go to `unmapped`, so nothing is lost.
 */
import type { AuditRecord } from '../event.js';

export const OCSF_VERSION = '1.3.0';
const PRODUCT = { name: 'Sluice', vendor_name: 'Sluice', version: '0.1.0' } as const;

export type OcsfEvent = Record<string, unknown>;

const SEVERITY: Readonly<Record<number, string>> = { 1: 'Informational', 2: 'Low', 3: 'Medium' };

function severityOf(r: AuditRecord): number {
  if (r.outcome === 'denied' || r.type === 'auth.failure' || r.type === 'approval.denied') return 3;
  if (r.outcome === 'failure' || r.type === 'upstream.error') return 2;
  return 1;
}

function statusOf(r: AuditRecord): { status_id: number; status: string } {
  if (r.outcome === 'success' || r.type === 'auth.success' || r.type === 'session.start' || r.type === 'session.end') return { status_id: 1, status: 'Success' };
  if (r.outcome === 'failure' || r.outcome === 'denied' || r.type === 'auth.failure' || r.type === 'upstream.error') return { status_id: 2, status: 'Failure' };
  if (r.outcome === undefined) return { status_id: 0, status: 'Unknown' };
  return { status_id: 99, status: r.outcome };
}

/** `ip:port`, `[v6]:port`, or a bare host → OCSF network endpoint. */
export function endpointOf(address: string | undefined): Record<string, unknown> | undefined {
  if (address === undefined || address === '') return undefined;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:/]+):(\d+)/.exec(address);
  const host = m?.[1] ?? address;
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
  return { ...(isIp ? { ip: host } : { hostname: host }), ...(port !== undefined ? { port } : {}) };
}

function actorOf(r: AuditRecord): Record<string, unknown> {
  const user = r.identity === undefined ? { name: 'unknown' } : { name: r.identity.subject, uid: r.identity.subject, ...(r.role !== undefined ? { type: r.role } : {}) };
  return {
    user,
    ...(r.session !== undefined ? { session: { uid: r.session, ...(r.identity !== undefined ? { issuer: r.identity.issuer } : {}) } } : {}),
    ...(r.client !== undefined ? { app_name: r.client } : {}),
  };
}

function securityControl(r: AuditRecord): Record<string, unknown> {
  const effect = r.decision?.effect;
  let action_id = 0;
  let disposition_id = 0;
  if (r.type === 'approval.approved') [action_id, disposition_id] = [1, 8]; // Approved
  else if (r.type === 'approval.denied' || r.type === 'approval.expired' || r.type === 'approval.withdrawn') [action_id, disposition_id] = [2, 2]; // Blocked
  else if (r.type === 'approval.requested' || effect === 'review') [action_id, disposition_id] = r.outcome === 'success' ? [1, 8] : [0, 14]; // Delayed (held for approval)
  else if (effect === 'allow') [action_id, disposition_id] = [1, 1]; // Allowed
  else if (effect === 'deny' || r.outcome === 'denied') [action_id, disposition_id] = [2, 2]; // Blocked
  const ACTION: Readonly<Record<number, string>> = { 0: 'Unknown', 1: 'Allowed', 2: 'Denied' };
  const DISPOSITION: Readonly<Record<number, string>> = { 0: 'Unknown', 1: 'Allowed', 2: 'Blocked', 8: 'Approved', 14: 'Delayed' };
  return {
    action_id,
    action: ACTION[action_id],
    disposition_id,
    disposition: DISPOSITION[disposition_id],
    ...(r.decision !== undefined
      ? { policy: { name: r.decision.rule, uid: r.decision.rule, ...(r.policyVersion !== undefined ? { version: r.policyVersion } : {}), ...(r.decision.reason !== undefined ? { desc: r.decision.reason } : {}) } }
      : {}),
  };
}

function unmappedOf(r: AuditRecord): Record<string, unknown> {
  const u: Record<string, unknown> = { sluice_type: r.type, node: r.node, prev: r.prev };
  if (r.role !== undefined) u.role = r.role;
  if (r.identity?.roles !== undefined) u.roles = r.identity.roles;
  if (r.identity?.claims !== undefined) u.claims = r.identity.claims;
  if (r.identity?.model !== undefined) u.model = r.identity.model;
  if (r.identity?.sponsor !== undefined) u.sponsor = r.identity.sponsor;
  if (r.upstream?.account !== undefined) u.upstream_account = r.upstream.account;
  if (r.outcome !== undefined) u.outcome = r.outcome;
  if (r.rows !== undefined) u.rows = r.rows;
  if (r.bytes !== undefined) u.bytes = r.bytes;
  if (r.mask !== undefined) u.mask = r.mask;
  if (r.preview !== undefined) u.preview = r.preview;
  if (r.approval !== undefined) u.approval = r.approval;
  if (r.details !== undefined) u.details = r.details;
  if (r.command?.kind !== undefined) u.command_kind = r.command.kind;
  if (r.command?.objects !== undefined) u.objects = r.command.objects;
  return u;
}

function baseOf(r: AuditRecord, classUid: number, className: string, categoryUid: number, categoryName: string, activityId: number, activityName: string, profiles: string[]): OcsfEvent {
  const sev = severityOf(r);
  const status = statusOf(r);
  return {
    class_uid: classUid,
    class_name: className,
    category_uid: categoryUid,
    category_name: categoryName,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: classUid * 100 + activityId,
    type_name: `${className}: ${activityName}`,
    time: r.ts,
    severity_id: sev,
    severity: SEVERITY[sev],
    ...status,
    ...(r.error !== undefined ? { status_detail: r.error.message, ...(r.error.code !== undefined ? { status_code: r.error.code } : {}) } : {}),
    ...(r.durationMs !== undefined ? { duration: Math.round(r.durationMs) } : {}),
    message: messageOf(r),
    metadata: {
      version: OCSF_VERSION,
      product: PRODUCT,
      uid: r.id,
      sequence: r.seq,
      logged_time: r.ts,
      event_code: r.type,
      ...(profiles.length > 0 ? { profiles } : {}),
    },
  };
}

function messageOf(r: AuditRecord): string {
  const who = r.identity?.subject ?? 'unknown';
  switch (r.type) {
    case 'command':
      return `${who} ${r.decision?.effect ?? 'ran'} ${r.command?.verb ?? 'command'} on ${r.connection ?? '?'}${r.decision !== undefined ? ` (rule ${r.decision.rule})` : ''}`;
    case 'command.result':
      return `${who}'s ${r.command?.verb ?? 'command'} on ${r.connection ?? '?'}: ${r.outcome ?? 'result'}`;
    case 'auth.failure':
      return `authentication failed: ${r.error?.message ?? 'unknown reason'}`;
    default:
      return `${r.type}${r.identity !== undefined ? ` by ${who}` : ''}`;
  }
}

const DATASTORE_ACTIVITY: Readonly<Record<string, [number, string]>> = {
  select: [4, 'Query'],
  explain: [4, 'Query'],
  insert: [5, 'Write'],
  update: [2, 'Update'],
  merge: [2, 'Update'],
  delete: [7, 'Delete'],
  ddl: [99, 'Other'],
};

const API_ACTIVITY: Readonly<Record<string, [number, string]>> = {
  post: [1, 'Create'],
  create: [1, 'Create'],
  get: [2, 'Read'],
  head: [2, 'Read'],
  list: [2, 'Read'],
  watch: [2, 'Read'],
  put: [3, 'Update'],
  patch: [3, 'Update'],
  update: [3, 'Update'],
  delete: [4, 'Delete'],
  deletecollection: [4, 'Delete'],
};

export function toOcsf(r: AuditRecord): OcsfEvent {
  const src = endpointOf(r.source);
  const dst = endpointOf(r.upstream?.target);
  const endpoints = { ...(src !== undefined ? { src_endpoint: src } : {}), ...(dst !== undefined ? { dst_endpoint: dst } : {}) };
  switch (r.type) {
    case 'command':
    case 'command.result': {
      const verb = (r.command?.verb ?? r.command?.kind ?? '').toLowerCase();
      // The decision carries the security control; the result only how the statement ended.
      const control = r.type === 'command' ? { profiles: ['security_control'], fields: securityControl(r) } : { profiles: [], fields: {} };
      if (r.protocol === undefined || r.protocol === 'postgres' || r.protocol === 'mysql' || r.protocol === 'sql') {
        const [id, name] = DATASTORE_ACTIVITY[verb] ?? [99, 'Other'];
        return {
          ...baseOf(r, 6005, 'Datastore Activity', 6, 'Application Activity', id, name, control.profiles),
          actor: actorOf(r),
          src_endpoint: src ?? { hostname: 'unknown' },
          ...(dst !== undefined ? { dst_endpoint: dst } : {}),
          database: { name: r.connection ?? 'unknown', type_id: 1, type: 'Relational' },
          ...(r.command !== undefined ? { query_info: { query_string: r.command.text, ...(r.bytes !== undefined ? { bytes: r.bytes } : {}) } } : {}),
          ...control.fields,
          unmapped: unmappedOf(r),
        };
      }
      const [id, name] = API_ACTIVITY[verb] ?? [99, 'Other'];
      const status = r.details?.status;
      return {
        ...baseOf(r, 6003, 'API Activity', 6, 'Application Activity', id, name, control.profiles),
        actor: actorOf(r),
        src_endpoint: src ?? { hostname: 'unknown' },
        ...(dst !== undefined ? { dst_endpoint: dst } : {}),
        api: {
          operation: r.command?.verb ?? 'unknown',
          service: { name: r.connection ?? 'unknown' },
          request: { uid: r.id },
          ...(typeof status === 'number' ? { response: { code: status, ...(r.error !== undefined ? { error: r.error.code ?? 'error', error_message: r.error.message } : {}) } } : {}),
        },
        ...(r.command !== undefined ? { resources: (r.command.objects ?? [r.command.text]).slice(0, 32).map((o) => ({ name: o })) } : {}),
        ...control.fields,
        unmapped: unmappedOf(r),
      };
    }
    case 'auth.success':
    case 'auth.failure':
    case 'session.start':
    case 'session.end': {
      const [id, name] = r.type === 'session.end' ? [2, 'Logoff'] : [1, 'Logon'];
      return {
        ...baseOf(r, 3002, 'Authentication', 3, 'Identity & Access Management', id, name, []),
        user: r.identity === undefined ? { name: 'unknown' } : { name: r.identity.subject, uid: r.identity.subject },
        actor: actorOf(r),
        ...endpoints,
        auth_protocol_id: 4,
        auth_protocol: 'OpenID',
        ...(r.connection !== undefined ? { service: { name: r.connection } } : {}),
        ...(r.session !== undefined ? { session: { uid: r.session, ...(r.identity !== undefined ? { issuer: r.identity.issuer } : {}) } } : {}),
        unmapped: unmappedOf(r),
      };
    }
    case 'approval.requested':
    case 'approval.approved':
    case 'approval.denied':
    case 'approval.expired':
    case 'approval.withdrawn':
      return { ...baseOf(r, 0, 'Base Event', 0, 'Uncategorized', 99, 'Other', ['security_control']), ...securityControl(r), unmapped: unmappedOf(r) };
    default:
      return { ...baseOf(r, 0, 'Base Event', 0, 'Uncategorized', 99, 'Other', []), unmapped: unmappedOf(r) };
  }
}
