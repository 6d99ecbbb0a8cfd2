/**
 * Reading long sessions (src/audit/query.ts): a timeline read is capped by the store, its figures
 * are counted over the whole session, and replay pages through any number of records. Before,
 * every record of the session was loaded and parsed for one capped API answer, and a session of
 * ~150,000 records failed outright (a spread of every timestamp into Math.max).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { getSessionTimeline, openAuditLog, openAuditStore, sessionRecords } from '../../src/audit/index.js';
import type { AuditStore, SessionStat, StoredEvent } from '../../src/audit/store/types.js';
import { run as replayRun } from '../../src/cli/commands/replay.js';
import { captureIo, recordScenario, session, tempConfig, testMask } from './helpers.js';

test('a capped timeline reads only what it answers, and counts the whole session', async () => {
  const t = tempConfig();
  try {
    let now = Date.UTC(2026, 10, 3, 9, 0, 0);
    const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
    await recordScenario(log, (ms) => (now += ms));
    // 2,500 more statements in the same session, after its end record's place in the scenario.
    const s = session('sess-long');
    await log.append({ type: 'auth.success', session: s, outcome: 'success' });
    await log.append({ type: 'session.start', session: s, outcome: 'success' });
    for (let i = 0; i < 2500; i++) {
      now += 1;
      await log.append({ type: 'command', session: s, command: { text: `SELECT ${i}`, kind: 'select', verb: 'select' }, decision: { effect: 'allow', rule: 'r#1', reason: 'ok' }, policyVersion: 'p-1', outcome: i % 100 === 0 ? 'denied' : 'success' });
    }
    await log.append({ type: 'session.end', session: s, outcome: 'success', details: { reason: 'idle' } });
    await log.close();

    const store = await openAuditStore(t.config, { readonly: true });
    try {
      const capped = await getSessionTimeline(store, 'sess-long', 100);
      assert.ok(capped !== undefined);
      assert.equal(capped.events.length, 100);
      assert.equal(capped.total, 2503);
      assert.equal(capped.truncated, true);
      assert.equal(capped.events[0]?.type, 'auth.success');
      assert.equal(capped.session.startedAt, capped.events[1]?.ts, 'started at its session.start record');
      assert.deepEqual([capped.session.commands, capped.session.denied, capped.session.endReason], [2500, 25, 'idle'], 'figures over the whole session');
      assert.equal(capped.session.lastEventAt, now);

      const whole = await getSessionTimeline(store, 'sess-long');
      assert.deepEqual([whole?.events.length, whole?.total, whole?.truncated], [2503, 2503, false]);
      const one = await getSessionTimeline(store, 'sess-1', 1);
      assert.deepEqual([one?.events.length, one?.session.commands, one?.session.subject], [1, 3, 'repo:acme/app:ref:refs/heads/main'], 'a one-record read still finds session.start for the summary');
      assert.equal(await getSessionTimeline(store, 'nope', 10), undefined);

      // Paged reads: in order, every record once, whatever the page size.
      for (const page of [1, 7, 1000, 5000]) {
        const seqs: number[] = [];
        for await (const r of sessionRecords(store, 'sess-long', page)) seqs.push(r.seq);
        assert.equal(seqs.length, 2503, `page ${page}`);
        assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!), `page ${page}: in log order`);
      }
      assert.equal((await store.sessionEvents('sess-long', 0, 10)).length, 10);
      const after = await store.sessionEvents('sess-long', 0, 3);
      assert.deepEqual((await store.sessionEvents('sess-long', after[2]!.seq, 2)).map((e) => e.seq), [after[2]!.seq + 1, after[2]!.seq + 2]);
    } finally {
      await store.close();
    }

    // Replay pages through the whole session too: every statement is printed.
    const io = captureIo();
    assert.equal(await replayRun(['sess-long', '--speed', '0', '--config', t.path], io), 0);
    assert.match(io.out(), /summary {4}2500 commands, 25 denied/);
    assert.equal(io.out().match(/SELECT \d+/g)?.length, 2500);
    assert.match(io.out(), /SELECT 2499/);
  } finally {
    t.cleanup();
  }
});

test('a session of 300,000 records: a capped read answers without loading them', async () => {
  const N = 300_000;
  const body = (seq: number, type: string): string => JSON.stringify({ seq, id: `e${seq}`, ts: 1_767_225_600_000 + seq, type, prev: '', session: 'big' });
  const row = (seq: number): StoredEvent => {
    const type = seq === 1 ? 'session.start' : 'command';
    return { seq, id: `e${seq}`, ts: 1_767_225_600_000 + seq, type, sessionId: 'big', subject: null, connection: null, outcome: 'success', body: body(seq, type), hash: Buffer.alloc(32) };
  };
  let rowsRead = 0;
  const store = {
    async sessionEvents(_id: string, afterSeq = 0, limit = Number.MAX_SAFE_INTEGER) {
      const out: StoredEvent[] = [];
      for (let seq = afterSeq + 1; seq <= N && out.length < limit; seq++) out.push(row(seq));
      rowsRead += out.length;
      return out;
    },
    async sessionStats(): Promise<SessionStat[]> {
      return [
        { sessionId: 'big', type: 'session.start', outcome: 'success', count: 1, lastTs: 1_767_225_600_001 },
        { sessionId: 'big', type: 'command', outcome: 'success', count: N - 1, lastTs: 1_767_225_600_000 + N },
      ];
    },
    async sessionEnds() {
      return [];
    },
  } as unknown as AuditStore;
  const t = await getSessionTimeline(store, 'big', 20_000);
  assert.ok(t !== undefined);
  assert.deepEqual([t.events.length, t.total, t.truncated, t.session.commands, t.session.lastEventAt], [20_000, N, true, N - 1, 1_767_225_600_000 + N]);
  assert.equal(rowsRead, 20_000, 'only the answered records were read');
});
