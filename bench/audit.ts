/**
 * Audit append throughput with durability on: events/s acknowledged (each append resolves only
 * after its transaction committed).
 *
 * 1. Gateway-shape rows (`--only session` runs just these; the gateway's shape): 8 concurrent appenders, each its own session with a
 *    full SessionInfo (deep-frozen GitHub Actions identity, 19 claims), appending `command` records like the
 *    PostgreSQL connector's, masked by the default masker the gateway uses. Also reports how many
 *    events each transaction carried (group commit) and the CPU cost per event.
 * 2. The original matrix: 1 and 8 appenders sharing one session, identity masker, for SQLite
 *    synchronous=NORMAL and FULL and for PostgreSQL (synchronous_commit=on per transaction).
 *
 *   npx tsx bench/audit.ts [--seconds 3] [--no-postgres] [--only session]
 *
 * Results go to stdout as Markdown tables; bench/README-audit.md records a run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig, type SluiceConfig } from '../src/config/index.js';
import { openAuditLog, openAuditStore, type AuditEventInput, type AuditStore } from '../src/audit/index.js';
import { defaultMasker } from '../src/masking/index.js';
import type { SessionInfo } from '../src/pipeline/session.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, 'no-postgres': { type: 'boolean' }, only: { type: 'string' } } });
const seconds = Number(values.seconds ?? 3);
const only = values.only;

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
const event = (i: number): AuditEventInput => ({
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

/**
 * One gateway session as the PostgreSQL connector builds it: a verified GitHub Actions OIDC
 * identity, deep-frozen as buildIdentity (src/identity/build-identity.ts) returns it.
 */
function githubSession(n: number): SessionInfo {
  const run = 7_000_000_000 + n;
  const s: SessionInfo = {
    id: `s${n}-${'x'.repeat(14)}`,
    connection: 'appdb',
    protocol: 'postgres',
    identity: {
      issuer: 'https://token.actions.githubusercontent.com',
      subject: 'repo:acme/app:environment:production',
      claims: {
        jti: `b1f9c7e2-0a4d-4b6e-9c1d-${String(n).padStart(12, '0')}`,
        sub: 'repo:acme/app:environment:production',
        aud: 'sluice',
        repository: 'acme/app',
        repository_owner: 'acme',
        repository_id: '123456789',
        ref: 'refs/heads/main',
        sha: 'd6fde92930d4715a2b49857d24b940956b26d2d3',
        run_id: String(run),
        run_attempt: '1',
        workflow: 'Nightly data checks',
        job_workflow_ref: 'acme/app/.github/workflows/nightly.yml@refs/heads/main',
        environment: 'production',
        actor: 'octocat',
        event_name: 'schedule',
        runner_environment: 'github-hosted',
        iss: 'https://token.actions.githubusercontent.com',
        iat: 1_760_000_000,
        exp: 1_760_000_900,
      },
      roles: ['ci-readonly'],
      model: 'claude-sonnet-4',
      sponsor: 'octocat',
      expiresAt: 1_760_000_900,
      tokenId: `b1f9c7e2-0a4d-4b6e-9c1d-${String(n).padStart(12, '0')}`,
    },
    role: 'ci-readonly',
    source: `10.1.0.${n + 10}:5${String(n).padStart(4, '0')}`,
    upstreamTarget: '127.0.0.1:5432/app',
    upstreamUser: 'app_ro',
    startedAt: Date.now(),
    client: 'psql',
  };
  Object.freeze(s.identity.claims);
  Object.freeze(s.identity.roles);
  Object.freeze(s.identity);
  return s;
}

