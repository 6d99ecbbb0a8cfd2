/**
 * The SQLite store's spool: line format (property-tested), recovery of what a dead writer left,
 * and the committer's fail-closed paths (a failed write is cut back off; a stuck store refuses
 * appends past the backlog limit).
 */
import { strict as assert } from 'node:assert';
import { fdatasync, fstatSync, mkdirSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { openAuditLog, openAuditStore, verifyConfiguredLog } from '../../src/audit/index.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import type { PreparedRecord } from '../../src/audit/commit/batch.js';
import { acquireWriterLock, encodeLine, parseLines, recoverSpool, segmentName, spoolDirFor } from '../../src/audit/commit/spool.js';
import { startSpoolCommitter } from '../../src/audit/commit/spool-committer.js';
import { SluiceError } from '../../src/errors.js';
import { buildDraft } from '../../src/audit/event.js';
import { recordBodyParts } from '../../src/audit/record-json.js';
import { newUlid } from '../../src/audit/ulid.js';
import { tempConfig, testMask } from './helpers.js';

const nullable = fc.option(fc.string({ unit: 'binary' }), { nil: null });
const record: fc.Arbitrary<PreparedRecord> = fc.record({
  id: fc.string({ unit: 'binary' }),
  ts: fc.integer({ min: 0, max: 2 ** 47 }),
  type: fc.string({ unit: 'binary' }),
  sessionId: nullable,
  subject: nullable,
  connection: nullable,
  outcome: nullable,
  // Body parts are canonical JSON text: any string, as RFC 8785 writes it.
  head: fc.string({ unit: 'binary' }).map((x) => canonicalJson({ x }).slice(0, -1)),
  mid: fc.string({ unit: 'binary' }).map((x) => canonicalJson([x])),
  tail: fc.string({ unit: 'binary' }).map((x) => `${canonicalJson(x)}}`),
});

test('spool lines round-trip any record, and a line cut short is left unread', () => {
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 5 }), fc.nat(), (recs, cut) => {
      const text = recs.map((r, i) => encodeLine(i + 1, r)).join('');
      const { records, consumed } = parseLines(text, 'test');
      assert.equal(consumed, text.length);
      assert.deepEqual(records, recs.map((r, i) => ({ seq: i + 1, ...r })));
      // Any prefix parses to the whole lines it holds and no more.
      const prefix = text.slice(0, cut % (text.length + 1));
      const partial = parseLines(prefix, 'test');
      assert.equal(partial.records.length, prefix.split('\n').length - 1);
    }),
  );
});

test('a spool line that is not a record is refused with the file named', () => {
  for (const bad of ['garbage\n', '[1,"a",1,"t",null,null,null,null]\tonly-two\n', '{"seq":1}\ta\tb\tc\n', '[1,"a",1,"t",null,null,null]\ta\tb\tc\n']) {
    assert.throws(() => parseLines(bad, '/x/0000000000000001.spool'), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE' && err.message.includes('/x/0000000000000001.spool'));
  }
});

test('recovery ingests what a dead writer acknowledged, drops its torn last line, and refuses a gap', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'gateway.start' });
    await log.close();
    // What a writer killed mid-write leaves: records 2 and 3 whole, record 4 half written.
    const dir = spoolDirFor(join(t.dir, 'data', 'sluice.db'));
    const parts = rec;
    const whole = encodeLine(2, parts(2)) + encodeLine(3, parts(3));
    writeFileSync(join(dir, segmentName(2)), whole + encodeLine(4, parts(4)).slice(0, 30));
    // A reader after the crash moves them in (no live writer holds the lock).
    const store = await openAuditStore(t.config, { readonly: true });
    assert.deepEqual((await store.readEvents(0, 10)).map((e) => e.seq), [1, 2, 3]);
    await store.close();
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.spool')), [], 'recovered segments are deleted');
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);

    // A segment that skips a seq was altered: recovery refuses instead of forking the chain.
    writeFileSync(join(dir, segmentName(5)), encodeLine(5, parts(5)));
    const lock = acquireWriterLock(dir);
    try {
      const s2 = await openAuditStore(t.config);
      await assert.rejects(recoverSpool(s2, dir, { origin: '', signer: undefined as never, checkpointEvery: Infinity, now: 0, force: false }), /record 5 does not follow 3/);
      await s2.close();
    } finally {
      lock.release();
    }
  } finally {
    t.cleanup();
  }
});

