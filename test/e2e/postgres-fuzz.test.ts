/**
 * Malformed protocol input against a running gateway in front of a real PostgreSQL: truncated,
 * oversized, wrong lengths and random bytes, before and after authentication. The gateway answers
 * with an error or closes that connection; it never crashes, never forwards garbage upstream, and
 * keeps serving other clients.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { frame, Frontend, startupMessage } from '../../src/connectors/postgres/protocol.js';
import { createFixture, standardConfig, type Fixture } from '../helpers/gateway.js';

/** Send bytes, collect whatever comes back until the server closes or goes quiet. */
function exchange(port: number, chunks: Buffer[], quietMs = 150): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ reply: Buffer.concat(got), closed });
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(finish, quietMs);
    };
    s.on('data', (d) => {
      got.push(d);
      arm();
    });
    s.on('close', () => {
      closed = true;
      finish();
    });
    s.on('error', () => undefined);
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      arm();
    });
  });
}

async function upstreamBackends(f: Fixture): Promise<number> {
  const r = await f.pg.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND usename IN ('app_ro','app_rw')`);
  return r.rows[0].n as number;
}

describe('PostgreSQL gateway under malformed input', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  let token: string;

  before(async () => {
    f = await createFixture();
    const config = loadConfigFile(f.writeConfig(standardConfig(f).replace('listen:\n  postgres: 127.0.0.1:0', 'listen:\n  postgres: 127.0.0.1:0\nlimits: { maxMessageBytes: 65536 }')));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    token = await mintLocalToken(config, { role: 'reader', ttlMs: 3_600_000 });
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const stillServes = async (): Promise<void> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'reader', database: 'appdb', password: token });
    await c.connect();
    const r = await c.query('SELECT 1 AS one');
    assert.equal(r.rows[0].one, 1);
    await c.end();
  };

  it('answers random bytes before authentication with an error or a close, opening no upstream', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 400 }), async (bytes) => {
        const { reply } = await exchange(port, [Buffer.from(bytes)], 60);
        // Either nothing, an SSL/GSS refusal byte, an auth request, or an ErrorResponse.
        if (reply.length > 0) assert.ok([0x45, 0x4e, 0x52].includes(reply[0] as number), `unexpected reply ${reply.subarray(0, 8).toString('hex')}`);
      }),
      { numRuns: 60 },
    );
    assert.equal(await upstreamBackends(f), 0);
    await stillServes();
  });

  it('refuses truncated, oversized and wrong-length startup and password messages', async () => {
    const start = startupMessage({ user: 'reader', database: 'appdb' });
    // A truncated packet is simply incomplete: the gateway waits (until the auth timeout), replying nothing.
    const partial = await exchange(port, [start.subarray(0, 6)]);
    assert.equal(partial.reply.length, 0);
    const cases: Buffer[][] = [
      [Buffer.from([0, 0, 0x27, 0x20, 0, 3, 0, 0])], // declares 10016 bytes
      [Buffer.from([0xff, 0xff, 0xff, 0xff])],
      [start, Buffer.from([0x70, 0x7f, 0xff, 0xff, 0xff])], // password message declaring 2 GB
      [start, Buffer.from([0x70, 0, 0, 0, 2])], // length below 4
      [start, frame(Frontend.Query, Buffer.from('SELECT 1\0'))], // a query instead of the password
      [start, frame(Frontend.Password, Buffer.from('no-terminator'))],
    ];
    for (const chunks of cases) {
      const { reply, closed } = await exchange(port, chunks);
      assert.ok(closed, 'connection closed');
      const errAt = reply.indexOf(0x45);
      assert.ok(reply.length === 0 || errAt >= 0, `no error for ${chunks.map((c) => c.toString('hex')).join(' ')}`);
    }
    assert.equal(await upstreamBackends(f), 0);
    await stillServes();
  });

  it('closes an authenticated session that sends garbage frames, without forwarding them', async () => {
    const start = startupMessage({ user: 'reader', database: 'appdb' });
    const password = frame(Frontend.Password, Buffer.from(token + '\0'));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 5, maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.record({ type: fc.constantFrom(0x01, 0x5a, 0x7a, 0x00), body: fc.uint8Array({ maxLength: 50 }) }).map((r) => frame(r.type, Buffer.from(r.body))),
          fc.constant(Buffer.from([0x51, 0x00, 0x10, 0x00, 0x00])), // Query declaring 1 MB, above the 64 KB limit
          fc.constant(Buffer.from([0x50, 0x00, 0x00, 0x00, 0x06, 0x41, 0x42])), // Parse with no terminators
          fc.constant(frame(Frontend.Bind, Buffer.from([0, 0, 0xff, 0xff]))), // Bind with a negative count
        ),
        async (garbage) => {
          const { reply, closed } = await exchange(port, [start, password, garbage], 120);
          assert.ok(reply.length > 0, 'authenticated');
          // The session either ignored a harmless frame or ended with an error; it never hangs silently open with garbage forwarded.
          if (closed) assert.ok(reply.includes(Buffer.from('sluice')) || reply.lastIndexOf(0x5a) > 0);
        },
      ),
      { numRuns: 40 },
    );
    await stillServes();
  });
});
