/**
 * A pure read is one record however the upstream's bytes are chunked. PostgreSQL flushes an
 * ErrorResponse at once and ReadyForQuery after it, so on a loaded machine they reach Sluice in
 * two reads; before, that split turned the read into two records (decision, then result), and a
 * test that read the log at the wrong moment saw a read stuck "pending". Here a relay between
 * Sluice and a real PostgreSQL delivers every ReadyForQuery 30 ms after what precedes it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, endedSessionRecords, standardConfig, type Fixture } from '../helpers/gateway.js';

/** A TCP relay to `port` that holds each backend ReadyForQuery frame back by `delayMs`. */
async function splittingRelay(port: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    let startup = true;
    upstream.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // What came before a ReadyForQuery goes out in one write, as the server wrote it; the
      // ReadyForQuery itself follows delayMs later (after startup).
      let batch: Buffer[] = [];
      const flush = (parts: Buffer[]): void => {
        if (parts.length > 0) chain = chain.then(() => void client.write(Buffer.concat(parts)));
      };
      for (;;) {
        if (buf.length < 5) break;
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const f = Buffer.from(buf.subarray(0, len + 1));
        buf = buf.subarray(len + 1);
        if (f[0] !== 0x5a /* Z */ || startup) {
          batch.push(f);
          if (f[0] === 0x5a) startup = false;
          continue;
        }
        flush(batch);
        batch = [];
        chain = chain.then(async () => {
          await new Promise((r) => setTimeout(r, delayMs));
          client.write(f);
        });
      }
      flush(batch);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('pure reads whose ReadyForQuery comes in a later chunk', () => {
  let f: Fixture;
  let relay: Awaited<ReturnType<typeof splittingRelay>>;
  let gw: Gateway;

  before(async () => {
    f = await createFixture();
    relay = await splittingRelay(f.pg.port, 30);
    const yaml = standardConfig(f).replaceAll(`port: ${f.pg.port}`, `port: ${relay.port}`);
    gw = await startGateway(loadConfigFile(f.writeConfig(yaml)), { log: () => undefined });
  });

  after(async () => {
    await gw?.close();
    await relay?.close();
    await f?.cleanup();
  });

  it('records a failed read and a successful one as one record each, and the client gets both results', async () => {
    const token = await mintLocalToken(gw.config, { role: 'reader', subject: 'chunks@acme' });
    const c = new pg.Client({ host: '127.0.0.1', port: gw.addresses.postgres?.port as number, user: 'reader', password: token, database: 'appdb' });
    await c.connect();
    try {
      await assert.rejects(c.query('SELECT 1/0 AS boom'), /division by zero/);
      const r = await c.query('SELECT card FROM customers ORDER BY id');
      assert.deepEqual(r.rows.map((row: { card: string }) => row.card), ['4111 **** **** 1111', '5500-****-****-0004']);
    } finally {
      await c.end();
    }
    const events = await endedSessionRecords(gw.audit.store, 'chunks@acme');
    const commands = events.filter((e) => e.type === 'command' || e.type === 'command.result').map((e) => `${e.type} ${e.outcome ?? ''}`);
    assert.deepEqual(commands, ['command failure', 'command success']);
  });
});