async function committerFor(
  t: ReturnType<typeof tempConfig>,
  extra: { write?: (fd: number, b: Buffer, o: number, l: number, p: number) => number; fdatasync?: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void; maxBacklog?: number; softBacklog?: number; segmentBytes?: number; log?: (line: string) => void; synchronous?: 'normal' | 'full' } = {},
) {
  // openAuditLog creates the schema, the key and the origin; the committer is then driven directly.
  const log = await openAuditLog(t.config, { mask: testMask });
  await log.close();
  const path = join(t.dir, 'data', 'sluice.db');
  const dir = spoolDirFor(path);
  mkdirSync(dir, { recursive: true });
  const origin = readOrigin(path);
  return startSpoolCommitter({ path, dir, lock: acquireWriterLock(dir), synchronous: extra.synchronous ?? 'normal', busyTimeoutMs: 20, signingKeyPath: join(t.dir, 'data', 'audit-signing.key'), origin, checkpointEvery: 1000, nextSeq: 1, ...extra });
}

function readOrigin(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT value FROM audit_meta WHERE key = 'origin'").get() as { value: string }).value;
  } finally {
    db.close();
  }
}

/** Poll `check` every `ms` until it holds or `tries` run out; returns whether it held. */
async function eventually(check: () => boolean | Promise<boolean>, tries = 100, ms = 20): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, ms));
  }
  return false;
}

/** The committer's store holds everything committed (a read may fail while a writer restarts). */
const caughtUp = (c: { visible(): Promise<void> }): Promise<boolean> => eventually(() => c.visible().then(() => true, () => false), 100, 50);

const recs = new Map<number, PreparedRecord>();
/** Record i, prepared as `append` prepares it (the same object for the same i). */
function rec(i: number): PreparedRecord {
  const hit = recs.get(i);
  if (hit !== undefined) return hit;
  const ts = 1_700_000_000_000 + i;
  const d = buildDraft({ type: 'command', sessionId: 's1', command: { text: `SELECT ${i}` }, outcome: 'success' }, { mask: testMask, node: 'n', ts, id: newUlid(ts), previewRows: 20, previewBytes: 4096 });
  const r = { id: d.id, ts, type: d.type, sessionId: d.session ?? null, subject: null, connection: null, outcome: d.outcome ?? null, ...recordBodyParts(d) };
  recs.set(i, r);
  return r;
}

test('a failed spool write is cut back off, never ingested: its appends are refused, the next ones reuse the seqs, the log verifies', async () => {
  const t = tempConfig();
  try {
    let calls = 0;
    const c = await committerFor(t, {
      write: (fd, b, o, l, p) => {
        calls += 1;
        if (calls === 2) {
          // The first record's whole line and part of the next reach the file before the device
          // fills up. The writer thread polls meanwhile (at least every 500 ms): it must not
          // ingest the whole line it finds there.
          const firstLine = b.indexOf(0x0a, o) + 1 - o;
          assert.ok(firstLine > 0 && firstLine < l);
          writeSync(fd, b, o, firstLine + 10, p);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 700);
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        }
        return writeSync(fd, b, o, l, p);
      },
    });
    assert.deepEqual(await c.commit([rec(1)], { now: 0, force: false }), { firstSeq: 1, lastSeq: 1 });
    await assert.rejects(c.commit([rec(2), rec(3)], { now: 0, force: false }), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE' && /ENOSPC/.test(err.message));
    assert.deepEqual(await c.commit([rec(4)], { now: 0, force: false }), { firstSeq: 2, lastSeq: 2 });
    await c.visible();
    await c.close();
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
    const store = await openAuditStore(t.config, { readonly: true });
    assert.deepEqual((await store.readEvents(0, 10)).map((e) => e.id), [rec(1).id, rec(4).id]);
    await store.close();
  } finally {
    t.cleanup();
  }
});

