import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { escapeCefExtension, escapeCefHeader, exportRecords, openAuditLog, parseRecord, toCef, toOcsf } from '../../src/audit/index.js';
import { validate, type Schema } from './json-schema.js';
import { recordScenario, session, tempConfig, testMask } from './helpers.js';

const schema = JSON.parse(readFileSync(new URL('./ocsf-1.3.0.schema.json', import.meta.url), 'utf8')) as Schema;
const CLASS: Readonly<Record<number, string>> = { 0: 'base_event', 3002: 'authentication', 6003: 'api_activity', 6005: 'datastore_activity' };

function check(ev: Record<string, unknown>): string[] {
  const name = CLASS[ev.class_uid as number];
  if (name === undefined) return [`unexpected class_uid ${String(ev.class_uid)}`];
  return validate(ev, { $ref: `#/definitions/${name}` }, schema);
}

test('the schema validator rejects what it should (so the OCSF test can fail)', () => {
  assert.notDeepEqual(check({ class_uid: 6005, category_uid: 6, activity_id: 4, type_uid: 600504, time: 1, severity_id: 1, metadata: { version: '1.3.0', product: { vendor_name: 'x' } } }), [], 'actor and src_endpoint are required');
  assert.notDeepEqual(check({ class_uid: 3002, category_uid: 3, activity_id: 1, type_uid: 300201, time: 1, severity_id: 1, metadata: { version: '1.3.0', product: { vendor_name: 'x' } }, user: {}, invented: 1 }), []);
});

test('OCSF 1.3.0: every recorded event maps to a valid Datastore, API, Authentication or Base event', async () => {
  const t = tempConfig();
  try {
    let now = Date.UTC(2026, 10, 3);
    const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
    await log.append({ type: 'gateway.start', details: { version: '0.1.0' } });
    await log.append({ type: 'auth.failure', source: '10.1.1.1:4000', identity: { issuer: 'https://issuer.example', subject: 'x' }, outcome: 'failure', error: { code: 'SLUICE_TOKEN_EXPIRED', message: 'token expired' } });
    await recordScenario(log, (ms) => (now += ms));
    const http = session('sess-h', { protocol: 'kubernetes', connection: 'k8s', upstreamTarget: 'kube.example:6443' });
    await log.append({ type: 'command', session: http, command: { text: 'GET /api/v1/namespaces/default/secrets', verb: 'get', objects: ['secrets'] }, decision: { effect: 'deny', rule: 'k#1' }, outcome: 'denied' });
    // The shapes the connectors write for a statement's end.
    await log.append({ type: 'command.result', session: session(), command: { text: 'SELECT 1/0' }, outcome: 'failure', error: { code: '22012', message: 'division by zero' }, rows: 0, bytes: 0, durationMs: 1, details: { tags: [] } });
    await log.append({ type: 'command.result', session: http, command: { text: 'GET /api/v1/namespaces/default/pods', kind: 'k8s', verb: 'list', objects: ['namespaces/default/pods'] }, outcome: 'success', bytes: 812, durationMs: 3, mask: [{ detector: 'email', count: 1 }], details: { status: 200, requestBytes: 0, responseBytes: 812 } });
    // A PostgreSQL pure read: one record with the decision and how it ended.
    await log.append({ type: 'command', session: session(), command: { text: 'SELECT 1/0', kind: 'select', objects: [] }, decision: { effect: 'allow', rule: 'r#1' }, policyVersion: 'v1', outcome: 'failure', error: { code: '22012', message: 'division by zero' }, rows: 0, bytes: 0, durationMs: 2, preview: { columns: ['x'], rows: [] }, details: { tags: [] } });
    await log.close();

    const store = await (await import('../../src/audit/index.js')).openAuditStore(t.config, { readonly: true });
    const seen = new Set<number>();
    const lines: Record<string, unknown>[] = [];
    await exportRecords(store, { format: 'ocsf' }, (line) => {
      const ev = JSON.parse(line) as Record<string, unknown>;
      lines.push(ev);
      seen.add(ev.class_uid as number);
      assert.deepEqual(check(ev), [], line);
      assert.equal(ev.type_uid, (ev.class_uid as number) * 100 + (ev.activity_id as number));
    });
    await store.close();
    assert.deepEqual([...seen].sort((a, b) => a - b), [0, 3002, 6003, 6005]);
    const results = lines.filter((e) => (e.metadata as { event_code: string }).event_code === 'command.result');
    assert.deepEqual(results.map((e) => [e.class_uid, e.status_id, e.status_code]), [[6005, 2, '22012'], [6003, 1, undefined]]);
    assert.deepEqual((results[1]?.api as { response: unknown }).response, { code: 200 });
    assert.equal(results[1]?.activity_id, 2, 'list → Read');
    assert.equal((results[0]?.metadata as { profiles?: unknown }).profiles, undefined, 'a result carries no security control');
    const both = lines[lines.length - 1] as Record<string, unknown>;
    assert.deepEqual([both.class_uid, both.activity_id, both.status_id, both.status_code, both.duration, both.action_id], [6005, 4, 2, '22012', 2, 1]);
    assert.deepEqual((both.metadata as { profiles?: unknown }).profiles, ['security_control'], 'the decision and its control, with the result');
  } finally {
    t.cleanup();
  }
});

