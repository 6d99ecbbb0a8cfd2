import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../src/audit/index.js';
import { run as auditRun } from '../../src/cli/commands/audit.js';
import { formatEvent, run as replayRun } from '../../src/cli/commands/replay.js';
import { run as sessionsRun } from '../../src/cli/commands/sessions.js';
import { captureIo, recordScenario, session, tempConfig, testMask, type TempConfig } from './helpers.js';

async function scenario(): Promise<TempConfig> {
  const t = tempConfig('{ checkpointEvery: 4 }');
  let now = Date.UTC(2026, 10, 3, 9, 0, 0);
  const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
  await recordScenario(log, (ms) => (now += ms));
  now = Date.UTC(2026, 10, 5);
  await log.append({ type: 'session.start', session: session('sess-2', { connection: 'otherdb', identity: { ...session().identity, subject: 'agent-7' } }) });
  await log.close();
  return t;
}

test('sessions list: table, --json and filters', async () => {
  const t = await scenario();
  try {
    let io = captureIo();
    assert.equal(await sessionsRun(['list', '--config', t.path], io), 0);
    assert.match(io.out(), /SESSION\s+STARTED \(UTC\)/);
    assert.match(io.out(), /sess-1\s+2026-11-03 09:00:00Z\s+4\.7s\s+repo:acme\/app:ref:refs\/heads\/main\s+ci-readonly\s+appdb\s+10\.0\.0\.7:51234\s+3\s+1\s+1\s+client closed\n/);
    // How each session ended: an open one has no end yet.
    assert.match(io.out(), /ERRORS\s+ENDED\n/);
    assert.match(io.out(), /sess-2\s+2026-11-05 00:00:00Z\s+open\s.*\s-\n/);
    io = captureIo();
    assert.equal(await sessionsRun(['list', '--json', '--config', t.path], io), 0);
    const all = JSON.parse(io.out()) as { id: string; endReason?: string }[];
    assert.deepEqual(all.map((s) => [s.id, s.endReason]), [['sess-2', undefined], ['sess-1', 'client closed']]);

    io = captureIo();
    assert.equal(await sessionsRun(['list', '--json', '--config', t.path, '--subject', 'agent-7'], io), 0);
    const list = JSON.parse(io.out()) as { id: string }[];
    assert.deepEqual(list.map((s) => s.id), ['sess-2']);

    io = captureIo();
    await sessionsRun(['list', '--json', '--config', t.path, '--connection', 'appdb', '--since', '2026-11-01'], io);
    assert.deepEqual((JSON.parse(io.out()) as { id: string }[]).map((s) => s.id), ['sess-1']);

    io = captureIo();
    await sessionsRun(['list', '--json', '--config', t.path, '--since', '2026-11-04'], io);
    assert.deepEqual((JSON.parse(io.out()) as { id: string }[]).map((s) => s.id), ['sess-2']);

    io = captureIo();
    assert.equal(await sessionsRun(['list', '--since', 'yesterday', '--config', t.path], io), 2);
    assert.equal(await sessionsRun(['list', '--bogus'], captureIo()), 2);
    io = captureIo();
    assert.equal(await sessionsRun(['--help'], io), 0);
    assert.match(io.out(), /--subject/);
  } finally {
    t.cleanup();
  }
});