test('a store that stops taking records makes appends fail once the spool backlog is full', async () => {
  const t = tempConfig();
  try {
    const c = await committerFor(t, { maxBacklog: 5 });
    const other = new Database(join(t.dir, 'data', 'sluice.db'));
    other.exec('BEGIN IMMEDIATE');
    try {
      await c.commit([rec(1), rec(2), rec(3), rec(4), rec(5)], { now: 0, force: false });
      await assert.rejects(c.commit([rec(6)], { now: 0, force: false }), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE' && /behind/.test(err.message));
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await c.visible();
    assert.deepEqual(await c.commit([rec(6)], { now: 0, force: false }), { firstSeq: 6, lastSeq: 6 }, 'accepted again once the store caught up');
    await c.close();
    assert.equal((await verifyConfiguredLog(t.config)).records, 6);
  } finally {
    t.cleanup();
  }
});

test('segments rotate under load, fdatasync groups at synchronous=full, and ingested segments are deleted', async () => {
  const t = tempConfig();
  try {
    const c = await committerFor(t, { segmentBytes: 4096, synchronous: 'full' });
    const dir = spoolDirFor(join(t.dir, 'data', 'sluice.db'));
    let next = 1;
    const segments = new Set<string>();
    for (let round = 0; round < 20; round++) {
      // Several commits outstanding at once: they share fdatasync calls and still resolve in order.
      const batch = await Promise.all([0, 1, 2].map(() => c.commit([rec(next++), rec(next++)], { now: 0, force: false })));
      assert.deepEqual(batch.map((o) => o?.lastSeq), [next - 5, next - 3, next - 1]);
      for (const f of readdirSync(dir)) if (f.endsWith('.spool')) segments.add(f);
    }
    assert.ok(segments.size > 3, `rotated into ${segments.size} segments`);
    await c.visible();
    // The writer deletes what it ingested right after reporting it; only the open segment stays.
    let left: string[] = [];
    await eventually(() => (left = readdirSync(dir).filter((f) => f.endsWith('.spool'))).length <= 1, 50);
    assert.ok(left.length <= 1, `ingested segments are deleted (left: ${left.join(', ')})`);
    const cp = await c.commit([], { now: 0, force: true });
    assert.equal(cp?.checkpoint?.size, 120);
    await c.close();
    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true);
    assert.equal(report.records, 120);
  } finally {
    t.cleanup();
  }
});

test('a segment rotated while its fdatasync is in flight stays open until that call returns (it failed with EBADF under load)', async () => {
  const t = tempConfig();
  try {
    // A slow disk: every fdatasync takes 30 ms, so commits rotate segments under one in flight.
    // The call must still reach the file it was asked for: a descriptor closed meanwhile fails
    // (EBADF), and one reused by the next segment would sync the wrong file.
    const slow = (fd: number, done: (err: NodeJS.ErrnoException | null) => void): void => {
      const file = fstatSync(fd).ino;
      setTimeout(() => {
        let now = -1;
        try {
          now = fstatSync(fd).ino;
        } catch {
          // closed
        }
        if (now === file) fdatasync(fd, done);
        else done(Object.assign(new Error('EBADF: descriptor closed or reused under fdatasync'), { code: 'EBADF' }));
      }, 30);
    };
    const c = await committerFor(t, { segmentBytes: 1024, synchronous: 'full', fdatasync: slow });
    let next = 1;
    const commits: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      commits.push(c.commit([rec(next++), rec(next++)], { now: 0, force: false }));
      await new Promise((r) => setImmediate(r));
    }
    const settled = await Promise.allSettled(commits);
    assert.deepEqual(settled.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
    await c.close();
    assert.equal((await verifyConfiguredLog(t.config)).records, 80);
  } finally {
    t.cleanup();
  }
});

test('past the soft backlog a commit is spooled but waits for the writer thread (backpressure, not refusal)', async () => {
  const t = tempConfig();
  try {
    const c = await committerFor(t, { softBacklog: 2 });
    const other = new Database(join(t.dir, 'data', 'sluice.db'));
    other.exec('BEGIN IMMEDIATE');
    let settled = false;
    const slow = c.commit([rec(1), rec(2), rec(3)], { now: 0, force: false }).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(settled, false, 'held while the store cannot take records');
    other.exec('ROLLBACK');
    other.close();
    // The writer retries with backoff; once it ingested, the commit resolves.
    assert.deepEqual(await slow, { firstSeq: 1, lastSeq: 3 });
    await c.visible();
    await c.close();
    assert.equal((await verifyConfiguredLog(t.config)).records, 3);
  } finally {
    t.cleanup();
  }
});

test('a writer thread that dies is replaced: appends go on and the new writer ingests everything', async () => {
  const t = tempConfig();
  try {
    const lines: string[] = [];
    const c = await committerFor(t, { log: (l) => lines.push(l) });
    assert.deepEqual(await c.commit([rec(1), rec(2)], { now: 0, force: false }), { firstSeq: 1, lastSeq: 2 });
    await c.visible();
    await c.terminateWriter();
    // Appends never waited on the writer; they keep being acknowledged from the spool.
    assert.deepEqual(await c.commit([rec(3)], { now: 0, force: false }), { firstSeq: 3, lastSeq: 3 });
    // A read made while the old writer was going away fails; a later one succeeds.
    assert.equal(await caughtUp(c), true, 'the new writer caught up');
    assert.ok(lines.some((l) => /writer thread stopped .*starting a new one/.test(l)), lines.join('\n'));
    await c.close();
    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true);
    assert.equal(report.records, 3);
  } finally {
    t.cleanup();
  }
});