/** What `recordDecision` in the PostgreSQL connector appends before forwarding a statement. */
const gatewayCommand = (s: SessionInfo, i: number): AuditEventInput => ({
  type: 'command',
  session: s,
  command: { text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 100000}`, kind: 'select', objects: ['pgbench_accounts'] },
  decision: { effect: 'allow', rule: 'policies[0].allow[0]' },
  policyVersion: 'sha256:4f1c2a9e0b7d',
  outcome: 'pending',
});

interface Result {
  eps: number;
  p50: number;
  p99: number;
  perCommit: number;
  /** CPU per event of every thread of the process. */
  cpuUs: number;
  /** CPU per event of the event-loop thread only (what the gateway's proxies compete with). */
  loopUs: number;
}

/** CPU time (µs) of this process's main thread, from /proc (Linux). */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 1e4; // utime + stime, 100 ticks per second
}

/** Counts appendBatch calls that wrote events, to show how well group commit batches. */
function countingStore(store: AuditStore, tally: { commits: number; events: number }): AuditStore {
  return {
    ...store,
    kind: store.kind,
    location: store.location,
    async appendBatch(build) {
      const w = await store.appendBatch(build);
      if (w !== null && w.events.length > 0) {
        tally.commits += 1;
        tally.events += w.events.length;
      }
      return w;
    },
  };
}

/**
 * `spool`: the default SQLite path (one write per commit, the writer thread ingests); the run
 * counts until everything appended is in SQLite, so ingestion has to keep up. `inline`: SQLite
 * transactions on the event loop (the CLI's mode, and the only one for PostgreSQL).
 */
async function measure(storeYaml: string, audit: string, concurrency: number, next: (worker: number, i: number) => AuditEventInput, mask: (s: string) => string, writer: 'spool' | 'inline' = 'inline'): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-audit-'));
  try {
    const yaml = `dataDir: ${dir}\nstore: ${storeYaml.replaceAll('$DIR', dir)}\nidentity: { issuers: [ { local: true } ] }\naudit: ${audit}\n`;
    const config: SluiceConfig = parseConfig(yaml, join(dir, 'sluice.yaml'));
    const tally = { commits: 0, events: 0 };
    const log =
      writer === 'spool'
        ? await openAuditLog(config, { mask })
        : await openAuditLog(config, { mask, store: countingStore(await openAuditStore(config), tally) });
    // warm-up
    for (let i = 0; i < 200; i++) await log.append(next(0, i));
    await log.store.readHead();
    tally.commits = 0;
    tally.events = 0;
    const stats0 = log.stats();
    const latencies: number[] = [];
    let count = 0;
    const end = performance.now() + seconds * 1000;
    const worker = async (w: number): Promise<void> => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await log.append(next(w, count));
        latencies.push(performance.now() - t0);
        count += 1;
      }
    };
    const cpu0 = process.cpuUsage();
    const loop0 = mainThreadCpuUs();
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
    // Until every record is in the store (for the spool: ingested by the writer thread).
    await log.store.readHead();
    const elapsed = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const loop = mainThreadCpuUs() - loop0;
    const stats = log.stats();
    const perCommit = writer === 'spool' ? (stats.records - stats0.records) / Math.max(1, stats.commits - stats0.commits) : tally.events / Math.max(1, tally.commits);
    await log.close();
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    return { eps: count / elapsed, p50: pct(0.5), p99: pct(0.99), perCommit, cpuUs: (cpu.user + cpu.system) / count, loopUs: loop / count };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (r: Result): string => `${Math.round(r.eps).toLocaleString('en-US')} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.perCommit.toFixed(1)} | ${r.loopUs.toFixed(1)} | ${r.cpuUs.toFixed(1)}`;
const HEAD = '| store | writer | appenders | events/s | p50 ms | p99 ms | events/commit | event-loop CPU µs/event | all-threads CPU µs/event |\n|---|---|---|---|---|---|---|---|---|';

console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${seconds}s per row`);

const masker = defaultMasker();
const gatewayMask = (t: string): string => masker.maskText(t);
const sessions = Array.from({ length: 8 }, (_, n) => githubSession(n));
console.log('\n**Gateway shape**: 8 sessions, full GitHub Actions identity, `command` records, default masker\n');
console.log(HEAD);
for (const sync of ['normal', 'full'] as const) {
  for (const writer of ['spool', 'inline'] as const) {
    const r = await measure('{ sqlite: $DIR/sluice.db }', `{ synchronous: ${sync} }`, 8, (w, i) => gatewayCommand(sessions[w] as SessionInfo, i), gatewayMask, writer);
    console.log(`| SQLite synchronous=${sync.toUpperCase()} | ${writer} | 8 | ${fmt(r)} |`);
  }
}
if (only === 'session') process.exit(0);

console.log('\n**Shared session**: one session, short identity, identity masker\n');
console.log(HEAD);
const line = (store: string, writer: string, c: number, r: Result): void => console.log(`| ${store} | ${writer} | ${c} | ${fmt(r)} |`);
for (const sync of ['normal', 'full'] as const) {
  for (const writer of ['spool', 'inline'] as const) {
    for (const c of [1, 8]) line(`SQLite synchronous=${sync.toUpperCase()}`, writer, c, await measure('{ sqlite: $DIR/sluice.db }', `{ synchronous: ${sync} }`, c, (_w, i) => event(i), (s) => s, writer));
  }
}

if (values['no-postgres'] !== true) {
  const { startPostgres } = await import('../test/helpers/postgres.js');
  // The test server runs with fsync=off, so these figures show protocol and transaction cost, not disk sync cost.
  const pg = await startPostgres();
  try {
    await pg.query('CREATE DATABASE bench');
    for (const c of [1, 8]) {
      await pg.query('DROP TABLE IF EXISTS sluice_audit_events, sluice_audit_checkpoints, sluice_audit_pruned, sluice_audit_head, sluice_audit_meta, sluice_audit_cursors', 'bench');
      line('PostgreSQL 15 (test server, fsync=off)', 'inline', c, await measure(`{ postgres: "postgres://${pg.superuser}:${pg.password}@127.0.0.1:${pg.port}/bench" }`, '{}', c, (_w, i) => event(i), (s) => s));
    }
  } finally {
    await pg.stop();
  }
}
