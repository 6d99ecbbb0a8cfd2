/** What bench/http.ts and bench/http-cpu.ts share: the upstream they proxy to, and the gateway in front of it. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';

/** This checkout's root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A small JSON API response with one e-mail address and one card number for the masker to find (run with `node -e`; prints its port). */
export const UPSTREAM_SOURCE = `
const http = require('node:http');
const body = JSON.stringify({ id: 42, status: 'shipped', customer: { name: 'Ada Lovelace', email: 'ada@example.com' }, items: [{ sku: 'A-1', qty: 2, price: 9.5 }, { sku: 'B-7', qty: 1, price: 120 }], payment: { card: '4111 1111 1111 1111' }, note: 'leave at the door' });
const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

/** Two HTTP connections to the upstream, `plain` (no masking) and `masked` (the default detectors), the SQLite audit log in `dir`. */
export function gatewayConfigText(dir: string, upstreamPort: number): string {
  return `
listen: { http: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: plain, type: http, upstream: { url: http://127.0.0.1:${upstreamPort}, auth: { bearer: bench-upstream-token-000 } }, mask: { detectors: [] } }
  - { name: masked, type: http, upstream: { url: http://127.0.0.1:${upstreamPort}, auth: { bearer: bench-upstream-token-000 } } }
policies:
  - { role: agent, connection: '*', rules: [ { allow: [get], paths: ['/v1/**'] } ] }
`;
}

export interface BenchGateway {
  readonly port: number;
  /** An agent token for both connections. */
  readonly token: string;
  /** Records the audit log holds so far. */
  auditRecords(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The gateway in this process as `sluice serve` assembles it for HTTP (HTTP engine, policy, SQLite
 * audit log, maskers) on `gatewayConfigText`, from the sources of checkout `tree`: this one, or a
 * `git worktree` of another commit for an A/B (`bench/http-cpu.ts --tree`). The imports are
 * computed, so the other tree's types are not checked here.
 */
export async function startBenchGateway(dir: string, upstreamPort: number, tree = REPO): Promise<BenchGateway> {
  const { parseConfig } = await import(`${tree}/src/config/index.js`);
  const { createAuthenticator, mintLocalToken } = await import(`${tree}/src/identity/index.js`);
  const { createPolicyEngine } = await import(`${tree}/src/policy/index.js`);
  const { createPipeline } = await import(`${tree}/src/pipeline/pipeline.js`);
  const { createMasker } = await import(`${tree}/src/masking/index.js`);
  const { createHttpListener } = await import(`${tree}/src/server/http-server.js`);
  const { createHttpEngine } = await import(`${tree}/src/connectors/http/index.js`);
  const { openAuditLog } = await import(`${tree}/src/audit/index.js`);
  const text = gatewayConfigText(dir, upstreamPort);
  const path = join(dir, 'sluice.yaml');
  writeFileSync(path, text);
  const config = parseConfig(text, path);
  type Masker = { maskText(t: string): string };
  const maskers = new Map<string, Masker>(config.connections.map((c: { name: string; mask: unknown }) => [c.name, createMasker(c.mask, { secret: config.secret })]));
  const audit = await openAuditLog(config, { mask: (t: string) => (maskers.get('masked') as Masker).maskText(t) });
  const policy = createPolicyEngine(config);
  const pipeline = createPipeline({ config, authenticator: await createAuthenticator(config), policy, audit });
  const http = createHttpListener(() => undefined);
  const engine = createHttpEngine({
    config,
    pipeline,
    maskerFor: (n: string) => maskers.get(n),
    log: (l: string) => console.error(l),
    http,
    decide: (s: { identity: unknown; role: string }, a: unknown) => policy.decide(s.identity, s.role, a),
  });
  const { port } = await http.listen('127.0.0.1:0');
  const token: string = await mintLocalToken(config, { role: 'agent', subject: 'bench', ttlMs: 3_600_000 });
  return {
    port,
    token,
    auditRecords: async () => ((await audit.store.readHead()) as { size: number }).size,
    async close() {
      await engine.close(100);
      await http.close();
      await audit.close();
    },
  };
}
