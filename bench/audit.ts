/**
 * Audit append throughput with durability on: events/s acknowledged (each append resolves only
 * after its transaction committed), with 1 and 8 concurrent appenders, for SQLite
 * synchronous=NORMAL and FULL and for PostgreSQL (synchronous_commit=on per transaction).
 *
 *   npx tsx bench/audit.ts [--seconds 3] [--no-postgres]
 *
 * Results go to stdout as a Markdown table; bench/README-audit.md records a run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/index.js';
import { openAuditLog } from '../src/audit/index.js';
import type { SessionInfo } from '../src/pipeline/session.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, 'no-postgres': { type: 'boolean' } } });
const seconds = Number(values.seconds ?? 3);

const session: SessionInfo = {
  id: 'bench-session',
  connection: 'appdb',
  protocol: 'postgres',
  identity: { issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:acme/app:ref:refs/heads/main', claims: { repository: 'acme/app', run_id: '1' }, roles: ['ci-readonly'], expiresAt: 0 },
  role: 'ci-readonly',
  source: '127.0.0.1:50000',
  upstreamTarget: '127.0.0.1:5432/app',
  upstreamUser: 'app_ro',
  startedAt: Date.now(),
};

// A realistic command record: identity, decision, counts and a short masked preview (~900 bytes stored).
const event = (i: number) => ({
  type: 'command' as const,
  session,
  command: { text: `SELECT id, email, status FROM orders WHERE id = ${i}`, verb: 'select', kind: 'select', objects: ['orders'] },
  decision: { effect: 'allow' as const, rule: 'ci-readonly/appdb#1', reason: 'select allowed' },
  outcome: 'success' as const,
  rows: 1,
  bytes: 120,
  durationMs: 0.4,
  preview: { columns: ['id', 'email', 'status'], rows: [[String(i), '[EMAIL]', 'shipped']] },
});

async function measure(storeYaml: string, audit: string, concurrency: number): Promise<{ eps: number; p50: number; p99: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-audit-'));
  try {
    const yaml = `dataDir: ${dir}\nstore: ${storeYaml.replaceAll('$DIR', dir)}\nidentity: { issuers: [ { local: true } ] }\naudit: ${audit}\n`;
    const config = parseConfig(yaml, join(dir, 'sluice.yaml'));
    const log = await openAuditLog(config, { mask: (s) => s });
    // warm-up
    for (let i = 0; i < 200; i++) await log.append(event(i));
    const latencies: number[] = [];
    let count = 0;
    const end = performance.now() + seconds * 1000;
    const worker = async (): Promise<void> => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await log.append(event(count));
        latencies.push(performance.now() - t0);
        count += 1;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - start) / 1000;
    await log.close();
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    return { eps: count / elapsed, p50: pct(0.5), p99: pct(0.99) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
const line = (store: string, c: number, r: { eps: number; p50: number; p99: number }): void => {
  const s = `| ${store} | ${c} | ${Math.round(r.eps).toLocaleString('en-US')} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`;
  rows.push(s);
  console.log(s);
};

console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${seconds}s per row`);
console.log('| store | appenders | events/s | p50 ms | p99 ms |');
console.log('|---|---|---|---|---|');
for (const sync of ['normal', 'full'] as const) {
  for (const c of [1, 8]) line(`SQLite WAL synchronous=${sync.toUpperCase()}`, c, await measure('{ sqlite: $DIR/sluice.db }', `{ synchronous: ${sync} }`, c));
}

if (values['no-postgres'] !== true) {
  const { startPostgres } = await import('../test/helpers/postgres.js');
  // The test server runs with fsync=off, so these figures show protocol and transaction cost, not disk sync cost.
  const pg = await startPostgres();
  try {
    await pg.query('CREATE DATABASE bench');
    for (const c of [1, 8]) {
      await pg.query('DROP TABLE IF EXISTS sluice_audit_events, sluice_audit_checkpoints, sluice_audit_pruned, sluice_audit_head, sluice_audit_meta, sluice_audit_cursors', 'bench');
      line('PostgreSQL 15 (test server, fsync=off)', c, await measure(`{ postgres: "postgres://${pg.superuser}:${pg.password}@127.0.0.1:${pg.port}/bench" }`, '{}', c));
    }
  } finally {
    await pg.stop();
  }
}