test('replay shows who, every statement with decision and rule, approvals, masked previews, errors and the end, with timing', async () => {
  const t = await scenario();
  try {
    const pauses: number[] = [];
    const io = captureIo();
    assert.equal(await replayRun(['sess-1', '--config', t.path, '--speed', '2'], io, { sleep: async (ms) => void pauses.push(ms) }), 0);
    const out = io.out();
    for (const want of [
      /identity\s+repo:acme\/app:ref:refs\/heads\/main\s+\(issuer https:\/\/token\.actions\.githubusercontent\.com\)/,
      /role\s+ci-readonly/,
      /model claude-sonnet\s+sponsor alice@example\.com/,
      /run_id=9001/,
      /source\s+10\.0\.0\.7:51234/,
      /→ 127\.0\.0\.1:5432\/app as app_ro/,
      // One record with the decision and the result: the command shown when it was sent, its
      // result when it ended.
      /\+1\.197s\s+COMMAND\s+ALLOW by ci-readonly\/appdb#1 \(select is allowed\)\n\s+> SELECT id, card FROM payments LIMIT 2\n\s+\+1\.200s\s+RESULT\s+success\s+2 rows, 64 bytes, 3 ms\n\s+masked: credit_card@card×2/,
      /1 \| \[CARD\]/,
      /DENIED\s+DENY by ci-readonly\/appdb#3 \(delete is denied\)/,
      /APPROVAL\s+REQUESTED apr-1/,
      /APPROVAL\s+APPROVED apr-1 by bob@example\.com: ok for release/,
      /UPSTREAM\s+57014 canceling statement/,
      /END\s+success/,
    ]) assert.match(out, want);
    assert.equal(out.includes('4111'), false, 'previews are masked');
    assert.deepEqual(pauses, [600, 400, 250, 1000, 50, 50], 'real gaps, halved by --speed 2');

    const io0 = captureIo();
    const none: number[] = [];
    assert.equal(await replayRun(['sess-1', '--config', t.path, '--speed', '0'], io0, { sleep: async (ms) => void none.push(ms) }), 0);
    assert.deepEqual(none, []);

    const ioj = captureIo();
    assert.equal(await replayRun(['sess-1', '--config', t.path, '--json'], ioj), 0);
    const tl = JSON.parse(ioj.out()) as { events: { type: string }[] };
    assert.equal(tl.events.length, 9);

    const missing = captureIo();
    assert.equal(await replayRun(['nope', '--config', t.path], missing), 1);
    assert.match(missing.err(), /no recorded session nope/);
  } finally {
    t.cleanup();
  }
});

test('audit verify: exit 0 when intact, exit 1 naming the first bad record', async () => {
  const t = await scenario();
  try {
    let io = captureIo();
    assert.equal(await auditRun(['verify', '--config', t.path], io), 0);
    assert.match(io.out(), /audit log intact: 10 records, \d+ signed checkpoints, latest covers 10/);

    const db = new Database(join(t.dir, 'data', 'sluice.db'));
    db.exec('DROP TRIGGER audit_events_no_update');
    db.prepare("UPDATE audit_events SET body = replace(body, 'DELETE FROM payments', 'SELECT 1') WHERE seq = 4").run();
    db.close();
    io = captureIo();
    assert.equal(await auditRun(['verify', '--config', t.path], io), 1);
    assert.match(io.out(), /audit log TAMPERED: first bad record 4 \(id [0-9A-Z]{26}\): edited/);
    io = captureIo();
    assert.equal(await auditRun(['verify', '--config', t.path, '--json'], io), 1);
    assert.equal((JSON.parse(io.out()) as { problem: { seq: number } }).problem.seq, 4);
  } finally {
    t.cleanup();
  }
});

test('audit export jsonl|ocsf|cef with --since, and usage errors', async () => {
  const t = await scenario();
  try {
    let io = captureIo();
    assert.equal(await auditRun(['export', '--config', t.path, '--format', 'jsonl'], io), 0);
    const lines = io.out().trim().split('\n');
    assert.equal(lines.length, 10);
    assert.equal((JSON.parse(lines[0]!) as { seq: number }).seq, 1);

    io = captureIo();
    assert.equal(await auditRun(['export', '--config', t.path, '--format', 'ocsf', '--since', '2026-11-04'], io), 0);
    const ocsf = io.out().trim().split('\n').map((l) => JSON.parse(l) as { class_uid: number; activity_id: number });
    assert.deepEqual(ocsf.map((e) => [e.class_uid, e.activity_id]), [[3002, 1]]);

    io = captureIo();
    assert.equal(await auditRun(['export', '--config', t.path, '--format', 'cef'], io), 0);
    assert.equal(io.out().trim().split('\n').length, 10);
    assert.match(io.out(), /^CEF:0\|Sluice\|Sluice\|0\.1\.0\|command\|delete deny\|7\|.*act=deny/m);

    assert.equal(await auditRun(['export', '--config', t.path, '--format', 'xml'], captureIo()), 2);
    assert.equal(await auditRun(['frobnicate'], captureIo()), 2);
    io = captureIo();
    assert.equal(await auditRun(['--help'], io), 0);
    assert.match(io.out(), /verify-receipt/);
  } finally {
    t.cleanup();
  }
});

