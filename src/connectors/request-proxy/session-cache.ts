/**
 * HTTP clients send their token on every request. Verifying and recording a new session per
 * request would cost a signature check and two audit writes each, so one session is kept per
 * (token, role, connection) until the token expires or the session sits idle; each request is a
 * `command` in it. The cache key is a hash of the token, never the token itself.
 */
import { createHash } from 'node:crypto';
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { SessionInfo } from '../../pipeline/session.js';

export interface SessionRequest {
  readonly token: string;
  readonly role: string;
  readonly connection: string;
  readonly source: string;
  readonly client?: string;
}

export interface SessionCache {
  /** The session for this token/role/connection, opening (authenticating, recording) one when needed. */
  get(req: SessionRequest): Promise<SessionInfo>;
  /** Count a finished request against its session. */
  touch(session: SessionInfo): void;
  /**
   * A request or stream of the session is open (a watch, followed logs, a WebSocket): the session
   * is not idle until the returned function is called, so its end is never recorded before it.
   */
  hold(session: SessionInfo): () => void;
  readonly size: number;
  /** End every session (recording session.end). */
  close(): Promise<void>;
}

interface Entry {
  readonly key: string;
  readonly opened: Promise<SessionInfo>;
  session?: SessionInfo;
  /** The token's expiry: no request joins the session after it. */
  expiresAt: number;
  lastUsed: number;
  requests: number;
  /** Requests and streams still open (hold). */
  open: number;
  /** Its token expired: out of the cache, it ends once its open streams closed. */
  retired: boolean;
}

export interface SessionCacheOptions {
  readonly protocol: 'http' | 'kubernetes';
  readonly idleMs?: number;
  readonly max?: number;
  readonly clock?: () => number;
  readonly log?: (line: string) => void;
}

export function createSessionCache(pipeline: Pipeline, options: SessionCacheOptions): SessionCache {
  const clock = options.clock ?? Date.now;
  const idleMs = options.idleMs ?? 5 * 60_000;
  const max = options.max ?? 10_000;
  const entries = new Map<string, Entry>();
  const bySession = new Map<string, Entry>();

  const end = (e: Entry, reason: string): void => {
    if (entries.get(e.key) === e) entries.delete(e.key);
    if (e.session === undefined || bySession.get(e.session.id) !== e) return;
    bySession.delete(e.session.id);
    pipeline.endSession(e.session, { reason, commands: e.requests }).catch((err: unknown) => options.log?.(`${options.protocol}: recording session.end failed: ${String(err)}`));
  };

  /**
   * The token expired: a new request with it opens a new session (which its verification refuses).
   * A stream still open (a watch, a WebSocket) runs on, up to the session's `endsAt`, and the
   * session ends when the last one closes, so its end is never recorded before its streams'.
   */
  const retire = (e: Entry): void => {
    if (entries.get(e.key) === e) entries.delete(e.key);
    e.retired = true;
    if (e.open === 0) end(e, 'token expired');
  };

  const sweep = setInterval(() => {
    const now = clock();
    for (const e of entries.values()) {
      if (e.session === undefined) continue;
      if (now >= e.expiresAt) retire(e);
      else if (e.open === 0 && now - e.lastUsed > idleMs) end(e, 'idle');
    }
  }, Math.min(30_000, Math.max(1000, Math.floor(idleMs / 2))));
  sweep.unref();

  return {
    async get(req) {
      const key = createHash('sha256').update(req.token).update('\u0000').update(req.role).update('\u0000').update(req.connection).digest('base64url');
      const now = clock();
      const hit = entries.get(key);
      if (hit !== undefined) {
        if (hit.session === undefined || now < hit.expiresAt) {
          hit.lastUsed = now;
          return hit.opened;
        }
        retire(hit);
      }
      if (entries.size >= max) {
        // Evict the least recently used session rather than refuse a new agent.
        let oldest: Entry | undefined;
        // Never one with a stream open while another would do.
        for (const e of entries.values()) if (e.session !== undefined && (oldest === undefined || (e.open === 0) > (oldest.open === 0) || ((e.open === 0) === (oldest.open === 0) && e.lastUsed < oldest.lastUsed))) oldest = e;
        if (oldest !== undefined) end(oldest, 'evicted');
      }
      const opened = pipeline
        .openSession({ token: req.token, role: req.role, connection: req.connection, protocol: options.protocol, source: req.source, ...(req.client !== undefined ? { client: req.client } : {}) })
        .then((r) => r.session);
      const entry: Entry = { key, opened, expiresAt: Number.POSITIVE_INFINITY, lastUsed: now, requests: 0, open: 0, retired: false };
      entries.set(key, entry);
      try {
        const session = await opened;
        entry.session = session;
        entry.expiresAt = session.identity.expiresAt * 1000;
        bySession.set(session.id, entry);
        return session;
      } catch (err) {
        if (entries.get(key) === entry) entries.delete(key);
        throw err;
      }
    },
    touch(session) {
      const e = bySession.get(session.id);
      if (e !== undefined) {
        e.requests += 1;
        e.lastUsed = clock();
      }
    },
    hold(session) {
      const e = bySession.get(session.id);
      if (e === undefined) return () => undefined;
      e.open += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        e.open -= 1;
        e.lastUsed = clock();
        if (e.retired && e.open === 0) end(e, 'token expired');
      };
    },
    get size() {
      return entries.size;
    },
    async close() {
      clearInterval(sweep);
      // Retired sessions with streams still open are only in bySession.
      const all = [...new Set([...entries.values(), ...bySession.values()])];
      await Promise.all(
        all.map(async (e) => {
          entries.delete(e.key);
          const s = await e.opened.catch(() => undefined);
          if (s === undefined) return;
          bySession.delete(s.id);
          await pipeline.endSession(s, { reason: 'gateway stopping', commands: e.requests }).catch(() => undefined);
        }),
      );
    },
  };
}
