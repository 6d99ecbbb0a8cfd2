import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { createReceipt, loadVerifiers, openAuditLog, parseRecord, verifyConfiguredLog, verifyReceipt, type AuditReceipt } from '../../src/audit/index.js';
import { encodeVerifierKey, generateSigner, parseVerifierKey, type NoteVerifier } from '../../src/audit/signed-note.js';
import { tempConfig, testMask } from './helpers.js';

const DAY = 86_400_000;

test('retention removes whole sealed segments only, keeps their hashes, and verify still passes', async () => {
  const t = tempConfig('{ checkpointEvery: 5, retention: 30d }');
  try {
    let now = Date.UTC(2026, 0, 1);
    const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
    for (let i = 1; i <= 12; i++) {
      await log.append({ type: 'command', command: { text: `SELECT ${i}` } });
      now += DAY; // record i is written on day i
    }
    // Record i is stamped on day i-1. On day 40 the cutoff is day 10: records 1..10 are older.
    // Segments are 1..5, 6..10 and 11..12 (sealed by retention's checkpoint); record 11 is day 10.
    now = Date.UTC(2026, 0, 1) + 40 * DAY;
    const result = await log.applyRetention();
    assert.deepEqual(result, { segments: 2, records: 10, throughSeq: 10 });
    const rows = await log.store.readEvents(0, 100);
    assert.equal(rows[0]?.seq, 11);
    const last = parseRecord(rows[rows.length - 1]!.body);
    assert.equal(last.type, 'audit.retention', 'retention is itself audited');
    await log.close();

    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.equal(report.pruned, 10);

    // Retention did not open a general hole: the triggers still refuse deleting retained records.
    const db = new Database(join(t.dir, 'data', 'sluice.db'));
    assert.throws(() => db.prepare('DELETE FROM audit_events WHERE seq = 11').run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit_pruned').run(), /append-only/);
    db.close();
  } finally {
    t.cleanup();
  }
});

test('retention never splits a segment: a partly-young segment stays whole', async () => {
  const t = tempConfig('{ checkpointEvery: 5, retention: 1d }');
  try {
    let now = 1_000_000_000_000;
    const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
    for (let i = 1; i <= 5; i++) await log.append({ type: 'command', command: { text: `old ${i}` } });
    for (let i = 1; i <= 4; i++) await log.append({ type: 'command', command: { text: `old ${i}` } });
    now += 2 * DAY;
    await log.append({ type: 'command', command: { text: 'young' } }); // seq 10 seals 6..10 with a young record
    const r = await log.applyRetention();
    assert.equal(r.throughSeq, 5);
    await log.close();
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
  } finally {
    t.cleanup();
  }
});

test('a receipt proves one record offline, also after retention; any change breaks it', async () => {
  const t = tempConfig('{ checkpointEvery: 4, retention: 1d }');
  try {
    let now = 1_000_000_000_000;
    const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
    const ids: string[] = [];
    for (let i = 1; i <= 11; i++) ids.push((await log.append({ type: 'command', command: { text: `SELECT ${i}` } })).id);
    now += 2 * DAY;
    await log.applyRetention(); // prunes 1..11 sealed segments
    const kept = (await log.append({ type: 'command', command: { text: 'SELECT kept' } })).id;
    await log.checkpoint();
    const receipt = await createReceipt(log.store, kept);
    await log.close();

    const verifier = loadVerifiers(join(t.dir, 'data', 'audit-signing.key'))[0] as NoteVerifier;
    const ok = verifyReceipt(JSON.parse(JSON.stringify(receipt)), [verifier]);
    assert.equal(ok.record.command?.text, 'SELECT kept');
    assert.ok(receipt.leafIndex >= 11);

    const edited: AuditReceipt = { ...receipt, record: receipt.record.replace('SELECT kept', 'SELECT else') };
    assert.throws(() => verifyReceipt(edited, [verifier]), /inclusion proof/);
    const badProof: AuditReceipt = { ...receipt, proof: receipt.proof.map((p, i) => (i === 0 ? Buffer.alloc(32).toString('base64') : p)) };
    assert.throws(() => verifyReceipt(badProof, [verifier]), /inclusion proof/);
    const otherKey = parseVerifierKey(encodeVerifierKey(generateSigner(verifier.name)));
    assert.throws(() => verifyReceipt(receipt, [otherKey]), /checkpoint/);
    assert.throws(() => verifyReceipt({ ...receipt, leafIndex: receipt.leafIndex - 1 }, [verifier]), /leaf index|inclusion/);
  } finally {
    t.cleanup();
  }
});