test('an ingest that fails after committing its first transactions resumes from the store, not from the start', async () => {
  const t = tempConfig();
  try {
    const c = await committerFor(t);
    const db = new Database(join(t.dir, 'data', 'sluice.db'));
    // Fail the insert of record 2500 while a flag is set: the second 2000-row transaction fails
    // after the first one committed.
    db.exec("INSERT INTO audit_meta (key, value) VALUES ('test_fail', '1')");
    db.exec("CREATE TRIGGER test_fail_once BEFORE INSERT ON audit_events WHEN NEW.seq = 2500 AND (SELECT value FROM audit_meta WHERE key = 'test_fail') = '1' BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    // Hold the store while 3000 records are spooled, and until the writer's retries (backoff at
    // most 1 s) have read them all, so its next attempt takes them in one go.
    db.exec('BEGIN IMMEDIATE');
    for (let i = 1; i <= 3000; i += 100) await c.commit(Array.from({ length: 100 }, (_, k) => rec(i + k)), { now: 0, force: false });
    await new Promise((r) => setTimeout(r, 1500));
    db.exec('ROLLBACK');
    await eventually(() => (db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n >= 2000, 150);
    assert.equal((db.prepare('SELECT MAX(seq) AS m FROM audit_events').get() as { m: number }).m, 2000, 'the first transaction committed, the second failed');
    db.exec("UPDATE audit_meta SET value = '0' WHERE key = 'test_fail'");
    db.close();
    assert.equal(await caughtUp(c), true, 'the writer resumed at record 2001');
    await c.close();
    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.equal(report.records, 3000);
  } finally {
    t.cleanup();
  }
});
