/**
 * Read side for `sluice sessions list` and `sluice replay` (AU-6 review): session summaries and a
 * session's timeline, straight from the store.
 */
import { parseRecord, type AuditRecord } from './event.js';
import type { AuditStore, SessionFilter, SessionStat } from './store/types.js';
import { parseDuration } from '../config/duration.js';

export interface SessionSummary {
  readonly id: string;
  readonly startedAt: number;
  readonly endedAt?: number;
  readonly lastEventAt: number;
  readonly connection?: string;
  readonly protocol?: string;
  readonly source?: string;
  readonly client?: string;
  readonly upstream?: { readonly target?: string; readonly account?: string };
  readonly issuer?: string;
  readonly subject?: string;
  readonly role?: string;
  readonly roles?: readonly string[];
  readonly model?: string;
  readonly sponsor?: string;
  readonly claims?: Readonly<Record<string, string | number | boolean>>;
  readonly commands: number;
  readonly denied: number;
  readonly errors: number;
  readonly approvals: number;
  /** How it ended, from its `session.end` record (`client closed`, `idle`, `token expired`, …). */
  readonly endReason?: string;
}

export type { SessionFilter };

export async function listSessions(store: AuditStore, filter: SessionFilter = {}): Promise<SessionSummary[]> {
  const starts = await store.sessionStarts(filter);
  const ids = starts.map((s) => s.sessionId).filter((s): s is string => s !== null);
  const stats = new Map<string, SessionStat[]>();
  for (const st of await store.sessionStats(ids)) {
    const mine = stats.get(st.sessionId);
    if (mine === undefined) stats.set(st.sessionId, [st]);
    else mine.push(st);
  }
  const reasons = new Map<string, string>();
  for (const e of await store.sessionEnds(ids)) {
    const reason = endReasonOf(e.body);
    if (e.sessionId !== null && reason !== undefined) reasons.set(e.sessionId, reason);
  }
  return starts.flatMap((ev) => {
    if (ev.sessionId === null) return [];
    let rec: AuditRecord;
    try {
      rec = parseRecord(ev.body);
    } catch {
      return [];
    }
    return [summaryOf(rec, ev.ts, stats.get(ev.sessionId) ?? [], reasons.get(ev.sessionId))];
  });
}

/** A session's summary from its first record and its per-type counts (SessionStat rows, counted by the store). */
function summaryOf(first: AuditRecord, firstTs: number, stats: readonly SessionStat[], endReason: string | undefined): SessionSummary {
  const sum = (pred: (t: string, o: string | null) => boolean): number => stats.reduce((n, s) => (pred(s.type, s.outcome) ? n + s.count : n), 0);
  const end = stats.find((s) => s.type === 'session.end');
  return summarise(first, {
    endedAt: end?.lastTs,
    lastEventAt: stats.reduce((m, s) => Math.max(m, s.lastTs), firstTs),
    commands: sum((t) => t === 'command'),
    denied: sum((t, o) => t === 'command' && o === 'denied'),
    errors: sum(isError),
    approvals: sum((t) => t === 'approval.requested'),
    endReason,
  });
}

/** `details.reason` of a stored `session.end` record, if it has one. */
function endReasonOf(body: string): string | undefined {
  try {
    return reasonIn(parseRecord(body));
  } catch {
    return undefined;
  }
}

