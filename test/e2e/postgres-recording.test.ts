/**
 * How statements are recorded through the gateway, against a real PostgreSQL: a pure read is one
 * `command` record written when its result is in (decision and result together), before any byte
 * of the result reaches the client; a write, or a result longer than one upstream chunk, is a
 * `command` record (the decision) then a `command.result`. Pipelined statements keep their order
 * in the log, and a pure read whose client leaves before its result is still recorded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import pg from 'pg';
import { listSessions, type AuditRecord } from '../../src/audit/index.js';
import type { SluiceConfig } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import type { Gateway } from '../../src/server/gateway.js';
import { Backend, executeMessage, frame, Frontend, parseMessage, queryMessage, startupMessage } from '../../src/connectors/postgres/protocol.js';
import { endedSessionRecords, startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

/** A statement long enough (~100 ms and more) to still be running when the next message arrives. */
const SLOW_READ = 'SELECT count(*) FROM generate_series(1, 2000000)';

describe('PostgreSQL statement records', () => {
  let sg: StandardGateway;
  let gw: Gateway;
  let port: number;
  let config: SluiceConfig;

  before(async () => {
    sg = await startStandardGateway();
    ({ gw, port, config } = sg);
  });

  after(async () => {
    await sg?.close();
  });

  const sessionRecords = (subject: string): Promise<AuditRecord[]> => endedSessionRecords(gw.audit.store, subject);

  const shape = (events: readonly AuditRecord[]): string[] =>
    events.filter((e) => e.type === 'command' || e.type === 'command.result').map((e) => `${e.type} ${e.command?.kind ?? '?'} ${e.outcome ?? ''}`);

  /** A raw protocol session (so messages can be pipelined or cut off), authenticated as `writer`. */
  async function rawSession(subject: string): Promise<{ socket: Socket; received: () => Buffer; readyCount: () => number }> {
    const token = await mintLocalToken(config, { role: 'writer', subject });
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(startupMessage({ user: 'writer', database: 'appdb-rw' }));
    await waitFor(() => buf.length >= 9);
    socket.write(frame(Frontend.Password, Buffer.from(token + '\0')));
    await waitFor(() => countReady(buf) >= 1);
    const base = buf.length;
    return { socket, received: () => buf.subarray(base), readyCount: () => countReady(buf.subarray(base)) };
  }

  it('records a pure read as one record holding its decision and its result; a write as a decision, then a result', async () => {
    const token = await mintLocalToken(config, { role: 'writer', subject: 'one-record@acme' });
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'writer', password: token, database: 'appdb-rw' });
    await c.connect();
    try {
      const r = await c.query('SELECT name FROM customers ORDER BY id');
      assert.equal(r.rowCount, 2);
      await c.query('SELECT $1::int AS n', [7]); // extended protocol
      await c.query('INSERT INTO orders (customer_id, total) VALUES (1, 1)');
      await assert.rejects(c.query('SELECT 1/0'), /division by zero/);
      await assert.rejects(c.query('DROP TABLE orders'), /denied/);
    } finally {
      await c.end();
    }
    const events = await sessionRecords('one-record@acme');
    assert.deepEqual(shape(events), [
      'command select success',
      'command select success',
      'command insert pending',
      'command.result insert success',
      'command select failure',
      'command ddl denied',
    ]);
    const [first, second] = events.filter((e) => e.type === 'command');
    assert.equal(first?.rows, 2);
    assert.deepEqual(first?.details?.tags, ['SELECT 2']);
    assert.equal(first?.decision?.effect, 'allow');
    assert.ok(typeof first?.durationMs === 'number' && typeof first.bytes === 'number' && first.bytes > 0);
    assert.equal(second?.rows, 1);
    const failed = events.find((e) => e.type === 'command' && e.outcome === 'failure');
    assert.equal(failed?.error?.code, '22012');
    // Counted once each, and the failure counts as an error.
    const [summary] = await listSessions(gw.audit.store, { subject: 'one-record@acme' });
    assert.equal(summary?.commands, 5);
    assert.equal(summary?.denied, 1);
    assert.equal(summary?.errors, 1);
    // The session's own end record counts the same way.
    const end = events.find((e) => e.type === 'session.end');
    assert.deepEqual([end?.details?.commands, end?.details?.denied], [5, 1]);
  });

  it('keeps a role\'s new password out of the recorded statement text, allowed or refused', async () => {
    const token = await mintLocalToken(config, { role: 'writer', subject: 'role-password@acme' });
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'writer', password: token, database: 'appdb-rw' });
    await c.connect();
    try {
      for (const sql of ["ALTER ROLE app WITH PASSWORD 'Fr3sh-Pw-9931'", "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password 'Fr3sh-Pw-9932')", "CREATE ROLE bob LOGIN ENCRYPTED PASSWORD 'Fr3sh-Pw-99''33'"]) {
        await assert.rejects(c.query(sql), /denied|does not exist|permission/, sql);
      }
    } finally {
      await c.end();
    }
    const events = await sessionRecords('role-password@acme');
    const texts = events.filter((e) => e.type === 'command').map((e) => e.command?.text ?? '');
    assert.equal(texts.length, 3);
    for (const text of texts) assert.match(text, /PASSWORD '\[REDACTED:password\]'|password '\[REDACTED:password\]'/, text);
    assert.ok(!JSON.stringify(events).includes('Fr3sh-Pw'), 'no record holds the password');
  });

  it('records the decision before the first rows of a result longer than one chunk, and the result after', async () => {
    const token = await mintLocalToken(config, { role: 'writer', subject: 'long-result@acme' });
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'writer', password: token, database: 'appdb-rw' });
    await c.connect();
    try {
      const r = await c.query(`SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 20000) g`);
      assert.equal(r.rowCount, 20000);
    } finally {
      await c.end();
    }
    const events = await sessionRecords('long-result@acme');
    assert.deepEqual(shape(events), ['command select pending', 'command.result select success']);
    assert.equal(events.find((e) => e.type === 'command.result')?.rows, 20000);
  });

  it('keeps pipelined statements in the order they ran: a pending pure read is recorded before a later write', async () => {
    const s = await rawSession('pipelined@acme');
    // Both in one write: the INSERT reaches the gateway while the SELECT still runs upstream.
    s.socket.write(Buffer.concat([queryMessage(SLOW_READ), queryMessage('INSERT INTO orders (customer_id, total) VALUES (2, 2)')]));
    await waitFor(() => s.readyCount() >= 2);
    assert.ok(s.received().includes(Buffer.from('INSERT 0 1')), 'both statements ran');
    s.socket.end(frame(Frontend.Terminate, Buffer.alloc(0)));
    const events = await sessionRecords('pipelined@acme');
    assert.deepEqual(shape(events), ['command select pending', 'command insert pending', 'command.result select success', 'command.result insert success']);
  });

  it('property: any pipeline of reads, long reads, failures, writes, denials and extended-protocol reads is recorded once each, in the order sent', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...(Object.keys(STEPS) as StepName[])), { minLength: 1, maxLength: 8 }), async (steps) => {
        const subject = `pipeline-${run++}@acme`;
        const s = await rawSession(subject);
        const sent = steps.map((name, i) => ({ name, sql: STEPS[name].sql(i) }));
        // All in one write: each statement reaches the gateway while the ones before it still run.
        s.socket.write(Buffer.concat(sent.map((x) => STEPS[x.name].messages(x.sql))));
        await waitFor(() => s.readyCount() >= sent.length);
        s.socket.end(frame(Frontend.Terminate, Buffer.alloc(0)));
        const events = await sessionRecords(subject);
        const commands = events.filter((e) => e.type === 'command');
        assert.deepEqual(commands.map((e) => e.command?.text), sent.map((x) => x.sql), 'one command record per statement, in the order sent');
        const results = events.filter((e) => e.type === 'command.result');
        for (const [i, x] of sent.entries()) {
          const c = commands[i] as AuditRecord;
          const r = results.filter((e) => e.command?.text === x.sql);
          const { outcome, rows } = STEPS[x.name];
          if (outcome === 'denied') {
            assert.deepEqual([c.outcome, r.length], ['denied', 0], x.sql);
          } else if (c.outcome === 'pending') {
            // Decision first, then how it ended, after it.
            assert.equal(r.length, 1, x.sql);
            assert.deepEqual([r[0]?.outcome, r[0]?.rows], [outcome, rows], x.sql);
            assert.ok((r[0]?.seq ?? 0) > c.seq, x.sql);
          } else {
            assert.ok(STEPS[x.name].pure, `${x.sql}: only a pure read carries its result`);
            assert.deepEqual([c.outcome, c.rows, r.length], [outcome, rows, 0], x.sql);
          }
        }
      }),
      { numRuns: 12 },
    );
  });

  it('records a pure read whose client left before its result arrived, before the session ends', async () => {
    const s = await rawSession('left-early@acme');
    // The query, then at once the end of the connection: the gateway reads both long before the
    // statement (~100 ms of counting) can answer.
    s.socket.end(queryMessage(SLOW_READ));
    const events = await sessionRecords('left-early@acme');
    assert.deepEqual(shape(events), ['command select cancelled']);
    const cancelled = events.find((e) => e.type === 'command');
    assert.match(cancelled?.error?.message ?? '', /session ended .* before the result reached the client/);
    assert.equal(cancelled?.decision?.effect, 'allow');
    assert.ok(events.findIndex((e) => e === cancelled) < events.findIndex((e) => e.type === 'session.end'));
  });
});

