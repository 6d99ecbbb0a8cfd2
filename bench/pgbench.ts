/**
 * pgbench -S through three paths in one run: direct to PostgreSQL, through PgBouncer (session
 * pooling) and through Sluice with policy (and recording) on. Prints TPS, average latency and the
 * ratios; writes bench/results/pgbench.json.
 *
 *   npx tsx bench/pgbench.ts [--duration 15] [--scale 10] [--mask] [--no-record]
 *
 * Needs Debian's postgresql (server + pgbench) and pgbouncer packages.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  options: { duration: { type: 'string', default: '15' }, scale: { type: 'string', default: '10' }, mask: { type: 'boolean', default: false }, clients: { type: 'string', default: '1,8' } },
});
const duration = Number(values.duration);
const clientsList = String(values.clients).split(',').map(Number);

interface Result { target: string; mode: string; clients: number; tps: number; latencyMs: number }

async function pgbench(env: NodeJS.ProcessEnv, host: string, port: number, user: string, db: string, mode: string, clients: number): Promise<{ tps: number; latencyMs: number }> {
  const args = ['-h', host, '-p', String(port), '-U', user, '-S', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(duration), '-n', db];
  const { stdout } = await run('pgbench', args, { env, maxBuffer: 10 << 20 });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench output:\n${stdout}`);
  return { tps, latencyMs };
}

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
    // Sluice with a select-only policy (policy on) and the audit log on.
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'pw'), pg.password);
    writeFileSync(join(dir, 'sluice.yaml'), `
listen: { postgres: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
identity:
  issuers: [ { local: true } ]
  roles: [ { name: bench } ]
connections:
  - name: bench
    type: postgres
    upstream: { host: 127.0.0.1, port: ${pg.port}, database: bench, user: ${pg.superuser}, password: file:${dir}/pw }
${values.mask ? '    mask: { detectors: [default] }\n' : '    mask: { detectors: [] }\n'}policies:
  - role: bench
    connection: bench
    rules:
      - allow: [select, set, transaction]
`);
    const config = loadConfigFile(join(dir, 'sluice.yaml'));
    gw = await startGateway(config, { log: () => undefined });
    const token = await mintLocalToken(config, { role: 'bench', subject: 'bench', ttlMs: 3_600_000 });
    const sluicePort = gw.addresses.postgres?.port as number;

    const results: Result[] = [];
    for (const mode of ['simple', 'prepared']) {
      for (const clients of clientsList) {
        const direct = await pgbench(env, '127.0.0.1', pg.port, pg.superuser, 'bench', mode, clients);
        const viaBouncer = await pgbench(env, '127.0.0.1', bouncerPort, pg.superuser, 'bench', mode, clients);
        const viaSluice = await pgbench({ ...process.env, PGPASSWORD: token }, '127.0.0.1', sluicePort, 'bench', 'bench', mode, clients);
        results.push({ target: 'direct', mode, clients, ...direct }, { target: 'pgbouncer', mode, clients, ...viaBouncer }, { target: 'sluice', mode, clients, ...viaSluice });
        process.stdout.write(
          `${mode.padEnd(8)} c=${String(clients).padEnd(2)} direct ${direct.tps.toFixed(0).padStart(6)} tps ${direct.latencyMs.toFixed(3)} ms | pgbouncer ${viaBouncer.tps.toFixed(0).padStart(6)} tps ${viaBouncer.latencyMs.toFixed(3)} ms (${(viaBouncer.tps / direct.tps).toFixed(2)}x) | sluice ${viaSluice.tps.toFixed(0).padStart(6)} tps ${viaSluice.latencyMs.toFixed(3)} ms (${(viaSluice.tps / direct.tps).toFixed(2)}x, +${(viaSluice.latencyMs - direct.latencyMs).toFixed(3)} ms)\n`,
        );
      }
    }
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(new URL(`./results/pgbench${values.mask ? '-mask' : ''}.json`, import.meta.url), JSON.stringify({ date: new Date().toISOString(), duration, scale: Number(values.scale), results }, null, 2) + '\n');
  } finally {
    await gw?.close();
    bouncer?.kill('SIGTERM');
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