function reasonIn(end: AuditRecord | undefined): string | undefined {
  const reason = (end?.details as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' ? reason : undefined;
}

/**
 * A session's error: an upstream failure, a command refused on the way (its `command` record
 * failed) or one that failed upstream (its `command.result` failed; a statement has one or the other).
 */
function isError(type: string, outcome: string | null): boolean {
  return type === 'upstream.error' || ((type === 'command' || type === 'command.result') && outcome === 'failure');
}

function summarise(
  rec: AuditRecord,
  s: { endedAt: number | undefined; lastEventAt: number; commands: number; denied: number; errors: number; approvals: number; endReason?: string | undefined },
): SessionSummary {
  return {
    id: rec.session as string,
    startedAt: rec.ts,
    ...(s.endedAt !== undefined ? { endedAt: s.endedAt } : {}),
    lastEventAt: s.lastEventAt,
    ...(rec.connection !== undefined ? { connection: rec.connection } : {}),
    ...(rec.protocol !== undefined ? { protocol: rec.protocol } : {}),
    ...(rec.source !== undefined ? { source: rec.source } : {}),
    ...(rec.client !== undefined ? { client: rec.client } : {}),
    ...(rec.upstream !== undefined ? { upstream: rec.upstream } : {}),
    ...(rec.identity !== undefined
      ? {
          issuer: rec.identity.issuer,
          subject: rec.identity.subject,
          ...(rec.identity.roles !== undefined ? { roles: rec.identity.roles } : {}),
          ...(rec.identity.model !== undefined ? { model: rec.identity.model } : {}),
          ...(rec.identity.sponsor !== undefined ? { sponsor: rec.identity.sponsor } : {}),
          ...(rec.identity.claims !== undefined ? { claims: rec.identity.claims } : {}),
        }
      : {}),
    ...(rec.role !== undefined ? { role: rec.role } : {}),
    commands: s.commands,
    denied: s.denied,
    errors: s.errors,
    approvals: s.approvals,
    ...(s.endReason !== undefined ? { endReason: s.endReason } : {}),
  };
}

export interface SessionTimeline {
  readonly session: SessionSummary;
  /** The session's first records in log order, as many as were asked for. */
  readonly events: readonly AuditRecord[];
  /** How many records the session has. */
  readonly total: number;
  /** `events` holds fewer than `total`. */
  readonly truncated: boolean;
}

/** Records read to find a session's `session.start` however few are asked for. */
const HEAD_RECORDS = 16;

/**
 * A session's summary and its first `limit` records in log order (default: all of them);
 * undefined if the session is unknown. The summary's figures are counted by the store over the
 * whole session, so a capped read still reports them, and `total`, in full.
 */
export async function getSessionTimeline(store: AuditStore, sessionId: string, limit = Number.MAX_SAFE_INTEGER): Promise<SessionTimeline | undefined> {
  // The `session.start` record follows the authentication record(s): it is among the first few.
  const rows = await store.sessionEvents(sessionId, 0, Math.max(HEAD_RECORDS, limit));
  const first = rows.find((r) => r.type === 'session.start') ?? rows[0];
  if (first === undefined) return undefined;
  const events = rows.slice(0, limit).map((r) => parseRecord(r.body));
  const stats = await store.sessionStats([sessionId]);
  const [end] = await store.sessionEnds([sessionId]);
  const total = stats.reduce((n, s) => n + s.count, 0);
  return {
    session: summaryOf(parseRecord(first.body), first.ts, stats, end !== undefined ? endReasonOf(end.body) : undefined),
    events,
    total,
    truncated: events.length < total,
  };
}

/** A session's records in log order, read `pageSize` at a time, so a session of any length replays in bounded memory. */
export async function* sessionRecords(store: AuditStore, sessionId: string, pageSize = 1000): AsyncGenerator<AuditRecord> {
  let after = 0;
  for (;;) {
    const rows = await store.sessionEvents(sessionId, after, pageSize);
    for (const r of rows) yield parseRecord(r.body);
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < pageSize) return;
    after = last.seq;
  }
}

/**
 * `--since` accepts an RFC 3339 date or date-time (`2026-11-01`, `2026-11-01T08:00:00Z`; a date
 * alone means midnight UTC) or a duration back from now (`24h`, `7d`, `90m`).
 */
export function parseSince(text: string, now: number): number {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) {
    const ms = Date.parse(`${t}T00:00:00Z`);
    if (Number.isFinite(ms)) return ms;
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  } else if (/^\d/.test(t)) {
    return now - parseDuration(t, '--since');
  }
  throw new TypeError(`--since: "${text}" is neither a date (2026-11-01, 2026-11-01T08:00:00Z) nor a duration (24h, 7d)`);
}
