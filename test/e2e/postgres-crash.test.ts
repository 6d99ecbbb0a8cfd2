/**
 * kill -9 of the gateway under load, with a real PostgreSQL and `pg` clients: every statement a
 * client saw succeed is in the audit log afterwards, and the log verifies ("a crash loses nothing
 * that a client saw succeed"). Pure reads are one record written before their result is
 * released; writes have their decision recorded before they run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openAuditStore, parseRecord, verifyConfiguredLog } from '../../src/audit/index.js';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { createFixture, standardConfig, type Fixture } from '../helpers/gateway.js';

const CHILD = fileURLToPath(new URL('./fixtures/gateway-child.ts', import.meta.url));

describe('gateway crash under load', () => {
  let f: Fixture;
  before(async () => {
    f = await createFixture();
  });
  after(async () => {
    await f?.cleanup();
  });

  it('loses no statement a client saw succeed, and the log verifies', async () => {
    const config = loadConfigFile(f.writeConfig(standardConfig(f)));
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, config.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.once('exit', (code) => reject(new Error(`gateway exited early (${String(code)})`)));
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { port: number }).port);
        });
      });
      const token = await mintLocalToken(config, { role: 'writer', subject: 'crash-test@acme' });
      const reads = new Set<string>();
      const writes = new Set<string>();
      let next = 0;
      let stop = false;
      const client = async (k: number): Promise<void> => {
        const c = new pg.Client({ host: '127.0.0.1', port, user: 'writer', password: token, database: 'appdb-rw' });
        c.on('error', () => undefined);
        try {
          await c.connect();
          while (!stop) {
            const n = next++;
            if (n % 5 === 4) {
              const sql = `INSERT INTO orders (customer_id, total) VALUES (1, ${n}) /* client ${k} */`;
              await c.query(sql);
              writes.add(sql);
            } else {
              const sql = `SELECT ${n}::int AS n /* client ${k} */`;
              const r = await c.query(sql);
              assert.equal(r.rows[0].n, n);
              reads.add(sql);
            }
          }
        } catch {
          // the gateway was killed under this client
        }
      };
      const clients = Array.from({ length: 4 }, (_, k) => client(k));
      while (reads.size + writes.size < 800) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      await exited;
      stop = true;
      await Promise.all(clients);
      assert.ok(writes.size > 0 && reads.size > 0);

      const report = await verifyConfiguredLog(config);
      assert.equal(report.ok, true, JSON.stringify(report.problem));
      const store = await openAuditStore(config, { readonly: true });
      const records = (await store.readEvents(0, 1_000_000)).map((e) => parseRecord(e.body));
      await store.close();
      const commands = new Map(records.filter((r) => r.type === 'command').map((r) => [r.command?.text ?? '', r]));
      const lostReads = [...reads].filter((sql) => commands.get(sql)?.outcome !== 'success');
      const lostWrites = [...writes].filter((sql) => commands.get(sql)?.outcome !== 'pending');
      assert.deepEqual(lostReads, [], 'every read whose result a client got is recorded with that result');
      assert.deepEqual(lostWrites, [], 'every write that ran has its decision recorded');
      assert.ok(records.length > reads.size + writes.size);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
