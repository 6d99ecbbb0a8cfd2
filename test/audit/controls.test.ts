/**
 * `sluice audit controls`: each control's status follows the configuration and the verified log,
 * and every figure in it is counted from the records.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfigFile } from '../../src/config/index.js';
import { openAuditLog } from '../../src/audit/index.js';
import { run as auditRun } from '../../src/cli/commands/audit.js';
import type { ControlsReport } from '../../src/audit/controls.js';
import { captureIo, recordScenario, testMask } from './helpers.js';

const START = Date.UTC(2026, 10, 3, 9, 0, 0);

/** A config (sound, or weakened where a control should say so), and a log recorded through it. */
async function setup(weak: boolean): Promise<{ dir: string; path: string; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-controls-'));
  const path = join(dir, 'sluice.yaml');
  writeFileSync(
    path,
    `listen:
  postgres: ${weak ? '0.0.0.0:6432' : '127.0.0.1:6432'}
  http: ${weak ? '0.0.0.0:8080' : '127.0.0.1:8080'}
${weak ? 'allowInsecureRemote: true\n' : ''}dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
node: test-node
identity:
  issuers: [ { local: true } ]
${weak ? '  onTokenExpiry: keep\n' : ''}  roles:
    - name: ci-readonly
      tokenExpiryGrace: 15m
    - name: analyst
    - name: dba
      approver: true
    - name: auditor
      auditor: true
connections:
  - name: appdb
    type: postgres
    upstream: { host: ${weak ? 'db.internal' : '127.0.0.1'}, database: app, user: app_ro, password: ${weak ? 'hunter2-inline' : 'env:APPDB_PASSWORD'}${weak ? '' : ', sslmode: disable'} }
  - name: api
    type: http
    upstream: { url: ${weak ? 'http://api.internal:8000' : 'https://api.example.com'}, auth: { bearer: ${weak ? 'inline-bearer-token' : 'env:API_TOKEN'} }${weak ? ', insecureSkipVerify: true' : ''} }
policies:
  - role: ci-readonly
    connection: appdb
    rules:
      - allow: [select]
      - review: [update]
        approval: { approvers: [dba] }
${
  weak
    ? `  - role: dba
    connection: api
    rules:
      - allow: '*'
  - role: auditor
    connection: appdb
    rules:
      - allow: [select]
`
    : `  - role: ci-readonly
    connection: api
    rules:
      - allow: [get]
  - role: analyst
    connection: appdb
    rules:
      - allow: [select, explain]
`
}`,
  );
  const config = loadConfigFile(path, { env: { APPDB_PASSWORD: 'x', API_TOKEN: 'y' } });
  let now = START;
  const log = await openAuditLog(config, { mask: testMask, clock: () => now });
  await recordScenario(log, (ms) => (now += ms));
  now = START + 86_400_000;
  await log.append({ type: 'auth.failure', source: '10.0.0.9:4444', connection: 'appdb', outcome: 'failure', error: { code: 'SLUICE_TOKEN_EXPIRED', message: 'token expired' } });
  await log.close();
  return { dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const env = { APPDB_PASSWORD: 'x', API_TOKEN: 'y' };
const ioWithEnv = (): ReturnType<typeof captureIo> => ({ ...captureIo(), env });

async function report(path: string, extra: string[] = []): Promise<{ code: number; report: ControlsReport }> {
  const io = ioWithEnv();
  const code = await auditRun(['controls', '--config', path, '--json', ...extra], io);
  return { code, report: JSON.parse(io.out()) as ControlsReport };
}

const byId = (r: ControlsReport): Map<string, ControlsReport['controls'][number]> => new Map(r.controls.map((c) => [c.id, c]));

test('audit controls: a sound config and an intact log; the figures are counted from the records', async () => {
  const t = await setup(false);
  try {
    const { code, report: r } = await report(t.path);
    assert.equal(code, 0);
    const c = byId(r);
    assert.deepEqual([...c.keys()], ['AC-2', 'AC-3', 'AC-5', 'AC-6', 'AU-2', 'AU-3', 'AU-6', 'AU-9', 'AU-10', 'AU-11', 'AU-12', 'IA-2', 'IA-5', 'SC-8', 'SC-13']);
    for (const id of ['AC-2', 'AC-3', 'AC-5', 'AC-6', 'AU-9', 'AU-10', 'IA-5', 'SC-8']) assert.equal(c.get(id)?.status, 'ok', `${id}: ${JSON.stringify(c.get(id)?.findings)}`);
    assert.equal(r.log.ok, true);
    assert.equal(r.log.records, 10);
    // The scenario: three commands (allowed, denied, approved after review), one approval, one refused token.
    assert.deepEqual(c.get('AC-3')?.evidence, { policies: 3, rules: 4, commands: 3, allow: 1, deny: 1, review: 1 });
    assert.equal((c.get('AC-5')?.evidence as { requested: number; approved: number }).requested, 1);
    assert.equal((c.get('AC-5')?.evidence as { approved: number }).approved, 1);
    assert.equal((c.get('AC-2')?.evidence as { subjects: number }).subjects, 1);
    assert.ok(c.get('AC-2')?.findings.includes('sessions end 1h after their token expires (roles with their own grace: ci-readonly 15m); a statement still running 1m later is cancelled'), JSON.stringify(c.get('AC-2')?.findings));
    assert.deepEqual((c.get('IA-2')?.evidence as { authFailures: unknown }).authFailures, { SLUICE_TOKEN_EXPIRED: 1 });
    assert.deepEqual((c.get('AC-6')?.evidence as { readOnly: string[] }).readOnly, ['analyst@appdb']);
    // The scenario's approved UPDATE was recorded without a policy version: AU-3 says so.
    assert.equal(c.get('AU-3')?.status, 'attention');
    assert.deepEqual((c.get('AU-3')?.evidence as { missing: unknown }).missing, { policyVersion: 1 });
    assert.equal((c.get('AU-6')?.evidence as { auditorRoles: string[] }).auditorRoles.join(), 'auditor');

    // A window after the scenario's day holds only the refused token.
    const later = await report(t.path, ['--since', new Date(START + 3_600_000).toISOString()]);
    assert.deepEqual(byId(later.report).get('AC-3')?.evidence, { policies: 3, rules: 4, commands: 0, allow: 0, deny: 0, review: 0 });
    assert.deepEqual(byId(later.report).get('AU-2')?.evidence, { records: 1, byType: { 'auth.failure': 1 } });

    const io = ioWithEnv();
    assert.equal(await auditRun(['controls', '--config', t.path], io), 0);
    assert.match(io.out(), /^AC-3 +Access enforcement +OK$/m);
    assert.match(io.out(), /- 3 command\(s\) decided in the whole log: 1 allowed, 1 denied, 1 held for review/);
    assert.match(io.out(), /check: sluice audit verify/);
    assert.match(io.out(), /\d+ ok, 1 attention, 0 failed, 0 off\n$/);
  } finally {
    t.cleanup();
  }
});

test('audit controls: what weakens a control is named', async () => {
  const t = await setup(true);
  try {
    const { code, report: r } = await report(t.path);
    assert.equal(code, 0, 'attention is not failure');
    const c = byId(r);
    assert.equal(c.get('AC-2')?.status, 'attention');
    assert.match(c.get('AC-2')?.findings[0] ?? '', /onTokenExpiry is keep/);
    assert.equal(c.get('AC-5')?.status, 'attention');
    assert.match(c.get('AC-5')?.findings[0] ?? '', /approver role dba also has policies/);
    assert.equal(c.get('AC-6')?.status, 'attention');
    assert.match(c.get('AC-6')?.findings[0] ?? '', /role dba on api \(rule #0\) allows every verb with no condition/);
    assert.equal(c.get('AU-9')?.status, 'attention');
    assert.ok(c.get('AU-9')?.findings.some((f) => /auditor role auditor also has policies/.test(f)));
    assert.equal(c.get('IA-5')?.status, 'attention');
    assert.deepEqual((c.get('IA-5')?.evidence as { inlineCredentials: string[] }).inlineCredentials, ['connections.appdb.upstream.password', 'connections.api.upstream.auth.bearer']);
    assert.equal(c.get('SC-8')?.status, 'attention');
    const hops = (c.get('SC-8')?.evidence as { cleartextHops: string[] }).cleartextHops.join('\n');
    assert.match(hops, /PostgreSQL listener 0\.0\.0\.0:6432 takes tokens in clear/);
    assert.match(hops, /HTTP listener 0\.0\.0\.0:8080/);
    assert.match(hops, /appdb reaches db\.internal with sslmode disable/);
    assert.match(hops, /api reaches api\.internal:8000 over http:\/\//);
    assert.match(hops, /does not verify api\.internal:8000's certificate/);
    // The report never shows a credential's value.
    const io = ioWithEnv();
    await auditRun(['controls', '--config', t.path], io);
    assert.ok(!io.out().includes('hunter2-inline') && !io.out().includes('inline-bearer-token'));
  } finally {
    t.cleanup();
  }
});

test('audit controls: a log that does not verify fails AU-9 and AU-10, exit 1', async () => {
  const t = await setup(false);
  try {
    const db = new Database(join(t.dir, 'data', 'sluice.db'));
    db.exec('DROP TRIGGER audit_events_no_update');
    db.prepare("UPDATE audit_events SET body = replace(body, 'DELETE FROM payments', 'SELECT 1') WHERE seq = 4").run();
    db.close();
    const { code, report: r } = await report(t.path);
    assert.equal(code, 1);
    const c = byId(r);
    assert.equal(c.get('AU-9')?.status, 'failed');
    assert.match(c.get('AU-9')?.findings[0] ?? '', /does NOT verify: record 4: edited/);
    assert.equal(c.get('AU-10')?.status, 'failed');
    assert.equal(r.log.ok, false);
    const io = ioWithEnv();
    assert.equal(await auditRun(['controls', '--config', t.path, '--since', 'soon'], io), 2, 'a bad --since is a usage error');
  } finally {
    t.cleanup();
  }
});
