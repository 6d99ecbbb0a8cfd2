/**
 * The audit read API (AU-6 review, AU-9(4) access by a subset of privileged users), mounted on the
 * gateway's HTTP listener at /api/v1/sessions:
 *
 *   GET /api/v1/sessions[?subject=&connection=&since=&limit=]   session summaries, newest first
 *   GET /api/v1/sessions/:id[?limit=]                          one session's timeline
 *
 * The same reads as `sluice sessions list` and `sluice replay`, for holders of a role configured
 * `auditor: true`. Every call needs `Authorization: Bearer <token>`; every answered call is itself
 * recorded (`audit.read`), and so is one refused for want of the role. Records were masked before
 * they were written, so nothing here unmasks anything.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceError } from '../errors.js';
import type { Identity } from '../pipeline/types.js';
import { apiHandler, bearerToken, decodeSegment, methodNotAllowed, sendJsonText, type HttpHandler } from '../server/http-server.js';
import type { AuditEventInput } from './event.js';
import { parseSince } from './query.js';
import type { AuditReader } from './read/reader.js';
import type { SessionFilter } from './store/types.js';

export const SESSIONS_API_PREFIX = '/api/v1/sessions';

export interface SessionsApiOptions {
  readonly prefix?: string;
  /** Largest bearer token accepted before verification. Default 16 KiB. */
  readonly maxTokenBytes?: number;
}

/** Session summaries per call: default and most. */
const LIST_DEFAULT = 100;
const LIST_MAX = 1000;
/** Timeline records per call: default and most; a longer session says it was cut (`truncated`). */
const EVENTS_DEFAULT = 2000;
const EVENTS_MAX = 20000;
/** Session ids are ULIDs or UUID-like; anything else is refused before it reaches the store. */
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const FILTER_TEXT_MAX = 256;

export interface SessionsApiDeps {
  /** Where the reads run: a thread of their own for SQLite (read/reader.ts). */
  readonly reader: AuditReader;
  readonly authenticate: (token: string) => Promise<Identity>;
  /** Roles configured `auditor: true`. */
  readonly auditorRoles: ReadonlySet<string>;
  readonly record: (event: AuditEventInput) => Promise<void>;
  readonly clock?: () => number;
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new SluiceError('SLUICE_BAD_REQUEST', `${name} must be a whole number from 1 to ${max}`);
  return Math.min(Number(raw), max);
}

function textParam(url: URL, name: string): string | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  if (raw.length > FILTER_TEXT_MAX) throw new SluiceError('SLUICE_BAD_REQUEST', `${name} is longer than ${FILTER_TEXT_MAX} characters`);
  return raw;
}

export function createSessionsApi(deps: SessionsApiDeps, options: SessionsApiOptions = {}): HttpHandler {
  const prefix = (options.prefix ?? SESSIONS_API_PREFIX).replace(/\/+$/, '');
  const maxTokenBytes = options.maxTokenBytes ?? 16 * 1024;
  const clock = deps.clock ?? Date.now;

  const filterOf = (url: URL): SessionFilter => {
    const since = textParam(url, 'since');
    let sinceMs: number | undefined;
    if (since !== undefined) {
      try {
        sinceMs = parseSince(since, clock());
      } catch (err) {
        throw new SluiceError('SLUICE_BAD_REQUEST', (err as Error).message.replace(/^--since/, 'since'));
      }
    }
    const subject = textParam(url, 'subject');
    const connection = textParam(url, 'connection');
    return {
      ...(subject !== undefined ? { subject } : {}),
      ...(connection !== undefined ? { connection } : {}),
      ...(sinceMs !== undefined ? { since: sinceMs } : {}),
      limit: intParam(url, 'limit', LIST_DEFAULT, LIST_MAX),
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (path !== prefix && !path.startsWith(prefix + '/')) throw new SluiceError('SLUICE_SESSION_NOT_FOUND', `no route for ${path.slice(0, 200)}`);
    const parts = path.slice(prefix.length).split('/').filter((p) => p !== '');
    // Authenticate before routing or validating, so an anonymous caller learns nothing.
    const who = await deps.authenticate(bearerToken(req, maxTokenBytes));
    if ((req.method ?? 'GET') !== 'GET') return methodNotAllowed(res, 'GET');
    const url = new URL(req.url ?? '/', 'http://sluice.invalid');
    const what = parts.length === 0 ? 'sessions' : `session ${(parts[0] as string).slice(0, 64)}`;
    const role = who.roles.find((r) => deps.auditorRoles.has(r));
    if (role === undefined) {
      const message = `${who.subject} may not read the audit log: that takes a role configured "auditor: true" (held: ${who.roles.join(', ') || 'none'})`;
      await deps.record({ type: 'audit.read', identity: who, outcome: 'denied', error: { code: 'SLUICE_AUDIT_FORBIDDEN', message }, details: { read: what } });
      throw new SluiceError('SLUICE_AUDIT_FORBIDDEN', message);
    }
    if (parts.length === 0) {
      const filter = filterOf(url);
      const answer = await deps.reader.sessions(filter);
      // Recorded before the answer leaves: a read the log cannot hold is not served.
      await deps.record({ type: 'audit.read', identity: who, role, outcome: 'success', details: { read: 'sessions', filter, count: answer.count } });
      return sendJsonText(res, 200, answer.json);
    }
    if (parts.length !== 1) throw new SluiceError('SLUICE_SESSION_NOT_FOUND', `no route for ${path.slice(0, 200)}`);
    const id = decodeSegment(parts[0] as string) ?? '';
    if (!SESSION_ID.test(id)) throw new SluiceError('SLUICE_SESSION_NOT_FOUND', 'no such session');
    const limit = intParam(url, 'limit', EVENTS_DEFAULT, EVENTS_MAX);
    // Only the records answered are read: a session of a million statements costs no more than `limit`.
    const answer = await deps.reader.timeline(id, limit);
    if (answer === undefined) throw new SluiceError('SLUICE_SESSION_NOT_FOUND', `no session ${id}`);
    await deps.record({ type: 'audit.read', identity: who, role, outcome: 'success', details: { read: 'session', session: id, events: answer.count } });
    return sendJsonText(res, 200, answer.json);
  };

  return apiHandler(handle);
}
