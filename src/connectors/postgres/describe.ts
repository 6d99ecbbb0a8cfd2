/**
 * PostgreSQL's own description of statements' result columns, on a short-lived connection of the
 * gateway's: Parse, Describe, Sync per statement, pipelined, so nothing is executed and one round
 * trip serves many statements (a database's views, say). Hand-written on the wire framing the
 * proxy already has: `pg` cannot describe without executing.
 */
import type { PostgresUpstream } from '../../config/index.js';
import { SluiceError } from '../../errors.js';
import { FrameReader } from './frame-reader.js';
import { Backend, describeMessage, Field, parseErrorFields, parseMessage, SYNC, TERMINATE } from './protocol.js';
import { parseRowDescription, type FieldDescription } from './rows.js';
import { connectUpstream } from './upstream.js';

/** A Describe reply is a RowDescription (a few hundred bytes per column) plus framing. */
const MAX_DESCRIBE_REPLY = 16 * 1024 * 1024;

/** One statement's description: its result columns (`[]` when it returns none), or why not. */
export type Described = { readonly fields: FieldDescription[] } | { readonly error: string };

/**
 * Describe `sqls` in order on one new upstream connection. A statement the upstream refuses
 * (syntax, a missing relation) gets its error; the others are unaffected. Rejects when the
 * connection fails or the replies do not all arrive within `timeoutMs`.
 */
export async function describeStatements(
  upstream: PostgresUpstream,
  connectionName: string,
  sqls: readonly string[],
  timeoutMs = 3000,
): Promise<Described[]> {
  if (sqls.length === 0) return [];
  const up = await connectUpstream({ upstream, params: { application_name: 'sluice-describe' }, connectionName });
  const socket = up.socket;
  try {
    return await new Promise<Described[]>((resolve, reject) => {
      const reader = new FrameReader(MAX_DESCRIBE_REPLY, 'upstream');
      const out: Described[] = [];
      let fields: FieldDescription[] | undefined;
      let error: string | undefined;
      const timer = setTimeout(
        () => reject(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `the upstream did not describe ${sqls.length === 1 ? 'the statement' : `${sqls.length} statements`} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer): void => {
        try {
          reader.feed(chunk);
          while (reader.next()) {
            const body = reader.body();
            if (reader.type === Backend.RowDescription) fields = parseRowDescription(body);
            else if (reader.type === Backend.NoData) fields = [];
            else if (reader.type === Backend.ErrorResponse) error = parseErrorFields(body).get(Field.Message) ?? 'error';
            else if (reader.type === Backend.ReadyForQuery) {
              out.push(fields !== undefined && error === undefined ? { fields } : { error: error ?? 'no row description' });
              fields = undefined;
              error = undefined;
              if (out.length === sqls.length) {
                clearTimeout(timer);
                resolve(out);
              }
            }
          }
        } catch (err) {
          clearTimeout(timer);
          reject(err);
        }
      };
      socket.on('data', onData);
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'the upstream closed the describe connection'));
      });
      socket.on('error', () => undefined);
      // connectUpstream hands the socket over paused, as the proxy wants it.
      socket.resume();
      if (up.leftover.length > 0) onData(up.leftover);
      const frames: Buffer[] = [];
      for (const sql of sqls) frames.push(parseMessage('', sql), describeMessage('S', ''), SYNC);
      socket.write(Buffer.concat(frames));
    });
  } finally {
    socket.end(TERMINATE);
  }
}
