/**
 * The sessions API's reads, off the gateway's event loop. better-sqlite3 is synchronous: a session
 * list over a large log, or a 20,000-record timeline, would otherwise hold every proxied statement
 * while it ran. With SQLite the reads run in a worker thread on a read-only connection of its own
 * (WAL lets it read while the writer thread writes), started at the first read. PostgreSQL's client
 * is asynchronous already, so those reads run in place.
 */
import { Worker } from 'node:worker_threads';
import { ERROR_TABLE, SluiceError, type SluiceErrorCode } from '../../errors.js';
import { sessionsAnswer, timelineAnswer, type ReadAnswer } from './answers.js';
import type { AuditStore, SessionFilter } from '../store/types.js';
import type { ReaderQuery, ReaderReply, ReaderRequest, ReaderThreadData } from './protocol.js';

export interface AuditReader {
  /** `{ items }` (answers.ts). */
  sessions(filter: SessionFilter): Promise<ReadAnswer>;
  /** `{ session, events, total, truncated }`; undefined for an unknown session. */
  timeline(sessionId: string, limit: number): Promise<ReadAnswer | undefined>;
  close(): Promise<void>;
}

/** Reads on the caller's thread: PostgreSQL stores (their client does not block the loop). */
export function storeReader(store: AuditStore): AuditReader {
  return {
    sessions: (filter) => sessionsAnswer(store, filter),
    timeline: (id, limit) => timelineAnswer(store, id, limit),
    close: async () => {},
  };
}

export interface ThreadReaderOptions {
  /** The SQLite file. */
  readonly path: string;
  /** Resolves once every record appended so far is readable from the store (AuditLog.visible). */
  readonly visible: () => Promise<void>;
}

const ENTRY = new URL('./reader-thread.mjs', import.meta.url);

/** Reads in a worker thread on its own read-only SQLite connection. */
export function threadReader(o: ThreadReaderOptions): AuditReader {
  let worker: Worker | undefined;
  let closed = false;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const failAll = (err: Error): void => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const start = (): Worker => {
    const data: ReaderThreadData = { path: o.path };
    const w = new Worker(ENTRY, { workerData: data });
    // Idle between reads; it must not keep the process alive.
    w.unref();
    w.on('message', (m: ReaderReply) => {
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new SluiceError(m.error.code in ERROR_TABLE ? (m.error.code as SluiceErrorCode) : 'SLUICE_AUDIT_UNAVAILABLE', m.error.message));
    });
    const gone = (err: Error): void => {
      if (worker === w) worker = undefined;
      failAll(new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `the audit reader stopped: ${err.message}`));
    };
    w.on('error', gone);
    w.on('exit', (code) => gone(new Error(`exit code ${code}`)));
    return w;
  };
  const ask = async <T>(query: ReaderQuery): Promise<T> => {
    await o.visible();
    if (closed) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'the gateway is shutting down');
    worker ??= start();
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const req: ReaderRequest = { ...query, id };
      worker!.postMessage(req);
    });
  };
  return {
    sessions: (filter) => ask<ReadAnswer>({ op: 'list', filter }),
    timeline: (sessionId, limit) => ask<ReadAnswer | undefined>({ op: 'timeline', sessionId, limit }),
    async close() {
      const w = worker;
      worker = undefined;
      closed = true;
      failAll(new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'the gateway is shutting down'));
      await w?.terminate();
    },
  };
}
