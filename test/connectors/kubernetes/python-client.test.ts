/**
 * The official Kubernetes Python client (Debian's python3-kubernetes) through Sluice: another
 * client than kubectl, with its own request shapes (no table output, its own watch parser, exec
 * over websocket-client with the v4 channel protocol). The upstream is the stand-in API server
 * (fake-apiserver.ts: no real API server can run here).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { startGateway, type TestGateway } from '../http/harness.js';
import { makeCertificates } from '../http/client.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';
import { kubeconfig, startTlsFront } from './kube-front.js';

const run = promisify(execFile);
/** Debian's interpreter, which has Debian's python3-kubernetes (a pyenv python3 on PATH may not). */
const PYTHON = process.env.SLUICE_TEST_PYTHON ?? '/usr/bin/python3';
const UPSTREAM_TOKEN = 'k8s-Upstream-ServiceAccount-Token-python-0123456789';

/** Each step prints one JSON line: what the client returned, or the ApiException it raised. */
const CLIENT = String.raw`
import json, sys
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()

def step(name, fn):
    try:
        out = fn()
    except ApiException as e:
        out = {"status": e.status, "body": json.loads(e.body) if e.body else None}
    except Exception as e:
        out = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps({"step": name, "out": out}, default=str), flush=True)

step("list_pods", lambda: [p.metadata.name for p in v1.list_namespaced_pod("default").items])
step("pod_env", lambda: [{"name": e.name, "value": e.value} for e in v1.read_namespaced_pod("web-0", "default").spec.containers[0].env])
step("secret", lambda: v1.read_namespaced_secret("db", "default").data)
step("secrets_list", lambda: [s.data for s in v1.list_namespaced_secret("default").items])
step("configmap", lambda: v1.read_namespaced_config_map("settings", "default").data)
step("log", lambda: v1.read_namespaced_pod_log("web-0", "default"))
step("watch", lambda: [(ev["type"], ev["object"].metadata.name, ev["object"].data) for ev in watch.Watch().stream(v1.list_namespaced_secret, "default", timeout_seconds=1)])
step("exec_env", lambda: stream(v1.connect_get_namespaced_pod_exec, "web-0", "default", command=["env"], stderr=True, stdin=False, stdout=True, tty=False))
step("delete_pod", lambda: v1.delete_namespaced_pod("web-0", "default").status)
step("kube_system", lambda: [p.metadata.name for p in v1.list_namespaced_pod("kube-system").items])
`;

