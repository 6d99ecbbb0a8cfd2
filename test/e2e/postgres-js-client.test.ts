/**
 * A second real client: `postgres` (porsager/postgres.js), which speaks the extended protocol only,
 * names and caches its prepared statements and pipelines queries on one connection. Through the
 * gateway: masked results, parameters, a pipelined batch, multi-statement text, transactions,
 * cursors, COPY out, denials and held statements with the session still usable — and every
 * statement recorded once, in order.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import type { AuditRecord } from '../../src/audit/index.js';
import type { SluiceConfig } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import type { Gateway } from '../../src/server/gateway.js';
import { endedSessionRecords, startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

describe('postgres.js through the gateway', () => {
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

  const connect = async (role: 'reader' | 'writer', subject: string) => {
    const token = await mintLocalToken(config, { role, subject });
    const db = role === 'reader' ? 'appdb' : 'appdb-rw';
    return postgres({ host: '127.0.0.1', port, user: `${role}@${db}`, password: token, database: 'app', max: 1, connect_timeout: 10, onnotice: () => undefined });
  };

  it('serves reads, parameters, pipelining, transactions, cursors and COPY, masked', async () => {
    const sql = await connect('writer', 'postgres-js@acme');
    try {
      const rows = await sql`SELECT id, name, email, card FROM customers ORDER BY id`;
      assert.deepEqual(
        rows.map((r) => [r.name, r.email, r.card]),
        [
          ['Ada Lovelace', 'a***@example.com', '4111 **** **** 1111'],
          ['Alan Turing', 'a***@example.org', '5500-****-****-0004'],
        ],
      );
      assert.equal((await sql`SELECT count(*)::int AS n FROM orders WHERE total > ${10}`)[0]?.n, 40);
      // One connection, five queries in flight at once.
      const batch = await Promise.all([1, 2, 3, 4, 5].map((i) => sql`SELECT ${i}::int AS i, ${'ada@example.com'}::text AS e`));
      assert.deepEqual(batch.map((r) => [r[0]?.i, r[0]?.e]), [1, 2, 3, 4, 5].map((i) => [i, 'a***@example.com']));
      const multi = (await sql.unsafe('SELECT 1 AS a; SELECT 2 AS b')) as unknown as postgres.Row[][];
      assert.deepEqual(multi.map((r) => r[0]), [{ a: 1 }, { b: 2 }]);
      const inTx = await sql.begin(async (tx) => [await tx`INSERT INTO orders (customer_id, total) VALUES (1, ${42}) RETURNING id`, await tx`SELECT count(*)::int AS n FROM orders WHERE total = 42`]);
      assert.ok((inTx[1] as postgres.RowList<postgres.Row[]>)[0]?.n >= 1);
      const pages: number[] = [];
      for await (const page of sql`SELECT g FROM generate_series(1, 25) g`.cursor(10)) pages.push(page.length);
      assert.deepEqual(pages, [10, 10, 5]);
      let copied = '';
      for await (const chunk of await sql`COPY (SELECT id, email FROM customers ORDER BY id) TO STDOUT`.readable()) copied += String(chunk);
      assert.equal(copied, '1\ta***@example.com\n2\ta***@example.org\n');
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('reports denials and held statements as PostgreSQL errors and keeps the session usable', async () => {
    const reader = await connect('reader', 'postgres-js-reader@acme');
    const writer = await connect('writer', 'postgres-js-writer@acme');
    try {
      await assert.rejects(reader`DELETE FROM orders`, (e: Error & { code?: string }) => e.code === '42501' && /reader-no-writes/.test(e.message));
      assert.equal((await reader`SELECT 7 AS seven`)[0]?.seven, 7);
      await assert.rejects(writer`DELETE FROM orders WHERE id = ${-1}`, (e: Error & { code?: string }) => e.code === '42501' && /requires approval/.test(e.message));
      assert.equal((await writer`SELECT 8 AS eight`)[0]?.eight, 8);
      await assert.rejects(writer`SELECT 1/0`, (e: Error & { code?: string }) => e.code === '22012');
      assert.equal((await writer`SELECT 9 AS nine`)[0]?.nine, 9);
    } finally {
      await reader.end({ timeout: 5 });
      await writer.end({ timeout: 5 });
    }
  });

  it('records each statement of a pipelined batch once, in the order it ran', async () => {
    const sql = await connect('writer', 'postgres-js-order@acme');
    try {
      await Promise.all([
        sql`SELECT ${1}::int AS step`,
        sql`INSERT INTO orders (customer_id, total) VALUES (2, ${7001})`,
        sql`SELECT ${2}::int AS step`,
        sql`SELECT ${3}::int AS step`,
      ]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    const events = await endedSessionRecords(gw.audit.store, 'postgres-js-order@acme');
    const commands = events.filter((e) => e.type === 'command' && e.command?.kind !== undefined && /step|orders/.test(e.command.text));
    assert.deepEqual(
      commands.map((e) => e.command?.kind),
      ['select', 'insert', 'select', 'select'],
      JSON.stringify(commands.map((e) => e.command?.text)),
    );
    const insert = commands[1] as AuditRecord;
    assert.equal(insert.outcome, 'pending');
    assert.ok(events.some((e) => e.type === 'command.result' && e.command?.text === insert.command?.text && e.outcome === 'success' && e.seq > insert.seq));
  });
});