test('OCSF security_control: allow → Allowed, deny → Denied/Blocked, with the rule as policy', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'command', session: session(), command: { text: 'SELECT 1', verb: 'select' }, decision: { effect: 'allow', rule: 'r#1' }, outcome: 'success' });
    await log.append({ type: 'command', session: session(), command: { text: 'DROP TABLE t', verb: 'ddl' }, decision: { effect: 'deny', rule: 'r#9', reason: 'ddl denied' }, outcome: 'denied', policyVersion: 'v7' });
    const [a, d] = (await log.store.readEvents(0, 10)).map((e) => toOcsf(parseRecord(e.body)));
    await log.close();
    assert.equal(a!.action_id, 1);
    assert.equal(a!.disposition_id, 1);
    assert.equal(a!.activity_id, 4);
    assert.equal(d!.action_id, 2);
    assert.equal(d!.disposition_id, 2);
    assert.deepEqual(d!.policy, { name: 'r#9', uid: 'r#9', version: 'v7', desc: 'ddl denied' });
    assert.deepEqual((a!.metadata as { profiles: string[] }).profiles, ['security_control']);
    assert.deepEqual(a!.src_endpoint, { ip: '10.0.0.7', port: 51234 });
  } finally {
    t.cleanup();
  }
});

test('CEF escaping vectors (header: \\ and |; extension: \\ = and newlines)', () => {
  assert.equal(escapeCefHeader('a|b\\c'), 'a\\|b\\\\c');
  assert.equal(escapeCefHeader('line1\nline2'), 'line1 line2');
  assert.equal(escapeCefExtension('a=b'), 'a\\=b');
  assert.equal(escapeCefExtension('c:\\dir'), 'c:\\\\dir');
  assert.equal(escapeCefExtension('x|y'), 'x|y', 'pipes need no escape in extensions');
  assert.equal(escapeCefExtension('one\ntwo\r\nthree\rfour'), 'one\\ntwo\\nthree\\rfour');
  assert.equal(escapeCefExtension('\\='), '\\\\\\=');
});

test('CEF: a hostile statement cannot forge fields or a second event', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'command', session: session(), command: { text: "SELECT 1 act=allow\nCEF:0|Evil|x|1|y|z|0|suser=root \\ |" }, decision: { effect: 'deny', rule: 'r|1' }, outcome: 'denied' });
    const line = toCef(parseRecord((await log.store.readEvents(0, 1))[0]!.body));
    await log.close();
    assert.equal(line.includes('\n'), false);
    assert.match(line, /^CEF:0\|Sluice\|Sluice\|0\.1\.0\|command\|command deny\|7\|/);
    assert.match(line, / request=SELECT 1 act\\=allow\\nCEF:0\|Evil\|x\|1\|y\|z\|0\|suser\\=root \\\\ \|/);
    assert.match(line, / act=deny /);
    assert.match(line, / cs1Label=rule cs1=r\|1 /);
    // Every unescaped "=" starts a key: split on them and check the keys are ours.
    const keys = [...line.slice(line.indexOf('|', line.indexOf('|7|') + 1) + 1).matchAll(/(?:^| )([A-Za-z0-9]+)=(?<!\\=)/g)].map((m) => m[1]);
    assert.equal(keys.filter((k) => k === 'act').length, 1);
    assert.equal(keys.includes('suser') && keys.filter((k) => k === 'suser').length === 1, true);
  } finally {
    t.cleanup();
  }
});