type StepName = keyof typeof STEPS;
const sync = frame(Frontend.Sync, Buffer.alloc(0));
/** Bind the unnamed statement to the unnamed portal: no parameters, text results. */
const bindUnnamed = frame(Frontend.Bind, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
const STEPS = {
  read: { sql: (i: number) => `SELECT ${i} AS n`, messages: (sql: string) => queryMessage(sql), pure: true, outcome: 'success', rows: 1 },
  'long read': { sql: (i: number) => `SELECT g, ${i} AS n FROM generate_series(1, 20000) g`, messages: (sql: string) => queryMessage(sql), pure: true, outcome: 'success', rows: 20000 },
  'failing read': { sql: (i: number) => `SELECT ${i} / 0`, messages: (sql: string) => queryMessage(sql), pure: true, outcome: 'failure', rows: 0 },
  write: { sql: (i: number) => `INSERT INTO orders (customer_id, total) VALUES (1, ${i})`, messages: (sql: string) => queryMessage(sql), pure: false, outcome: 'success', rows: 0 },
  denied: { sql: (i: number) => `DROP TABLE orders /* ${i} */`, messages: (sql: string) => queryMessage(sql), pure: false, outcome: 'denied', rows: 0 },
  'extended read': {
    sql: (i: number) => `SELECT ${i} AS x`,
    messages: (sql: string) => Buffer.concat([parseMessage('', sql), bindUnnamed, executeMessage(''), sync]),
    pure: true,
    outcome: 'success',
    rows: 1,
  },
} as const;

function countReady(buf: Buffer): number {
  let n = 0;
  for (let o = 0; o + 5 <= buf.length; ) {
    const len = buf.readInt32BE(o + 1);
    if (o + 1 + len > buf.length) break;
    if (buf[o] === Backend.ReadyForQuery) n += 1;
    o += 1 + len;
  }
  return n;
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