describe('Kubernetes connector with the official Python client', () => {
  const certs = makeCertificates();
  let api: FakeApiServer;
  let gw: TestGateway;
  let front: { port: number; server: TlsServer };

  before(async () => {
    const probe = await run(PYTHON, ['-c', 'import kubernetes, websocket; print(kubernetes.__version__)']).catch((err: unknown) => ({ stdout: '', stderr: String(err) }));
    assert.ok(probe.stdout.trim() !== '', `the Python Kubernetes client is required (Debian package python3-kubernetes; .ci/run installs it): ${probe.stderr}`);
    api = await startFakeApiServer(UPSTREAM_TOKEN);
    api.put('pods', {
      metadata: { name: 'web-0', namespace: 'default', labels: { app: 'web' } },
      spec: { containers: [{ name: 'app', image: 'nginx:1.27', env: [{ name: 'DB_PASSWORD', value: 'hunter2-env' }, { name: 'ADMIN_EMAIL', value: 'admin@example.com' }, { name: 'MODE', value: 'prod' }] }] },
      status: { phase: 'Running' },
    });
    api.put('secrets', {
      metadata: { name: 'db', namespace: 'default' },
      type: 'Opaque',
      data: { password: Buffer.from('hunter2-db-password').toString('base64'), user: Buffer.from('app').toString('base64') },
    });
    api.put('configmaps', { metadata: { name: 'settings', namespace: 'default' }, data: { contact: 'ops@example.com', token: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', level: 'info' } });
    gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity:
  issuers: [ { local: true } ]
  roles: [ { name: operator } ]
connections:
  - name: prod
    type: kubernetes
    upstream: { url: ${api.url}, auth: { bearer: "${UPSTREAM_TOKEN}" } }
policies:
  - role: operator
    connection: prod
    rules:
      - deny: [delete]
        name: no-deletes
      - allow: '*'
        when: k8s.namespace == "default" || !k8s.isResourceRequest
`);
    front = await startTlsFront(certs, gw.port);
  });

  after(async () => {
    front?.server.close();
    await gw?.close();
    await api?.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test('reads, watches and execs are masked; denied calls raise ApiException 403; the credential stays inside', async () => {
    const config = kubeconfig(certs, gw.dir, front.port, await gw.mint('operator'), 'python');
    const r = await run(PYTHON, ['-c', CLIENT, config], { timeout: 60_000, env: { ...process.env, HOME: gw.dir } });
    const steps = new Map<string, unknown>();
    for (const line of r.stdout.trim().split('\n')) {
      const { step, out } = JSON.parse(line) as { step: string; out: unknown };
      steps.set(step, out);
    }
    const all = r.stdout + r.stderr;
    const b64 = (s: string): string => Buffer.from(s).toString('base64');

    assert.deepEqual(steps.get('list_pods'), ['web-0']);
    const env = steps.get('pod_env') as { name: string; value: string }[];
    assert.equal(env.find((e) => e.name === 'MODE')?.value, 'prod');
    assert.notEqual(env.find((e) => e.name === 'DB_PASSWORD')?.value, 'hunter2-env');
    assert.match(env.find((e) => e.name === 'ADMIN_EMAIL')?.value ?? '', /^a\*+@example\.com$/);

    // Secret values arrive as base64 the client can decode, of a masked value.
    const secret = steps.get('secret') as Record<string, string>;
    assert.deepEqual(Object.keys(secret).sort(), ['password', 'user']);
    for (const v of Object.values(secret)) assert.match(Buffer.from(v, 'base64').toString(), /REDACTED/);
    for (const data of steps.get('secrets_list') as Record<string, string>[]) assert.ok(!Object.values(data).includes(b64('hunter2-db-password')));
    const cm = steps.get('configmap') as Record<string, string>;
    assert.equal(cm.level, 'info');
    assert.equal(cm.token, '[REDACTED:github_token]');
    assert.match(cm.contact ?? '', /^o\*+@example\.com$/);

    assert.equal(typeof steps.get('log'), 'string');
    const watched = steps.get('watch') as [string, string, Record<string, string>][];
    assert.ok(watched.length >= 1, `watch events: ${JSON.stringify(steps.get('watch'))}`);
    for (const [type, name, data] of watched) {
      assert.equal(type, 'ADDED');
      assert.equal(name, 'db');
      assert.ok(!Object.values(data).includes(b64('hunter2-db-password')));
    }

    const exec = steps.get('exec_env');
    assert.equal(typeof exec, 'string', `exec: ${JSON.stringify(exec)}`);
    assert.match(exec as string, /HOME=\/root/);
    assert.match(exec as string, /DB_PASSWORD=\[REDACTED:password\]/);
    assert.doesNotMatch(exec as string, /hunter2|ghp_abcdef/);

    const denied = steps.get('delete_pod') as { status: number; body: { reason: string; message: string } };
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, 'Forbidden');
    assert.match(denied.body.message, /no-deletes/);
    const outside = steps.get('kube_system') as { status: number };
    assert.equal(outside.status, 403);

    assert.ok(!all.includes(UPSTREAM_TOKEN), 'the upstream credential reached the client');
    assert.ok(!all.includes('hunter2'));
    for (const q of api.requests) assert.equal(q.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`);
    assert.ok(!api.requests.some((q) => q.method === 'DELETE'), 'a denied delete reached the upstream');
  });
});
