/**
 * pgbench -S through every path in one run: direct to PostgreSQL, through PgBouncer (session
 * pooling), and through Sluice with policy, recording and masking on — plus Sluice with masking
 * off and with recording off, to price each stage. Prints TPS, average latency and the ratios;
 * writes bench/results/pgbench.json.
 *
 *   npx tsx bench/pgbench.ts [--duration 10] [--scale 10] [--clients 1,8] [--modes simple,prepared]
 *                            [--variants sluice,sluice-nomask,sluice-norecord,sluice-inline] [--rounds 1]
 *
 * "recording off" replaces the audit log's append with a no-op inside this benchmark process only;
 * the product has no such switch (a command that cannot be recorded is refused).
 * Needs Debian's postgresql (server + pgbench) and pgbouncer packages.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../src/config/index.js';
import { mintLocalToken } from '../src/identity/index.js';
import { startGateway } from '../src/server/gateway.js';
import { freePort, startPostgres } from '../test/helpers/postgres.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    scale: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1,8' },
    modes: { type: 'string', default: 'simple,prepared' },
    variants: { type: 'string' },
    rounds: { type: 'string', default: '1' },
  },
});
const duration = Number(values.duration);
const clientsList = String(values.clients).split(',').map(Number);

interface Result { target: string; mode: string; clients: number; tps: number; latencyMs: number; loopUsPerTx?: number; otherUsPerTx?: number }

async function pgbench(env: NodeJS.ProcessEnv, host: string, port: number, user: string, db: string, mode: string, clients: number): Promise<{ tps: number; latencyMs: number }> {
  const args = ['-h', host, '-p', String(port), '-U', user, '-S', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(duration), '-n', db];
  const { stdout } = await run('pgbench', args, { env, maxBuffer: 10 << 20 });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench output:\n${stdout}`);
  return { tps, latencyMs };
}

/** CPU time (user + system, µs) of this process's main thread, from /proc (Linux). */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) in clock ticks; f[0] is field 3.
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function main(): Promise<void> {
  const pg = await startPostgres({ extraConf: 'max_connections = 200' });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const env = { ...process.env, PGPASSWORD: pg.password };
  let bouncer: ReturnType<typeof spawn> | undefined;
  let gw: Awaited<ReturnType<typeof startGateway>> | undefined;
  try {
    await pg.query('CREATE DATABASE bench');
    await run('pgbench', ['-h', pg.host, '-p', String(pg.port), '-U', pg.superuser, '-i', '-q', '-s', String(values.scale), 'bench'], { env });
    // PgBouncer, session pooling, auth passthrough of the same SCRAM password.
    const bouncerPort = await freePort();
    writeFileSync(join(dir, 'userlist.txt'), `"${pg.superuser}" "${pg.password}"\n`);
    writeFileSync(join(dir, 'pgbouncer.ini'), `[databases]\nbench = host=127.0.0.1 port=${pg.port} dbname=bench\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${bouncerPort}\nauth_type = scram-sha-256\nauth_file = ${dir}/userlist.txt\npool_mode = session\nmax_client_conn = 200\ndefault_pool_size = 50\nunix_socket_dir =\nlogfile = ${dir}/pgbouncer.log\n`);
    if (process.getuid?.() === 0) await run('chown', ['-R', 'postgres', dir]);
    const bouncerCmd = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', 'pgbouncer', join(dir, 'pgbouncer.ini')]] as const : ['pgbouncer', [join(dir, 'pgbouncer.ini')]] as const;
    bouncer = spawn(bouncerCmd[0], [...bouncerCmd[1]], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    // Sluice with a select-only policy (policy on), the audit log on, masking on or off.
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'pw'), pg.password);
    const sluiceConfig = (name: string, mask: boolean): string => {
      const path = join(dir, `${name}.yaml`);
      writeFileSync(path, `
listen: { postgres: 127.0.0.1:0 }
dataDir: ${dir}/data-${name}
store: { sqlite: ${dir}/data-${name}/sluice.db }
identity:
  issuers: [ { local: true } ]
  roles: [ { name: bench } ]
connections:
  - name: bench
    type: postgres
    upstream: { host: 127.0.0.1, port: ${pg.port}, database: bench, user: ${pg.superuser}, password: file:${dir}/pw }
    mask: { detectors: [${mask ? 'default' : ''}] }
policies:
  - role: bench
    connection: bench
    rules:
      - allow: [select, set, transaction]
`);
      return path;
    };
    const allVariants = [
      { name: 'sluice', mask: true, record: true },
      { name: 'sluice-nomask', mask: false, record: true },
      { name: 'sluice-norecord', mask: true, record: false },
      // The audit log committing SQLite transactions on the event loop instead of spooling.
      { name: 'sluice-inline', mask: true, record: true, writer: 'inline' as const },
    ];
    const wanted = values.variants?.split(',') ?? ['sluice', 'sluice-nomask', 'sluice-norecord'];
    const variants = allVariants.filter((v) => wanted.includes(v.name));
    const sluices: { name: string; port: number; token: string; gw: Awaited<ReturnType<typeof startGateway>> }[] = [];
    const gateways: Awaited<ReturnType<typeof startGateway>>[] = [];
    for (const v of variants) {
      const config = loadConfigFile(sluiceConfig(v.name, v.mask));
      const g = await startGateway(config, { log: () => undefined, ...('writer' in v ? { auditWriter: v.writer } : {}) });
      gateways.push(g);
      if (!v.record) (g.audit as { append: unknown }).append = async () => ({ seq: 0, id: '' });
      sluices.push({ name: v.name, gw: g, port: g.addresses.postgres?.port as number, token: await mintLocalToken(config, { role: 'bench', subject: 'bench', ttlMs: 3_600_000 }) });
    }
    gw = { close: async () => { for (const g of gateways) await g.close(); } } as Awaited<ReturnType<typeof startGateway>>;

    const results: Result[] = [];
    const fmt = (r: { tps: number; latencyMs: number }, base: { tps: number; latencyMs: number }): string =>
      `${r.tps.toFixed(0).padStart(6)} tps ${r.latencyMs.toFixed(3)} ms (${(r.tps / base.tps).toFixed(2)}x, +${(r.latencyMs - base.latencyMs).toFixed(3)} ms)`;
    for (let round = 0; round < Number(values.rounds); round++)
    for (const mode of String(values.modes).split(',')) {
      for (const clients of clientsList) {
        const direct = await pgbench(env, '127.0.0.1', pg.port, pg.superuser, 'bench', mode, clients);
        results.push({ target: 'direct', mode, clients, ...direct });
        process.stdout.write(`${mode.padEnd(8)} c=${String(clients).padEnd(2)} direct          ${direct.tps.toFixed(0).padStart(6)} tps ${direct.latencyMs.toFixed(3)} ms\n`);
        const viaBouncer = await pgbench(env, '127.0.0.1', bouncerPort, pg.superuser, 'bench', mode, clients);
        results.push({ target: 'pgbouncer', mode, clients, ...viaBouncer });
        process.stdout.write(`${mode.padEnd(8)} c=${String(clients).padEnd(2)} pgbouncer       ${fmt(viaBouncer, direct)}\n`);
        for (const s of sluices) {
          // CPU per transaction of the gateway's event-loop thread (Linux per-thread counters), and of
          // every other thread of the process (the audit writer, GC helpers, libuv's pool).
          const main0 = mainThreadCpuUs();
          const all0 = process.cpuUsage();
          const r = await pgbench({ ...process.env, PGPASSWORD: s.token }, '127.0.0.1', s.port, 'bench', 'bench', mode, clients);
          const all = process.cpuUsage(all0);
          const loop = mainThreadCpuUs() - main0;
          const tx = r.tps * duration;
          const loopUsPerTx = loop / tx;
          const otherUsPerTx = (all.user + all.system - loop) / tx;
          results.push({ target: s.name, mode, clients, ...r, loopUsPerTx, otherUsPerTx });
          process.stdout.write(`${mode.padEnd(8)} c=${String(clients).padEnd(2)} ${s.name.padEnd(15)} ${fmt(r, direct)}  CPU/tx: event loop ${loopUsPerTx.toFixed(1)} µs, other threads ${otherUsPerTx.toFixed(1)} µs\n`);
        }
      }
    }
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(new URL('./results/pgbench.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), duration, scale: Number(values.scale), results }, null, 2) + '\n');
  } finally {
    await gw?.close();
    bouncer?.kill('SIGTERM');
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
