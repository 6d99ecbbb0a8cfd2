/**
 * HTTP connector throughput: `wrk` against the upstream directly and through Sluice, in one run,
 * on small JSON responses, with JSON masking off (no detectors) and on (the default detector set).
 * Sluice runs with the real audit log (SQLite, group commit): every request is two durable
 * records (decision, then result). The upstream runs in its own process so it does not share the
 * gateway's event loop.
 *
 *   npx tsx bench/http.ts [--duration 10] [--connections 32] [--threads 1] [--paths direct,nginx,nodeproxy,plain,masked]
 *
 * Needs wrk (/usr/bin/wrk). Not part of `npm test`. Figures: bench/README-http.md.
 */
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../test/helpers/postgres.js';
import { startBenchGateway, UPSTREAM_SOURCE } from './http-fixture.js';

const run = promisify(execFile);
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const DURATION = arg('duration', 10);
const CONNECTIONS = arg('connections', 32);
const THREADS = arg('threads', 1);
/** Which rows to run (`--paths direct,nginx,nodeproxy,plain,masked`); a profile of one path needs only it. */
const PATHS = new Set((process.argv.includes('--paths') ? (process.argv[process.argv.indexOf('--paths') + 1] ?? '') : 'direct,nginx,nodeproxy,plain,masked').split(','));
const NONE = { rps: Number.NaN, p50: '-', p99: '-', errors: '-' };

/**
 * The floor of a Node.js proxy on this machine: node:http server → keep-alive node:http client →
 * buffered body → response, and nothing else (no token, policy, recording or masking).
 */
const NODE_PROXY_SOURCE = `
const http = require('node:http');
const upPort = Number(process.argv[1]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const server = http.createServer((req, res) => {
  const up = http.request({ host: '127.0.0.1', port: upPort, path: req.url, method: req.method, agent, headers: { accept: req.headers.accept || '*/*' } }, (r) => {
    const chunks = [];
    r.on('data', (c) => chunks.push(c));
    r.on('end', () => { const b = Buffer.concat(chunks); res.writeHead(r.statusCode, { 'content-type': r.headers['content-type'], 'content-length': b.length }); res.end(b); });
  });
  up.on('error', () => { res.writeHead(502); res.end(); });
  up.end();
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

async function wrk(url: string, token?: string): Promise<{ rps: number; p50: string; p99: string; errors: string }> {
  const args = ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${DURATION}s`, '--latency', ...(token !== undefined ? ['-H', `Authorization: Bearer ${token}`] : []), url];
  const { stdout } = await run('wrk', args, { timeout: (DURATION + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 'NaN');
  const p50 = /^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '?';
  const p99 = /^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '?';
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? '0';
  return { rps, p50, p99, errors };
}

const NGINX = '/usr/sbin/nginx';

async function startNginx(dir: string, upPort: number): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  mkdirSync(join(dir, 'nginx'), { recursive: true });
  const conf = join(dir, 'nginx', 'nginx.conf');
  writeFileSync(conf, `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx/pid; error_log ${dir}/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx; proxy_temp_path ${dir}/nginx; fastcgi_temp_path ${dir}/nginx; uwsgi_temp_path ${dir}/nginx; scgi_temp_path ${dir}/nginx;
  upstream up { server 127.0.0.1:${upPort}; keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
`);
  const child = spawn(NGINX, ['-p', join(dir, 'nginx'), '-c', conf], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v1/orders/42`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, stop: () => child.kill('SIGTERM') };
}

async function main(): Promise<void> {
  const upstream = spawn(process.execPath, ['-e', UPSTREAM_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'] });
  // A failed run must not leave the upstream behind (it holds the terminal's pipes open).
  process.once('exit', () => upstream.kill());
  const upPort = await new Promise<number>((resolve) => upstream.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-http-'));
  const { port, token, auditRecords, close } = await startBenchGateway(dir, upPort);

  const check = await fetch(`http://127.0.0.1:${port}/http/masked/v1/orders/42`, { headers: { authorization: `Bearer ${token}` } });
  const sample = await check.text();
  if (check.status !== 200 || sample.includes('ada@example.com')) throw new Error(`masked route is not masking (${check.status}): ${sample}`);

  console.log(`wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION}s, node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
  // The ceiling for any proxy on this machine: nginx as a plain keep-alive reverse proxy (no auth,
  // policy, recording or masking), one worker like Sluice's one event loop.
  const nginx = existsSync(NGINX) && PATHS.has('nginx') ? await startNginx(dir, upPort) : undefined;
  const direct = PATHS.has('direct') ? await wrk(`http://127.0.0.1:${upPort}/v1/orders/42`) : NONE;
  const viaNginx = nginx === undefined ? undefined : await wrk(`http://127.0.0.1:${nginx.port}/v1/orders/42`);
  let viaNode: Awaited<ReturnType<typeof wrk>> | undefined;
  if (PATHS.has('nodeproxy')) {
    const proxy = spawn(process.execPath, ['-e', NODE_PROXY_SOURCE, String(upPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const proxyPort = await new Promise<number>((resolve) => proxy.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    viaNode = await wrk(`http://127.0.0.1:${proxyPort}/v1/orders/42`);
    proxy.kill();
  }
  const plain = PATHS.has('plain') ? await wrk(`http://127.0.0.1:${port}/http/plain/v1/orders/42`, token) : NONE;
  const masked = PATHS.has('masked') ? await wrk(`http://127.0.0.1:${port}/http/masked/v1/orders/42`, token) : NONE;
  const row = (name: string, r: { rps: number; p50: string; p99: string; errors: string }): string =>
    `| ${name} | ${r.rps.toFixed(0)} | ${(r.rps / direct.rps).toFixed(2)}× | ${r.p50} | ${r.p99} | ${r.errors} |`;
  console.log('| path | req/s | vs direct | p50 | p99 | non-2xx |');
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(row('direct (upstream)', direct));
  if (viaNginx !== undefined) console.log(row('nginx reverse proxy (1 worker, nothing else)', viaNginx));
  if (viaNode !== undefined) console.log(row('minimal node:http proxy (nothing else)', viaNode));
  console.log(row('Sluice, no masking', plain));
  console.log(row('Sluice, JSON masking', masked));
  console.log(`audit records written: ${await auditRecords()}`);

  nginx?.stop();
  await close();
  upstream.kill();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
