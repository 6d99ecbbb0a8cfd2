/**
 * A host-routed HTTP connection owns its host: every path on it reaches the upstream, the paths
 * the gateway serves itself (/healthz, /api/v1/approvals, /api/v1/sessions, /api/v1/me, /console)
 * included. On any other host those paths are the gateway's. The real composition root
 * (startGateway), so every admin route is mounted as in production.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { send, startUpstream, type Upstream } from '../connectors/http/client.js';

describe('host routing and the gateway\'s own paths', () => {
  let dir: string;
  let up: Upstream;
  let gw: Gateway;
  let port: number;
  let agent: string;
  let auditor: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-hosts-'));
    up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ upstream: true, url: req.url }));
    });
    const path = join(dir, 'sluice.yaml');
    writeFileSync(
      path,
      `listen: { http: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
identity:
  issuers: [ { local: true } ]
  roles: [ { name: agent }, { name: dba, approver: true }, { name: auditor, auditor: true } ]
connections:
  - { name: byhost, type: http, host: api.internal.test, upstream: { url: ${up.url} } }
  - { name: byprefix, type: http, upstream: { url: ${up.url} } }
policies:
  - { role: agent, connection: byhost, rules: [ { allow: [get] } ] }
  - { role: agent, connection: byprefix, rules: [ { allow: [get] } ] }
`,
    );
    const config = loadConfigFile(path);
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.http?.port as number;
    agent = await mintLocalToken(config, { role: 'agent', subject: 'agent@hosts' });
    auditor = await mintLocalToken(config, { role: 'auditor', subject: 'carol@hosts' });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends every path on the routed host to its upstream, the gateway\'s own paths included', async () => {
    for (const path of ['/v1/things', '/healthz', '/api/v1/sessions', '/api/v1/me', '/api/v1/approvals', '/console/', '/http/byprefix/v1/x']) {
      const r = await send(port, 'GET', path, { authorization: `Bearer ${agent}`, host: 'api.internal.test:443' });
      assert.equal(r.status, 200, `${path}: ${r.body.toString()}`);
      assert.deepEqual(r.json(), { upstream: true, url: path });
    }
  });

  it('keeps those paths the gateway\'s on any other host', async () => {
    const h = { authorization: `Bearer ${auditor}`, host: `127.0.0.1:${port}` };
    assert.deepEqual((await send(port, 'GET', '/healthz', h)).json(), { ok: true });
    assert.equal(((await send(port, 'GET', '/api/v1/me', h)).json() as { subject: string }).subject, 'carol@hosts');
    assert.ok(Array.isArray(((await send(port, 'GET', '/api/v1/sessions', h)).json() as { items: unknown[] }).items));
    assert.match((await send(port, 'GET', '/console/', h)).headers['content-security-policy'] as string, /default-src 'none'/);
    const prefixed = await send(port, 'GET', '/http/byprefix/v1/x', { authorization: `Bearer ${agent}`, host: `127.0.0.1:${port}` });
    assert.deepEqual(prefixed.json(), { upstream: true, url: '/v1/x' });
    assert.equal((await send(port, 'GET', '/v1/things', { ...h, host: 'other.test' })).status, 404);
  });
});
