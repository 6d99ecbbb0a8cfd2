/**
 * The sessions API's answers, serialised where they are read: from the reader thread a JSON string
 * crosses to the event loop as one copy, where the records as objects would be rebuilt one by one
 * there (structured clone), costing the loop about what parsing them did.
 */
import { getSessionTimeline, listSessions } from '../query.js';
import type { AuditStore, SessionFilter } from '../store/types.js';

export interface ReadAnswer {
  /** The response body. */
  readonly json: string;
  /** Sessions listed, or records in the timeline answered (for the `audit.read` record). */
  readonly count: number;
}

/** `{ items }`: session summaries, newest first. */
export async function sessionsAnswer(store: AuditStore, filter: SessionFilter): Promise<ReadAnswer> {
  const items = await listSessions(store, filter);
  return { json: JSON.stringify({ items }), count: items.length };
}

/** `{ session, events, total, truncated }`: a session's summary and its first `limit` records; undefined for an unknown session. */
export async function timelineAnswer(store: AuditStore, sessionId: string, limit: number): Promise<ReadAnswer | undefined> {
  const t = await getSessionTimeline(store, sessionId, limit);
  if (t === undefined) return undefined;
  return { json: JSON.stringify({ session: t.session, events: t.events, total: t.total, truncated: t.truncated }), count: t.events.length };
}
