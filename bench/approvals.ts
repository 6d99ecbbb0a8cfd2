/**
 * Time from a reviewer's approval call to the held statement's result, through a real PostgreSQL
 * and the `pg` client: p50/p95/max over N held DELETEs approved one after another over REST.
 *
 *   npx tsx bench/approvals.ts [--n 30]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfigFile } from '../src/config/index.js';
import { mintLocalToken } from '../src/identity/index.js';
import { startGateway } from '../src/server/gateway.js';
import { createFixture, fixtureConfig } from '../test/helpers/gateway.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '30' } } });
const n = Number(values.n);
const f = await createFixture();
f.writeConfig(
  fixtureConfig(f, {
    http: true,
    roles: ['migrator', { name: 'dba', approver: true }],
    connections: { appdb: { user: 'app_rw' } },
    policies: `  - role: migrator
    connection: appdb
    rules:
      - review: [delete]
        approval: { approvers: [dba] }
`,
  }),
);
const config = loadConfigFile(f.configPath);
const gw = await startGateway(config, { log: () => undefined });
const agentToken = await mintLocalToken(config, { role: 'migrator', subject: 'bot' });
const dbaToken = await mintLocalToken(config, { role: 'dba', subject: 'alice' });
const api = `http://127.0.0.1:${gw.addresses.http?.port}/api/v1/approvals`;
const c = new pg.Client({ host: '127.0.0.1', port: gw.addresses.postgres?.port, user: 'migrator', database: 'appdb', password: agentToken });
const notices: string[] = [];
c.on('notice', (m) => notices.push(m.message ?? ''));
await c.connect();
const samples: number[] = [];
for (let i = 0; i < n; i++) {
  const before = notices.length;
  const q = c.query(`DELETE FROM orders WHERE id = ${i + 1}`);
  let id: string | undefined;
  while (id === undefined) {
    id = notices.slice(before).map((x) => /approval ([A-Za-z0-9_-]+)/.exec(x)?.[1]).find((x) => x !== undefined);
    if (id === undefined) await new Promise((r) => setTimeout(r, 2));
  }
  const t0 = performance.now();
  await fetch(`${api}/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${dbaToken}`, 'content-type': 'application/json' }, body: '{}' });
  await q;
  samples.push(performance.now() - t0);
}
await c.end();
await gw.close();
await f.cleanup();
samples.sort((a, b) => a - b);
const at = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] as number;
process.stdout.write(`approval call → statement result over ${n} requests: p50 ${at(0.5).toFixed(1)} ms, p95 ${at(0.95).toFixed(1)} ms, max ${samples[samples.length - 1]?.toFixed(1)} ms\n`);
