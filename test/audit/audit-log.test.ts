import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { filesUnder } from '../helpers/files.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { DEFER_MS, openAuditLog, parseRecord, verifyConfiguredLog } from '../../src/audit/index.js';
import { SluiceError } from '../../src/errors.js';
import { session, steppingClock, tempConfig, testMask } from './helpers.js';

test('append stamps seq, id, time and node, and chains records', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask, clock: steppingClock(), node: 'n1' });
    const a = await log.append({ type: 'session.start', session: session() });
    const b = await log.append({ type: 'command', session: session(), command: { text: 'SELECT 1', verb: 'select' }, decision: { effect: 'allow', rule: 'ci-readonly/appdb#1', reason: 'select allowed' }, outcome: 'success', rows: 1, bytes: 10, durationMs: 1.5 });
    assert.equal(a.seq, 1);
    assert.equal(b.seq, 2);
    assert.match(a.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const rows = await log.store.readEvents(0, 10);
    const r1 = parseRecord(rows[0]!.body);
    const r2 = parseRecord(rows[1]!.body);
    assert.equal(r1.node, 'n1');
    assert.equal(r1.prev, '0'.repeat(64));
    assert.equal(r2.prev, rows[0]!.hash.toString('hex'));
    assert.equal(r1.identity?.claims?.repository, 'acme/app');
    assert.equal(r1.identity?.claims?.run_id, '9001');
    assert.equal((r1.identity?.claims as Record<string, unknown>).secret_claim, undefined, 'only selected claims are recorded');
    assert.equal(r1.upstream?.account, 'app_ro');
    assert.equal(r2.decision?.rule, 'ci-readonly/appdb#1');
    await log.close();
    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.equal(report.records, 2);
  } finally {
    t.cleanup();
  }
});

for (const writer of ['thread', 'inline'] as const) {
  test(`concurrent appends share one transaction (group commit, ${writer} writer)`, async () => {
    const t = tempConfig();
    try {
      const log = await openAuditLog(t.config, { mask: testMask, writer });
      const before = log.stats().commits;
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ type: 'command', command: { text: `SELECT ${i}` } })));
      assert.deepEqual(results.map((r) => r.seq).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
      const { commits, records } = log.stats();
      assert.deepEqual({ commits, records }, { commits: before + 1, records: 50 }, '50 appends in one tick commit together');
      await log.close();
      assert.equal((await verifyConfiguredLog(t.config)).ok, true);
    } finally {
      t.cleanup();
    }
  });
}

test('a deferred record joins the next commit, or commits on its own within DEFER_MS', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'gateway.start' });
    // A deferred record waits up to DEFER_MS for a commit to join. On a loaded machine one event
    // loop turn can take longer than that, and then it rightly commits alone: try again.
    let seq = 1;
    for (let attempt = 0; ; attempt++) {
      const before = log.stats().commits;
      const deferred = log.append({ type: 'command.result', outcome: 'success' }, { defer: true });
      const t0 = performance.now();
      await new Promise((r) => setImmediate(r));
      const waited = performance.now() - t0;
      await log.append({ type: 'command', command: { text: 'SELECT 1' } });
      assert.equal((await deferred).seq, seq + 1);
      seq += 2;
      if (log.stats().commits === before + 1) break;
      assert.ok(waited >= DEFER_MS * 0.8 && attempt < 5, `the deferred record did not ride along with the next commit, sent ${waited.toFixed(1)} ms later`);
    }
    const started = performance.now();
    const alone = await log.append({ type: 'command.result', outcome: 'success' }, { defer: true });
    assert.equal(alone.seq, seq + 1);
    seq += 1;
    assert.ok(performance.now() - started < DEFER_MS + 200, 'a deferred record alone still commits promptly');
    // A read through the log sees a deferred record at once.
    const pending = log.append({ type: 'command.result', outcome: 'failure' }, { defer: true });
    assert.deepEqual((await log.store.readEvents(seq, 10)).map((e) => e.seq), [seq + 1]);
    await pending;
    await log.close();
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
  } finally {
    t.cleanup();
  }
});

test('the masker runs on every free-text field: a card number never reaches the database file', async () => {
  const t = tempConfig();
  try {
    const card = '4111 1111 1111 1111';
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({
      type: 'command',
      session: session(),
      command: { text: `SELECT * FROM t WHERE card = '${card}'` },
      error: { code: 'X', message: `bad card ${card}` },
      decision: { effect: 'deny', rule: 'r', reason: `matched ${card}` },
      preview: { columns: ['card'], rows: [[card], [null]] },
      details: { nested: { list: [card] } },
    });
    await log.close();
    const dataDir = join(t.dir, 'data');
    for (const f of filesUnder(dataDir)) {
      const bytes = readFileSync(f);
      assert.equal(bytes.includes(Buffer.from('4111 1111')), false, `${f} holds the card number`);
      assert.equal(bytes.includes(Buffer.from('4111111111111111')), false, `${f} holds the card number`);
    }
    const db = new Database(join(dataDir, 'sluice.db'), { readonly: true });
    const body = (db.prepare('SELECT body FROM audit_events').get() as { body: string }).body;
    db.close();
    assert.match(body, /\[CARD\]/);
  } finally {
    t.cleanup();
  }
});

