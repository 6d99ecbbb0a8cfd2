/** maskKubernetesValue on real object shapes: where detectors run, and what stays byte-identical. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskKubernetesValue } from '../../../src/connectors/kubernetes/index.js';
import { defaultMasker, MaskStats } from '../../../src/masking/index.js';

const o = { masker: defaultMasker(), secretsRequest: false, reveal: false };

test('container command and args, probe commands and annotation values are masked; the rest of the spec is untouched', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'api',
      namespace: 'default',
      resourceVersion: '4711',
      annotations: { 'example.com/db-url': 'postgres://app:AnnoPw-123@db:5432/app', 'deployment.kubernetes.io/revision': '3' },
    },
    spec: {
      replicas: 2,
      template: {
        spec: {
          containers: [
            {
              name: 'api',
              image: 'registry.example.com/api:1.4.2',
              command: ['/bin/api'],
              args: ['--port=8080', '--db-password=hunter2-arg', '--admin=ada@example.com'],
              livenessProbe: { exec: { command: ['sh', '-c', 'curl -fsS http://svc:s3cretProbe@localhost:8080/healthz'] } },
            },
          ],
        },
      },
    },
  };
  const stats = new MaskStats();
  const out = maskKubernetesValue(deployment, o, stats) as typeof deployment;
  const text = JSON.stringify(out);
  for (const secret of ['AnnoPw-123', 'hunter2-arg', 'ada@example.com', 's3cretProbe']) assert.ok(!text.includes(secret), `${secret} masked: ${text}`);
  const c = out.spec.template.spec.containers[0]!;
  assert.equal(c.args[0], '--port=8080');
  assert.deepEqual(c.command, ['/bin/api']);
  assert.equal(c.image, 'registry.example.com/api:1.4.2');
  assert.equal(out.metadata.resourceVersion, '4711');
  assert.equal(out.metadata.annotations['deployment.kubernetes.io/revision'], '3');
  assert.ok(stats.total >= 4);
  // Nothing sensitive: the same instance comes back.
  const clean = { kind: 'Pod', metadata: { name: 'x', annotations: { a: 'b' } }, spec: { containers: [{ name: 'c', args: ['--port=1'] }] } };
  assert.equal(maskKubernetesValue(clean, o, new MaskStats()), clean);
});

test('the last-applied annotation of a Deployment is masked as the object it embeds', () => {
  const applied = { apiVersion: 'apps/v1', kind: 'Deployment', spec: { template: { spec: { containers: [{ name: 'a', args: ['--token=ghp_abcdefghijklmnopqrstuvwxyz0123456789'] }] } } } };
  const d = { kind: 'Deployment', metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify(applied)}\n` } } };
  const out = maskKubernetesValue(d, o, new MaskStats()) as typeof d;
  const ann = out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'];
  assert.ok(!ann.includes('ghp_'), ann);
  assert.equal((JSON.parse(ann) as typeof applied).kind, 'Deployment', 'still the JSON kubectl wrote');
});

test('an env value is masked as the value of its name; an argument after a secret-named flag is masked as its value', () => {
  const pod = {
    kind: 'Pod',
    metadata: { name: 'web-0' },
    spec: {
      containers: [
        {
          name: 'app',
          args: ['--db-password', 'plainword1', '--port', '8080'],
          env: [
            { name: 'DB_PASSWORD', value: 'plainword2' },
            { name: 'API_TOKEN', value: 'Zx81fQk2LmP0aR7tYw3B' },
            { name: 'MODE', value: 'prod' },
            { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
          ],
        },
      ],
    },
  };
  const out = maskKubernetesValue(pod, o, new MaskStats()) as typeof pod;
  const c = out.spec.containers[0]!;
  assert.deepEqual(c.args, ['--db-password', '[REDACTED:password]', '--port', '8080']);
  assert.deepEqual(
    c.env.map((e) => e.value),
    ['[REDACTED:password]', '[REDACTED:generic_secret]', 'prod', undefined],
  );
  assert.equal(c.env[3], pod.spec.containers[0]!.env[3], 'a reference to a Secret is left as it is');
});

test('a field named like a secret anywhere (a custom resource, a ConfigMap key) is masked as its value; URLs and messages get the detectors', () => {
  const cr = {
    apiVersion: 'db.example.com/v1',
    kind: 'Database',
    metadata: { name: 'prod', resourceVersion: '12345', uid: 'f47ac10b-58cc-4372-a567-0e02b2c3d479' },
    spec: { host: 'db', user: 'app', password: 'plainword1', apiToken: 'Zx81fQk2LmP0aR7tYw3B', connectionString: 'postgres://app:S3cret-pw@db/app', replicas: 3 },
    status: { conditions: [{ type: 'Ready', message: 'login failed with token=ghp_abcdefghijklmnopqrstuvwxyz0123456789' }] },
  };
  const out = maskKubernetesValue(cr, o, new MaskStats()) as typeof cr;
  assert.equal(out.spec.password, '[REDACTED:password]');
  assert.equal(out.spec.apiToken, '[REDACTED:generic_secret]');
  assert.equal(out.spec.connectionString, 'postgres://app:[REDACTED:url_password]@db/app');
  assert.equal(out.status.conditions[0]!.message, 'login failed with token=[REDACTED:github_token]');
  assert.deepEqual(out.metadata, cr.metadata, 'metadata kubectl relies on is untouched');
  assert.equal(out.spec.host, 'db');
  const cm = { kind: 'ConfigMap', metadata: { name: 'app' }, data: { password: 'plainword2', 'app.properties': 'db.password=plainword3\nmode=prod\n', mode: 'prod' } };
  const cmOut = maskKubernetesValue(cm, o, new MaskStats()) as typeof cm;
  assert.deepEqual(cmOut.data, { password: '[REDACTED:password]', 'app.properties': 'db.password=[REDACTED:password]\nmode=prod\n', mode: 'prod' });
});
