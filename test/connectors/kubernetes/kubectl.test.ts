/**
 * The real `kubectl` through Sluice, against the stand-in API server (fake-apiserver.ts: no real
 * API server can run here). kubectl is required: the suite fails, naming what is missing, rather
 * than skipping.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { join } from 'node:path';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { mintShortToken } from '../../helpers/tokens.js';
import { startGateway, type TestGateway } from '../http/harness.js';
import { makeCertificates, send } from '../http/client.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';
import { kubeconfig as kubeconfigFor, startTlsFront as startTlsFrontFor } from './kube-front.js';

const run = promisify(execFile);
const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const UPSTREAM_TOKEN = 'k8s-Upstream-ServiceAccount-Token-abcdef012345';

const certs = makeCertificates();
const startTlsFront = (gatewayPort: number): ReturnType<typeof startTlsFrontFor> => startTlsFrontFor(certs, gatewayPort);
const kubeconfig = (dir: string, port: number, token: string, name: string): string => kubeconfigFor(certs, dir, port, token, name);

describe('Kubernetes connector with kubectl', () => {
  let api: FakeApiServer;
  let gw: TestGateway;
  let reader: string;
  let operator: string;
  let revealer: string;
  let deployer: string;
  let front: { port: number; server: TlsServer };

  const kubectlEnv = (config: string): NodeJS.ProcessEnv => ({ ...process.env, KUBECONFIG: config, HOME: gw.dir, KUBECACHEDIR: join(gw.dir, 'cache') });
  const kubectlArgs = (args: string[]): string[] => ['--cache-dir', join(gw.dir, 'cache'), ...args];

  /** A WebSocket exec straight to the gateway (no kubectl): the negotiated subprotocol and every frame until close. */
  const execOverWebSocket = async (query: string, protocols: string[]): Promise<{ protocol: string; frames: Array<{ data: Buffer; binary: boolean }> }> => {
    const token = await gw.mint('operator');
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/k8s/prod/api/v1/namespaces/default/pods/web-0/exec?${query}`, protocols, { headers: { authorization: `Bearer ${token}` } });
      const frames: Array<{ data: Buffer; binary: boolean }> = [];
      ws.on('message', (data: Buffer, binary: boolean) => frames.push({ data, binary }));
      ws.on('close', () => resolve({ protocol: ws.protocol, frames }));
      ws.on('error', reject);
    });
  };

  const kubectl = async (config: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> => {
    const env = kubectlEnv(config);
    if (input === undefined) {
      try {
        const r = await run(KUBECTL, kubectlArgs(args), { env, timeout: 30_000 });
        return { code: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
      }
    }
    return new Promise((resolve) => {
      const child = spawn(KUBECTL, kubectlArgs(args), { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const t = setTimeout(() => child.kill(), 30_000);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? 1, stdout, stderr });
      });
      child.stdin.end(input);
    });
  };

  before(async () => {
    assert.ok(existsSync(KUBECTL), `kubectl is required for these tests and was not found at ${KUBECTL} (install it or set KUBECTL)`);
    api = await startFakeApiServer(UPSTREAM_TOKEN);
    api.put('pods', {
      metadata: { name: 'web-0', namespace: 'default', labels: { app: 'web' } },
      spec: { containers: [{ name: 'app', image: 'nginx:1.27', env: [{ name: 'DATABASE_URL', value: 'postgres://app:S3cr3t-pw@db:5432/app' }, { name: 'ADMIN_EMAIL', value: 'admin@example.com' }, { name: 'MODE', value: 'prod' }] }] },
      status: { phase: 'Running', podIP: '10.1.2.3', containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'nginx:1.27', imageID: '', state: { running: { startedAt: '2025-01-01T00:00:00Z' } } }] },
    });
    const applied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, data: { password: Buffer.from('hunter2-db-password').toString('base64') } });
    api.put('secrets', {
      metadata: { name: 'db', namespace: 'default', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `${applied}\n` } },
      type: 'Opaque',
      data: { password: Buffer.from('hunter2-db-password').toString('base64'), user: Buffer.from('app').toString('base64') },
    });
    api.put('configmaps', {
      metadata: { name: 'settings', namespace: 'default' },
      data: { contact: 'ops@example.com', level: 'info' },
      // A config file kept as binaryData (base64), with a key in it.
      binaryData: { '.env': Buffer.from('LEVEL=info\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n').toString('base64'), 'logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]).toString('base64') },
    });
    gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity:
  issuers: [ { local: true } ]
  roles: [ { name: reader }, { name: operator }, { name: revealer }, { name: deployer } ]
  clockSkew: 0s
  tokenExpiryGrace: 0s
connections:
  - name: prod
    type: kubernetes
    upstream: { url: ${api.url}, auth: { bearer: "${UPSTREAM_TOKEN}" } }
policies:
  - role: reader
    connection: prod
    rules:
      - allow: [read]
  - role: operator
    connection: prod
    rules:
      - deny: [delete]
        when: k8s.namespace == "kube-system"
      - allow: '*'
        when: k8s.namespace == "default" || !k8s.isResourceRequest || k8s.resource == "namespaces"
  - role: revealer
    connection: prod
    rules:
      - allow: [get]
        when: k8s.resource == "secrets" && k8s.name == "db"
        reveal: true
      - allow: [read]
  - role: deployer
    connection: prod
    rules:
      - deny: [create, update, patch]
        name: no-privileged
        when: k8s.object.spec.containers.exists(c, has(c.securityContext) && c.securityContext.privileged == true)
      - deny: [patch]
        name: no-json-patch
        when: k8s.patchType == "json"
      - allow: '*'
        when: k8s.namespace == "default" || !k8s.isResourceRequest
`);
    front = await startTlsFront(gw.port);
    reader = kubeconfig(gw.dir, front.port, await gw.mint('reader'), 'reader');
    operator = kubeconfig(gw.dir, front.port, await gw.mint('operator'), 'operator');
    revealer = kubeconfig(gw.dir, front.port, await gw.mint('revealer'), 'revealer');
    deployer = kubeconfig(gw.dir, front.port, await gw.mint('deployer'), 'deployer');
  });
  after(async () => {
    front?.server.close();
    await gw?.close();
    await api?.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test('kubectl get pods: discovery and table output through Sluice with the injected credential', async () => {
    const r = await kubectl(reader, ['get', 'pods']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /web-0\s+1\/1\s+Running/);
    const seen = api.requests.filter((q) => q.url.startsWith('/api/v1/namespaces/default/pods'));
    assert.ok(seen.length > 0);
    for (const q of api.requests) assert.equal(q.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`);
    const cmd = gw.events.find((e) => e.type === 'command' && e.command?.text.startsWith('GET /api/v1/namespaces/default/pods'));
    assert.equal(cmd?.command?.verb, 'list');
    assert.deepEqual(cmd?.command?.objects, ['namespaces/default/pods']);
  });

  test('kubectl get secret -o yaml masks data and the last-applied annotation; reveal shows them', async () => {
    const r = await kubectl(reader, ['get', 'secret', 'db', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { data: Record<string, string>; metadata: { annotations: Record<string, string> } };
    assert.equal(Buffer.from(s.data.password as string, 'base64').toString(), '[REDACTED]');
    const applied = s.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] as string;
    assert.ok(!applied.includes(Buffer.from('hunter2-db-password').toString('base64')), applied);
    assert.equal(JSON.parse(applied).kind, 'Secret');
    const list = await kubectl(reader, ['get', 'secrets', '-o', 'json']);
    assert.ok(!list.stdout.includes(Buffer.from('hunter2-db-password').toString('base64')));
    const shown = await kubectl(revealer, ['get', 'secret', 'db', '-o', 'json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(Buffer.from((JSON.parse(shown.stdout) as { data: { password: string } }).data.password, 'base64').toString(), 'hunter2-db-password');
    // The same role listing secrets does not match the reveal rule (verb list, no name).
    const revealList = await kubectl(revealer, ['get', 'secrets', '-o', 'json']);
    assert.ok(!revealList.stdout.includes(Buffer.from('hunter2-db-password').toString('base64')));
  });

  test('table output (as=Table) and watch streams mask Secrets per row and per event', async () => {
    const token = await gw.mint('reader');
    const table = await send(gw.port, 'GET', '/k8s/prod/api/v1/namespaces/default/secrets', { authorization: `Bearer ${token}`, accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    assert.equal(table.status, 200);
    assert.equal((table.json() as { kind: string }).kind, 'Table');
    assert.ok(!table.text.includes(Buffer.from('hunter2-db-password').toString('base64')), table.text);
    const full = await send(gw.port, 'GET', '/k8s/prod/api/v1/namespaces/default/secrets?includeObject=Object', { authorization: `Bearer ${token}`, accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    assert.ok(!full.text.includes(Buffer.from('hunter2-db-password').toString('base64')), full.text);

    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gw.port, path: '/k8s/prod/api/v1/namespaces/default/secrets?watch=1', headers: { authorization: `Bearer ${token}` } }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            events.push(buf.slice(0, nl));
            buf = buf.slice(nl + 1);
            nl = buf.indexOf('\n');
          }
          if (events.length === 1) api.put('secrets', { metadata: { name: 'api', namespace: 'default' }, data: { token: Buffer.from('live-watch-token-value').toString('base64') } });
          if (events.length === 2) {
            req.destroy();
            resolve();
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', (e) => (events.length >= 2 ? resolve() : reject(e)));
      req.end();
    });
    assert.equal(events.length, 2);
    const second = JSON.parse(events[1] as string) as { type: string; object: { data: { token: string } } };
    assert.equal(second.type, 'ADDED');
    assert.equal(Buffer.from(second.object.data.token, 'base64').toString(), '[REDACTED]');
    const watchCmd = gw.events.find((e) => e.type === 'command' && e.command?.text.includes('watch=1'));
    assert.equal(watchCmd?.command?.verb, 'watch');
  });

  test('kubectl describe pod and configmap: detectors mask env values and ConfigMap data', async () => {
    const pod = await kubectl(reader, ['describe', 'pod', 'web-0']);
    assert.equal(pod.code, 0, pod.stderr);
    assert.match(pod.stdout, /MODE:\s+prod/);
    assert.ok(!pod.stdout.includes('admin@example.com'), pod.stdout);
    assert.ok(!pod.stdout.includes('S3cr3t-pw'), pod.stdout);
    const cm = await kubectl(reader, ['get', 'configmap', 'settings', '-o', 'json']);
    assert.equal(cm.code, 0, cm.stderr);
    assert.ok(!cm.stdout.includes('ops@example.com'));
    assert.match(cm.stdout, /"level": "info"/);
    const binary = (JSON.parse(cm.stdout) as { binaryData: Record<string, string> }).binaryData;
    assert.equal(Buffer.from(binary['.env'] as string, 'base64').toString(), 'LEVEL=info\nAWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]\n');
    assert.equal(binary['logo.png'], Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]).toString('base64'), 'binary content passes as it was');
    const sec = await kubectl(reader, ['describe', 'secret', 'db']);
    assert.equal(sec.code, 0, sec.stderr);
    assert.match(sec.stdout, /password:\s+10 bytes/);
  });

  test('kubectl logs -f streams masked lines', async () => {
    const r = await kubectl(reader, ['logs', '-f', 'web-0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /starting web server\n/);
    assert.match(r.stdout, /ready\n/);
    assert.ok(!r.stdout.includes('admin@example.com'));
    assert.ok(!r.stdout.includes('4111 1111 1111 1111'));
  });

  test('kubectl apply of a manifest carrying values Sluice masked is refused: the placeholder is never stored', async () => {
    const manifest = join(gw.dir, 'masked.yaml');
    const writesBefore = api.requests.filter((q) => q.method === 'POST' && q.url.startsWith('/api/v1/namespaces/default/configmaps')).length;
    // As `kubectl get configmap -o yaml` showed it through Sluice, then applied back.
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: masked-config\n  namespace: default\ndata:\n  password: "[REDACTED:password]"\n  mode: blue\n');
    const r = await kubectl(operator, ['apply', '-f', manifest]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /value Sluice masked/);
    assert.equal(api.store.has('configmaps/default/masked-config'), false);
    const writesAfter = api.requests.filter((q) => q.method === 'POST' && q.url.startsWith('/api/v1/namespaces/default/configmaps')).length;
    assert.equal(writesAfter, writesBefore, 'the write never reached the API server');
  });

  test('kubectl apply (validated by the server, learnt from OpenAPI v3) and delete: allowed for the operator in default, denied to the reader with a Forbidden Status', async () => {
    const manifest = join(gw.dir, 'cm.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: default\ndata:\n  mode: blue\n');
    const denied = await kubectl(reader, ['apply', '-f', manifest]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Forbidden|forbidden/);
    assert.match(denied.stderr, /sluice/);
    const created = await kubectl(operator, ['apply', '-f', manifest]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /configmap\/app-config created/);
    // kubectl read the OpenAPI v3 documents through Sluice (unmasked, intact) and so left field
    // validation to the server, which it asks for on the write.
    assert.ok(api.requests.some((q) => q.url.startsWith('/openapi/v3/api/v1?hash=')), 'the group/version document was fetched by its hash');
    const write = api.requests.find((q) => q.method === 'POST' && q.url.startsWith('/api/v1/namespaces/default/configmaps'));
    assert.match(String(write?.url), /fieldValidation=Strict/);
    writeFileSync(join(gw.dir, 'typo.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: default\ndta:\n  mode: blue\n');
    const typo = await kubectl(operator, ['apply', '-f', join(gw.dir, 'typo.yaml')]);
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /strict decoding error: unknown field "dta"/);
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: default\ndata:\n  mode: green\n');
    const patched = await kubectl(operator, ['apply', '-f', manifest]);
    assert.equal(patched.code, 0, patched.stderr);
    assert.match(patched.stdout, /configmap\/app-config configured/);
    assert.equal(((api.store.get('configmaps/default/app-config')?.data ?? {}) as { mode: string }).mode, 'green');
    const delDenied = await kubectl(reader, ['delete', 'configmap', 'app-config']);
    assert.notEqual(delDenied.code, 0);
    assert.match(delDenied.stderr, /Forbidden/);
    const del = await kubectl(operator, ['delete', 'configmap', 'app-config']);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /deleted/);
    assert.equal(api.store.has('configmaps/default/app-config'), false);
    const other = await kubectl(operator, ['get', 'pods', '-n', 'kube-system']);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /Forbidden/);
  });

  test('kubectl exec over WebSocket: stdin/stdout proxied, masked to the agent and recorded masked; read-only roles cannot exec', async () => {
    const r = await kubectl(operator, ['exec', '-i', 'web-0', '--', 'cat'], 'hello through sluice\nmy card 4111 1111 1111 1111\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello through sluice\nmy card 4111 **** **** 1111\n', 'the agent sees container output masked');
    const up = api.requests.find((q) => q.upgrade === true);
    assert.match(String(up?.headers['sec-websocket-protocol']), /v5\.channel\.k8s\.io/);
    await new Promise((res) => setTimeout(res, 400));
    const recorded = gw.events.filter((e) => e.type === 'command.result' && typeof (e.details as { data?: unknown } | undefined)?.data === 'string');
    const stdin = recorded.filter((e) => (e.details as { stream: string }).stream === 'stdin').map((e) => (e.details as { data: string }).data).join('');
    const stdout = recorded.filter((e) => (e.details as { stream: string }).stream === 'stdout').map((e) => (e.details as { data: string }).data).join('');
    assert.match(stdin, /hello through sluice/);
    assert.match(stdout, /hello through sluice/);
    assert.ok(!stdin.includes('4111 1111 1111 1111') && !stdout.includes('4111 1111 1111 1111'), 'recorded stream data is masked');
    // Values cut across stdout frames (the stand-in writes 5 bytes a frame) are masked whole.
    const csv = await kubectl(operator, ['exec', 'web-0', '--', 'cat', '/srv/payments.csv']);
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout, 'id,card,owner\n1,4111 **** **** 1111,a***@example.com\n2,5500-****-****-0004,a***@example.org\n');
    const pem = await kubectl(operator, ['exec', 'web-0', '--', 'cat', '/etc/tls/key.pem']);
    assert.equal(pem.code, 0, pem.stderr);
    assert.ok(!pem.stdout.includes('MIIEvQ') && !pem.stdout.includes('MzEfYy'), pem.stdout);
    assert.match(pem.stdout, /REDACTED/);
    const env = await kubectl(operator, ['exec', 'web-0', '--', 'env']);
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stdout, /HOME=\/root/);
    // `allow: [read]` covers get, but exec also needs create (KEP-4006): the reader is refused.
    const denied = await kubectl(reader, ['exec', 'web-0', '--', 'env']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /sluice/);
    assert.ok(!denied.stdout.includes('HOME=/root'));
  });

  test('kubectl port-forward: the SPDY-over-WebSocket tunnel is relayed byte for byte, counted and not recorded; read-only roles cannot forward', async () => {
    const forward = ['port-forward', '--address', '127.0.0.1', 'pod/web-0', ':8080'];
    const child = spawn(KUBECTL, kubectlArgs(forward), { env: kubectlEnv(operator) });
    const exited = new Promise((r) => child.once('close', r));
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const localPort = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`kubectl port-forward did not start: ${stderr}`)), 20_000);
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(stdout);
          if (m !== null) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code) => reject(new Error(`kubectl port-forward exited (${code}): ${stderr}`)));
      });
      // Two connections in turn: each is its own error + data stream pair inside the one tunnel.
      for (const text of ['hello pod', 'my card 4111 1111 1111 1111']) {
        const echoed = await new Promise<string>((resolve, reject) => {
          const sock = connect(localPort, '127.0.0.1');
          let got = '';
          sock.on('data', (c: Buffer) => {
            got += c.toString();
            if (got.length >= text.length + 5) sock.end();
          });
          sock.on('close', () => resolve(got));
          sock.on('error', (e) => reject(new Error(`${e.message}; kubectl said: ${stderr}`)));
          sock.write(text);
        });
        // Port-forward bytes are an opaque TCP stream: relayed untouched, never masked or recorded.
        assert.equal(echoed, `echo:${text}`);
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const up = api.requests.find((q) => q.upgrade === true && q.url.endsWith('/portforward'));
    assert.ok(up !== undefined, 'the upstream saw the port-forward upgrade');
    assert.equal(up.headers['sec-websocket-protocol'], 'SPDY/3.1+portforward.k8s.io');
    assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`, 'the upstream credential is injected, the agent token stripped');
    assert.deepEqual(
      api.portForward.streams.map((s) => s.role),
      ['error', 'data', 'error', 'data'],
    );
    await new Promise((res) => setTimeout(res, 400));
    const cmd = gw.events.find((e) => e.type === 'command' && /portforward/.test(String((e.command as { text?: string } | undefined)?.text)));
    assert.equal(cmd?.outcome, 'pending', 'the decision is recorded before the tunnel opens');
    const end = gw.events.find((e) => e.type === 'command.result' && (e.details as { stream?: string } | undefined)?.stream === 'end' && /portforward/.test(String((e.command as { text?: string } | undefined)?.text)));
    const counts = end?.details as { requestBytes: number; responseBytes: number; protocol: string } | undefined;
    assert.equal(counts?.protocol, 'SPDY/3.1+portforward.k8s.io');
    assert.ok((counts?.requestBytes ?? 0) > 'hello pod'.length && (counts?.responseBytes ?? 0) > 'echo:hello pod'.length, JSON.stringify(counts));
    const recorded = JSON.stringify(gw.events.filter((e) => /portforward/.test(String((e.command as { text?: string } | undefined)?.text))));
    assert.ok(!recorded.includes('hello pod') && !recorded.includes('4111'), 'tunnel bytes are not recorded');
    // `allow: [read]` covers get, but port-forward also needs create (KEP-4006).
    const denied = await kubectl(reader, forward);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /sluice|[Ff]orbidden/);
  });

  test('a service reached through the proxy subresource is masked as an HTTP body: a .env sent as octet-stream, a CSV by its columns, JSON by its fields', async () => {
    // kubectl sends a --raw path as it is, without the kubeconfig server's path: Sluice's mount prefix goes in it.
    const env = await kubectl(operator, ['get', '--raw', '/k8s/prod/api/v1/namespaces/default/services/web:80/proxy/config.env']);
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stdout, /^LEVEL=info\n/);
    assert.ok(!env.stdout.includes('Svc-Pw-2024') && !env.stdout.includes('ops@example.com'), env.stdout);
    const csv = await kubectl(operator, ['get', '--raw', '/k8s/prod/api/v1/namespaces/default/services/web:80/proxy/report.csv']);
    assert.equal(csv.code, 0, csv.stderr);
    assert.match(csv.stdout, /^name,password,note\nada,\[REDACTED[^,]*,card 4111 \*\*\*\* \*\*\*\* 1111\n$/);
    const json = await kubectl(operator, ['get', '--raw', '/k8s/prod/api/v1/namespaces/default/services/web:80/proxy/metrics']);
    assert.equal(json.code, 0, json.stderr);
    assert.ok(!json.stdout.includes('svc-token-0123456789abcdef') && !json.stdout.includes('ada@example.com'), json.stdout);
    assert.match(json.stdout, /"requests":42/);
  });

  test('kubectl exec ends when its token expires, and kubectl says why', async () => {
    // Long enough for kubectl to start and open the stream first.
    const { token, expiresAt: exp } = await mintShortToken(gw.config, 'operator', 'short-exec@test', 3);
    const config = kubeconfig(gw.dir, front.port, token, 'short-exec');
    // stdin stays open: `cat` would run for ever.
    const child = spawn(KUBECTL, kubectlArgs(['exec', '-i', 'web-0', '--', 'cat']), { env: kubectlEnv(config) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.write('still here\n');
    const t = setTimeout(() => child.kill(), 20_000);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(t);
    assert.ok(Date.now() >= exp, 'not before the token expired');
    assert.notEqual(code, 0);
    assert.equal(stdout, 'still here\n');
    assert.match(stderr, /token this session signed in with expired/);
  });

  test('exec with older subprotocols: v4.channel.k8s.io and base64.channel.k8s.io are negotiated end to end and stdout is masked in each framing', async () => {
    const v4 = await execOverWebSocket('command=env&stdout=true', ['v4.channel.k8s.io']);
    assert.equal(v4.protocol, 'v4.channel.k8s.io');
    const v4out = v4.frames.filter((f) => f.binary && f.data[0] === 1).map((f) => f.data.toString('utf8', 1)).join('');
    assert.match(v4out, /HOME=\/root/);
    assert.ok(!v4out.includes('ghp_abcdefghijklmnopqrstuvwxyz0123456789'), v4out);
    const b64 = await execOverWebSocket('command=env&stdout=true', ['base64.channel.k8s.io']);
    assert.equal(b64.protocol, 'base64.channel.k8s.io');
    const text = b64.frames.filter((f) => !f.binary && f.data.toString('latin1', 0, 1) === '1').map((f) => Buffer.from(f.data.toString('latin1', 1), 'base64').toString('utf8')).join('');
    assert.match(text, /HOME=\/root/);
    assert.ok(!text.includes('ghp_abcdefghijklmnopqrstuvwxyz0123456789'), text);
    assert.ok(b64.frames.some((f) => !f.binary && f.data.toString('latin1', 0, 1) === '3'), 'the exit Status arrives on channel 3');
  });

  test('kubectl cp from a pod: a clean file arrives intact; one holding masked data is stopped with a clear error, never a corrupt archive', async () => {
    const clean = join(gw.dir, 'app.conf');
    const ok = await kubectl(operator, ['cp', 'web-0:/etc/app.conf', clean]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(readFileSync(clean, 'utf8'), 'mode=prod\nlevel=info\n');
    const leaky = join(gw.dir, 'app.log');
    const stopped = await kubectl(operator, ['cp', 'web-0:/var/log/app.log', leaky]);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /masking would corrupt it: the copy is stopped/);
    assert.ok(!existsSync(leaky) || !readFileSync(leaky, 'utf8').includes('ada@example.com'), 'nothing unmasked reached the agent');
    assert.ok(gw.events.some((e) => e.type === 'command.result' && (e.details as { stream?: string } | undefined)?.stream === 'end' && e.outcome === 'failure' && /corrupt/.test(String(e.error?.message))));
  });

  test('WebSocket streams without a subprotocol pass; a malformed offer list is refused with a Status', async () => {
    const got = await execOverWebSocket('command=echo&command=plain&stdout=true', []);
    assert.equal(got.protocol, '');
    assert.equal(got.frames[0]?.data.toString('utf8', 1), 'echo plain\n');
    const token = await gw.mint('operator');
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/k8s/prod/api/v1/namespaces/default/pods/web-0/exec?command=echo&stdout=true`, { headers: { authorization: `Bearer ${token}`, 'sec-websocket-protocol': 'v5.channel.k8s.io, v5.channel.k8s.io' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('a duplicated offer was accepted')));
      ws.on('error', () => undefined);
    });
    assert.equal(status, 400);
    assert.ok(gw.events.some((e) => e.type === 'command' && e.outcome === 'denied' && /offered twice/.test(String(e.error?.message))));
  });

  test('SPDY upgrades are refused with a clear Status; impersonation headers are refused', async () => {
    const token = await gw.mint('operator');
    const spdy = await send(gw.port, 'POST', '/k8s/prod/api/v1/namespaces/default/pods/web-0/exec?command=env&stdout=true', { authorization: `Bearer ${token}`, connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'v4.channel.k8s.io' });
    assert.equal(spdy.status, 400);
    assert.match((spdy.json() as { message: string }).message, /WebSocket .*SPDY\/3\.1 upgrade is refused/);
    const imp = await send(gw.port, 'GET', '/k8s/prod/api/v1/namespaces/default/pods', { authorization: `Bearer ${token}`, 'impersonate-user': 'system:admin' });
    assert.equal(imp.status, 403);
    assert.equal((imp.json() as { kind: string; reason: string }).reason, 'Forbidden');
  });

  test('rules over the object a write carries (k8s.object): kubectl apply of a privileged pod is refused, a plain one is created', async () => {
    const pod = (name: string, securityContext?: Record<string, unknown>): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { containers: [{ name: 'app', image: 'busybox:1.36', ...(securityContext !== undefined ? { securityContext } : {}) }] } });
    const privileged = await kubectl(deployer, ['apply', '-f', '-'], pod('root-shell', { privileged: true }));
    assert.notEqual(privileged.code, 0, privileged.stdout);
    assert.match(privileged.stderr, /no-privileged/);
    assert.equal(api.requests.filter((q) => q.method === 'POST' && q.url.startsWith('/api/v1/namespaces/default/pods')).length, 0, 'the create never reached the API server');
    const plain = await kubectl(deployer, ['apply', '-f', '-'], pod('plain-0', { runAsNonRoot: true }));
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /pod\/plain-0 created/);

    const token = await gw.mint('deployer');
    const write = (method: string, path: string, type: string, body: string): ReturnType<typeof send> =>
      send(gw.port, method, `/k8s/prod/api/v1/namespaces/default/pods${path}`, { authorization: `Bearer ${token}`, 'content-type': type }, body);
    // Server-side apply sends YAML, which the API server reads as YAML 1.1: `yes` is true there.
    const ssa = await write('PATCH', '/plain-0?fieldManager=agent', 'application/apply-patch+yaml', 'apiVersion: v1\nkind: Pod\nmetadata: { name: plain-0 }\nspec:\n  containers:\n  - name: app\n    securityContext:\n      privileged: yes\n');
    assert.equal(ssa.status, 403, ssa.text);
    // An RFC 6902 patch holds operations, not an object: this role's rules refuse that patch type.
    const ops = await write('PATCH', '/plain-0', 'application/json-patch+json', '[{"op":"add","path":"/spec/containers/0/securityContext/privileged","value":true}]');
    assert.equal(ops.status, 403, ops.text);
    assert.match(ops.text, /no-json-patch/);
    // A body the rules cannot read, or could read two ways, is refused before the API server sees it.
    const proto = await write('POST', '', 'application/vnd.kubernetes.protobuf', 'k8s\u0000\n\u000f\n\u0002v1\u0012\u0003Pod');
    assert.equal(proto.status, 400, proto.text);
    const dup = await write('POST', '', 'application/json', '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup"},"spec":{"containers":[{"name":"a","image":"x","securityContext":{"privileged":true,"privileged":false}}]}}');
    assert.equal(dup.status, 400, dup.text);
    const writes = api.requests.filter((q) => q.method !== 'GET' && q.url.includes('/pods'));
    assert.deepEqual(writes.map((q) => `${q.method} ${q.url.split('?')[0]}`), ['POST /api/v1/namespaces/default/pods'], 'only the plain pod\'s create reached the API server');
    const listed = await kubectl(reader, ['get', 'pods', '-o', 'name']);
    assert.deepEqual(listed.stdout.trim().split('\n').sort(), ['pod/plain-0', 'pod/web-0']);
  });

  test('a request without a token gets an Unauthorized Status', async () => {
    const r = await send(gw.port, 'GET', '/k8s/prod/api/v1/pods');
    assert.equal(r.status, 401);
    const s = r.json() as { kind: string; reason: string; code: number };
    assert.deepEqual([s.kind, s.reason, s.code], ['Status', 'Unauthorized', 401]);
  });
});