test('previews are capped by rows and bytes', async () => {
  const t = tempConfig('{ previewRows: 2, previewBytes: 8 }');
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'command', preview: { columns: ['a'], rows: [['12345'], ['67890'], ['x']] } });
    const r = parseRecord((await log.store.readEvents(0, 1))[0]!.body);
    assert.deepEqual(r.preview, { columns: ['a'], rows: [['12345'], ['678']], truncated: true });
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('fail closed: with inline commits, a store that cannot be written rejects append with SLUICE_AUDIT_UNAVAILABLE', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask, busyTimeoutMs: 50, writer: 'inline' });
    await log.append({ type: 'gateway.start' });
    // Another writer holds the database's write lock: our commit cannot happen.
    const other = new Database(join(t.dir, 'data', 'sluice.db'));
    other.exec('BEGIN IMMEDIATE');
    await assert.rejects(log.append({ type: 'command', command: { text: 'SELECT 1' } }), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE');
    other.exec('ROLLBACK');
    other.close();
    // Once the store recovers, appends work again and the chain is intact.
    assert.equal((await log.append({ type: 'command', command: { text: 'SELECT 2' } })).seq, 2);
    await log.close();
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
  } finally {
    t.cleanup();
  }
});

test('spool: appends stay durable while SQLite is locked; reads wait for ingestion and then see them', async () => {
  const t = tempConfig();
  try {
    const lines: string[] = [];
    const log = await openAuditLog(t.config, { mask: testMask, busyTimeoutMs: 20, log: (l) => lines.push(l) });
    await log.append({ type: 'gateway.start' });
    const other = new Database(join(t.dir, 'data', 'sluice.db'));
    other.exec('BEGIN IMMEDIATE');
    const seqs = await Promise.all([1, 2, 3].map((i) => log.append({ type: 'command', command: { text: `SELECT ${i}` } })));
    assert.deepEqual(seqs.map((r) => r.seq), [2, 3, 4], 'acknowledged from the spool while the store is locked');
    // A read through the log fails while ingestion cannot write (it does not hang)…
    await assert.rejects(log.store.readEvents(0, 10), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE');
    other.exec('ROLLBACK');
    other.close();
    // …and succeeds, with every record, once the writer thread caught up.
    let rows: Awaited<ReturnType<typeof log.store.readEvents>> = [];
    for (let i = 0; i < 100 && rows.length < 4; i++) {
      rows = await log.store.readEvents(0, 10).catch(() => []);
      if (rows.length < 4) await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(rows.map((r) => r.seq), [1, 2, 3, 4]);
    // The operator hears of it once (not once per retry), and of the recovery.
    assert.equal(lines.filter((l) => /cannot ingest the spool/.test(l)).length, 1, lines.join('\n'));
    assert.ok(lines.some((l) => /ingests again/.test(l)), lines.join('\n'));
    await log.close();
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
  } finally {
    t.cleanup();
  }
});

test('one writer per SQLite log: a second open is refused, naming the holder; a dead holder\'s lock is taken over', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await assert.rejects(openAuditLog(t.config, { mask: testMask }), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE' && /already open for writing/.test(err.message));
    await log.append({ type: 'gateway.start' });
    await log.close();
    const lockPath = join(t.dir, 'data', 'sluice.db-spool', 'writer.lock');
    assert.equal(existsSync(lockPath), false, 'close releases the lock');
    // A live process of this host holds it (pid 1 is always alive).
    writeFileSync(lockPath, `1 ${hostname()}\n`);
    await assert.rejects(openAuditLog(t.config, { mask: testMask }), (err: unknown) => err instanceof SluiceError && /being written by process 1\b/.test(err.message));
    // A process that is gone: its lock is stale and taken over.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(lockPath, `${dead} ${hostname()}\n`);
    const again = await openAuditLog(t.config, { mask: testMask });
    assert.equal((await again.append({ type: 'gateway.start' })).seq, 2);
    await again.close();
  } finally {
    t.cleanup();
  }
});

test('fail closed: a store path that cannot be created fails openAuditLog', async () => {
  const t = tempConfig('', '{ sqlite: $DIR/blocker/audit.db }');
  try {
    writeFileSync(join(t.dir, 'blocker'), 'a regular file where a directory should be');
    await assert.rejects(openAuditLog(t.config, { mask: testMask }), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE');
  } finally {
    t.cleanup();
  }
});

test('a malformed event is a caller bug (TypeError), not a stored record', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await assert.rejects(log.append({ type: 'nope' as never }), TypeError);
    await assert.rejects(log.append({ type: 'command', rows: -1 }), TypeError);
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('checkpoints are signed every N events and the key file is 0600 and apart from the store', async () => {
  const t = tempConfig('{ checkpointEvery: 10 }');
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    for (let i = 0; i < 25; i++) await log.append({ type: 'command', command: { text: `SELECT ${i}` } });
    const cps = await log.store.readCheckpoints();
    assert.deepEqual(cps.map((c) => c.size), [10, 20]);
    await log.close();
    assert.deepEqual((await log.store.readCheckpoints().catch(() => null)), null, 'store is closed');
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(t.dir, 'data', 'audit-signing.key')).mode & 0o777, 0o600);
    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true);
    assert.equal(report.latestCheckpoint?.size, 25, 'close writes a final checkpoint');
  } finally {
    t.cleanup();
  }
});

test('checkpoints are signed every T when idle', async () => {
  const t = tempConfig('{ checkpointInterval: 50ms, checkpointEvery: 1000 }');
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'gateway.start' });
    await new Promise((r) => setTimeout(r, 200));
    const cps = await log.store.readCheckpoints();
    assert.equal(cps.at(-1)?.size, 1);
    await log.close();
  } finally {
    t.cleanup();
  }
});
