/**
 * The audit reader thread (reader.ts): answers the sessions API's reads from a read-only SQLite
 * connection of its own, one at a time, so the gateway's event loop never runs a query.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { SluiceError } from '../../errors.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { AuditStore } from '../store/types.js';
import { sessionsAnswer, timelineAnswer } from './answers.js';
import type { ReaderReply, ReaderRequest, ReaderThreadData } from './protocol.js';

const port = parentPort as MessagePort;
const data = workerData as ReaderThreadData;
let store: AuditStore | undefined;

function failure(err: unknown): { code: string; message: string } {
  if (err instanceof SluiceError) return { code: err.code, message: err.message };
  return { code: 'SLUICE_AUDIT_UNAVAILABLE', message: `audit store ${data.path} is unavailable (${(err as Error)?.message ?? String(err)})` };
}

port.on('message', (m: ReaderRequest) => {
  void (async (): Promise<ReaderReply> => {
    try {
      store ??= openSqliteStore(data.path, { readonly: true });
      const value = m.op === 'list' ? await sessionsAnswer(store, m.filter) : await timelineAnswer(store, m.sessionId, m.limit);
      return { id: m.id, ok: true, value };
    } catch (err) {
      return { id: m.id, ok: false, error: failure(err) };
    }
  })().then((reply) => port.postMessage(reply));
});