test('audit receipt for a record a running gateway has not sealed yet says when to retry', async () => {
  const t = tempConfig('{ checkpointEvery: 1000, checkpointInterval: 30s }');
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    const { id } = await log.append({ type: 'gateway.start' });
    await log.store.readEvents(0, 1); // ingested, not yet under a checkpoint
    const io = captureIo();
    assert.equal(await auditRun(['receipt', '--config', t.path, id], io), 1);
    assert.match(io.err(), /not yet covered by a signed checkpoint.*every 30s: try again then/);
    await log.close();
    // Once the gateway stopped (it sealed a checkpoint on close), the receipt is there.
    assert.equal(await auditRun(['receipt', '--config', t.path, id], captureIo()), 0);
  } finally {
    t.cleanup();
  }
});

test('audit receipt and verify-receipt', async () => {
  const t = await scenario();
  try {
    const db = new Database(join(t.dir, 'data', 'sluice.db'), { readonly: true });
    const id = (db.prepare('SELECT id FROM audit_events WHERE seq = 3').get() as { id: string }).id;
    db.close();
    let io = captureIo();
    assert.equal(await auditRun(['receipt', '--config', t.path, id], io), 0);
    const file = join(t.dir, 'receipt.json');
    writeFileSync(file, io.out());
    io = captureIo();
    assert.equal(await auditRun(['verify-receipt', '--config', t.path, file], io), 0);
    assert.match(io.out(), /receipt valid: record 3/);
    const receipt = JSON.parse(readFileSync(file, 'utf8')) as { record: string };
    writeFileSync(file, JSON.stringify({ ...receipt, record: receipt.record.replace('"outcome":"success"', '"outcome":"failure"') }));
    io = captureIo();
    assert.equal(await auditRun(['verify-receipt', '--config', t.path, file], io), 1);
    assert.match(io.out(), /receipt INVALID: inclusion proof/);
  } finally {
    t.cleanup();
  }
});

test('replay renders the results the connectors record: HTTP status, exec stream text and the stream end', () => {
  const base = { v: 1 as const, seq: 1, id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', node: 'n', prev: '0'.repeat(64), session: 's' };
  const http = formatEvent({ ...base, ts: 1_500, type: 'command.result', outcome: 'success', bytes: 312, durationMs: 4, command: { text: 'GET /v1/orders/42' }, mask: [{ detector: 'email', count: 1 }], details: { status: 200, requestBytes: 0, responseBytes: 312 } }, 1_000);
  assert.match(http, /^\s+\+0\.500s\s+RESULT\s+success\s+312 bytes, 4 ms, HTTP 200\n\s+masked: email×1\n$/);
  const stdout = formatEvent({ ...base, ts: 2_000, type: 'command.result', outcome: 'pending', details: { stream: 'stdout', seq: 0, offsetMs: 12, data: 'hello\nmy card 4111 **** **** 1111\n' } }, 1_000);
  assert.equal(stdout, `${'+1.000s'.padStart(10)}  STDOUT    hello\n${' '.repeat(22)}my card 4111 **** **** 1111\n`);
  const end = formatEvent({ ...base, ts: 3_000, type: 'command.result', outcome: 'success', bytes: 40, durationMs: 900, details: { stream: 'end', requestBytes: 21, responseBytes: 40, protocol: 'v5.channel.k8s.io' } }, 1_000);
  assert.match(end, /RESULT\s+success\s+40 bytes, 900 ms, stream closed after 21 bytes in, 40 out/);
  const failed = formatEvent({ ...base, ts: 3_000, type: 'command.result', outcome: 'failure', error: { code: '57014', message: 'canceling statement due to user request' }, details: { tags: [] } }, 1_000);
  assert.match(failed, /RESULT\s+failure\n\s+error 57014 canceling statement due to user request/);
});
