/**
 * A bare PostgreSQL wire client for tests that need message sequences no driver sends (a Bind
 * without its Execute, a simple Query between them): frames from pg-protocol's serializer, replies
 * read back as (type, fields) until the expected number of ReadyForQuery messages.
 */
import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';

export interface RawMessage {
  /** The message type letter: `T`, `D`, `C`, `E`, `Z`, `1`, `2`, … */
  readonly type: string;
  readonly body: Buffer;
}

export interface RawClient {
  /** Send the frames, then collect replies through the `readyCount`-th ReadyForQuery (or until `done` says so). */
  exchange(frames: readonly Buffer[], readyCount?: number, done?: (received: readonly RawMessage[]) => boolean): Promise<RawMessage[]>;
  /** Send the frames without waiting for anything (while an exchange is still collecting replies). */
  send(frames: readonly Buffer[]): void;
  close(): void;
}

export const msg = {
  query: (text: string): Buffer => serialize.query(text),
  parse: (name: string, text: string): Buffer => serialize.parse({ name, text, types: [] }),
  bind: (portal: string, statement: string, values: string[] = []): Buffer => serialize.bind({ portal, statement, values }),
  execute: (portal: string): Buffer => serialize.execute({ portal, rows: 0 }),
  sync: (): Buffer => serialize.sync(),
  flush: (): Buffer => serialize.flush(),
};

/** Connect and authenticate with a cleartext password (the gateway's token); `params` adds startup parameters. */
export async function rawConnect(port: number, user: string, database: string, password: string, params: Record<string, string> = {}): Promise<RawClient> {
  const socket: Socket = connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  let inbox: RawMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 5) {
      const len = buf.readInt32BE(1);
      if (buf.length < len + 1) break;
      const m = { type: String.fromCharCode(buf[0] as number), body: Buffer.from(buf.subarray(5, len + 1)) };
      buf = buf.subarray(len + 1);
      if (m.type === 'R' && m.body.readInt32BE(0) === 3) socket.write(serialize.password(password));
      inbox.push(m);
    }
    wake?.();
  });
  socket.on('error', (err) => {
    failure = err;
    wake?.();
  });
  socket.on('close', () => {
    failure ??= new Error('connection closed');
    wake?.();
  });
  const until = async (readyCount: number, done?: (received: readonly RawMessage[]) => boolean): Promise<RawMessage[]> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ready = inbox.filter((m) => m.type === 'Z').length;
      if (done !== undefined ? done(inbox) : ready >= readyCount) {
        const out = inbox;
        inbox = [];
        return out;
      }
      if (failure !== undefined) throw new Error(`${failure.message}; got ${inbox.map((m) => (m.type === 'E' ? `E(${errorFields(m).M ?? ''})` : m.type)).join(' ')}`);
      if (Date.now() > deadline) throw new Error(`timed out; got ${inbox.map((m) => m.type).join(' ')}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  socket.write(serialize.startup({ ...params, user, database }));
  await until(1);
  return {
    async exchange(frames, readyCount = 1, done) {
      socket.write(Buffer.concat(frames));
      return until(readyCount, done);
    },
    send: (frames) => void socket.write(Buffer.concat(frames)),
    close: () => socket.end(serialize.end()),
  };
}

/** An ErrorResponse's fields by their one-letter code (`C` SQLSTATE, `M` message, `D` detail). */
export function errorFields(m: RawMessage): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const code = String.fromCharCode(m.body[i] as number);
    const end = m.body.indexOf(0, i + 1);
    out[code] = m.body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

/** A DataRow's text columns (null for SQL NULL). */
export function dataRow(m: RawMessage): (string | null)[] {
  const n = m.body.readInt16BE(0);
  const out: (string | null)[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const len = m.body.readInt32BE(off);
    off += 4;
    if (len < 0) out.push(null);
    else {
      out.push(m.body.toString('utf8', off, off + len));
      off += len;
    }
  }
  return out;
}
