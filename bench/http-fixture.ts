/** What bench/http.ts and bench/http-cpu.ts share: the upstream they proxy to and the gateway's config. */

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
