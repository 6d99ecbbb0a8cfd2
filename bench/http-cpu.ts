/**
 * CPU time of the gateway's event loop per proxied HTTP request: the gateway runs in this process
 * (HTTP engine, policy, SQLite audit log, masking) in front of a small JSON upstream in a child
 * process, and a Node load generator in another child sends keep-alive GETs. The main thread's
 * user+system time (from /proc/self/task) divided by the requests is the figure; unlike req/s it
 * hardly moves with what else the machine runs, so two trees can be compared alternately:
 *
 *   npx tsx bench/http-cpu.ts [--tree DIR] [--requests 4000] [--rounds 3] [--path masked|plain] [--connections 16]
 *
 * `--tree` loads the gateway's sources from another checkout (a `git worktree` of an earlier
 * commit, with node_modules linked), for an A/B against this one. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, startBenchGateway, UPSTREAM_SOURCE } from './http-fixture.js';

const { values } = parseArgs({
  options: {
    tree: { type: 'string', default: REPO },
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '3' },
    path: { type: 'string', default: 'masked' },
    connections: { type: 'string', default: '16' },
  },
});
const tree = resolve(values.tree);
const N = Number(values.requests);
const ROUNDS = Number(values.rounds);
const PATH = values.path;
if (PATH !== 'masked' && PATH !== 'plain') throw new Error('--path is masked or plain');

/** The load generator: n GETs over c keep-alive connections, then prints "done". */
const LOAD = `
const http = require('node:http');
const [port, path, token, n, c] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(c) });
let sent = 0, done = 0;
const one = () => { if (sent >= Number(n)) return; sent++;
  http.get({ host: '127.0.0.1', port: Number(port), path, agent, headers: { authorization: 'Bearer ' + token } }, (r) => { r.resume(); r.on('end', () => { if (++done === Number(n)) { process.stdout.write('done\\n'); process.exit(0); } one(); }); }); };
for (let i = 0; i < Number(c); i++) one();`;

const up = spawn(process.execPath, ['-e', UPSTREAM_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'] });
process.once('exit', () => up.kill());
const upPort = await new Promise<number>((r) => up.stdout.once('data', (d: Buffer) => r(Number(d.toString().trim()))));
const dir = mkdtempSync(join(tmpdir(), 'sluice-http-cpu-'));
const { port, token, close } = await startBenchGateway(dir, upPort, tree);

/** The main thread's user + system CPU time, µs (clock ticks of 10 ms). */
const mainThreadCpu = (): number => {
  const f = (readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1] as string).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
};
const load = async (n: number): Promise<void> => {
  const l = spawn(process.execPath, ['-e', LOAD, String(port), `/http/${PATH}/v1/orders/42`, token, String(n), values.connections], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => l.stdout.once('data', r));
};

await load(2000); // warm-up: JIT, connection pools, the session
for (let i = 0; i < ROUNDS; i++) {
  const c0 = mainThreadCpu();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await load(N);
  const loop = (mainThreadCpu() - c0) / N;
  const u = process.cpuUsage(u0);
  const wall = performance.now() - t0;
  console.log(`${PATH}: event loop ${loop.toFixed(1)} µs/request, whole process ${((u.user + u.system) / N).toFixed(1)} µs/request, ${((N / wall) * 1000).toFixed(0)} req/s`);
}
await close();
up.kill();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
