/**
 * An attacker with write access to the database file (but not the signing key) edits, deletes,
 * inserts, reorders or truncates records. The triggers are dropped first, as such an attacker
 * would; `verify` must still notice and name the first bad record.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { openAuditLog, parseRecord, verifyConfiguredLog, type VerifyReport } from '../../src/audit/index.js';
import { hashLeaf } from '../../src/audit/merkle.js';
import { formatCheckpoint, generateSigner, signNote } from '../../src/audit/signed-note.js';
import { session, steppingClock, tempConfig, testMask, type TempConfig } from './helpers.js';

async function writeLog(n = 20): Promise<TempConfig> {
  const t = tempConfig('{ checkpointEvery: 5 }');
  const log = await openAuditLog(t.config, { mask: testMask, clock: steppingClock() });
  await log.append({ type: 'session.start', session: session() });
  for (let i = 2; i <= n; i++) {
    await log.append({ type: 'command', session: session(), command: { text: `SELECT ${i}` }, decision: { effect: 'allow', rule: 'r#1' }, outcome: 'success' });
  }
  await log.close();
  return t;
}

function attacker(t: TempConfig): Database.Database {
  const db = new Database(join(t.dir, 'data', 'sluice.db'));
  for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as { name: string }[]) db.exec(`DROP TRIGGER ${name}`);
  return db;
}

function bodyOf(db: Database.Database, seq: number): string {
  return (db.prepare('SELECT body FROM audit_events WHERE seq = ?').get(seq) as { body: string }).body;
}

async function tampered(mutate: (db: Database.Database) => void): Promise<VerifyReport> {
  const t = await writeLog();
  try {
    assert.equal((await verifyConfiguredLog(t.config)).ok, true, 'intact before tampering');
    const db = attacker(t);
    mutate(db);
    db.close();
    return await verifyConfiguredLog(t.config);
  } finally {
    t.cleanup();
  }
}

test('intact log verifies', async () => {
  const t = await writeLog();
  try {
    const r = await verifyConfiguredLog(t.config);
    assert.equal(r.ok, true);
    assert.equal(r.records, 20);
    assert.equal(r.checkpoints, 4);
    assert.equal(r.latestCheckpoint?.size, 20);
  } finally {
    t.cleanup();
  }
});

test('the store rejects UPDATE and DELETE of records and checkpoints (triggers)', async () => {
  const t = await writeLog(6);
  try {
    const db = new Database(join(t.dir, 'data', 'sluice.db'));
    assert.throws(() => db.prepare("UPDATE audit_events SET body = 'x' WHERE seq = 2").run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit_events WHERE seq = 2').run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit_events').run(), /append-only/);
    assert.throws(() => db.prepare('UPDATE audit_checkpoints SET note = note').run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit_checkpoints').run(), /append-only/);
    db.close();
  } finally {
    t.cleanup();
  }
});

test('edit: a record changed in place is named', async () => {
  const r = await tampered((db) => db.prepare("UPDATE audit_events SET body = replace(body, 'SELECT 8', 'SELECT 9') WHERE seq = 8").run());
  assert.equal(r.ok, false);
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.seq, 8);
});

test('edit with a recomputed hash is named through the next record\'s link', async () => {
  const r = await tampered((db) => {
    const body = bodyOf(db, 8).replace('SELECT 8', 'DROP TABLE x');
    db.prepare('UPDATE audit_events SET body = ?, hash = ? WHERE seq = 8').run(body, hashLeaf(body));
  });
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.seq, 8);
});

test('edit with the whole chain recomputed is caught by the signed checkpoint', async () => {
  const r = await tampered((db) => {
    let prev = (db.prepare('SELECT hash FROM audit_events WHERE seq = 7').get() as { hash: Buffer }).hash;
    for (let seq = 8; seq <= 20; seq++) {
      const rec = { ...parseRecord(bodyOf(db, seq)), prev: prev.toString('hex') };
      const body = canonicalJson(seq === 8 ? { ...rec, command: { text: 'SELECT nothing to see' } } : rec);
      prev = hashLeaf(body);
      db.prepare('UPDATE audit_events SET body = ?, hash = ? WHERE seq = ?').run(body, prev, seq);
    }
  });
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.seq, 6, 'first record of the checkpoint range 6..10');
  assert.match(r.problem?.message ?? '', /6\.\.10/);
});

test('delete: a removed record is named', async () => {
  const r = await tampered((db) => db.prepare('DELETE FROM audit_events WHERE seq = 8').run());
  assert.equal(r.problem?.kind, 'deleted');
  assert.equal(r.problem?.seq, 8);
});

test('delete with later records renumbered is named', async () => {
  const r = await tampered((db) => {
    db.prepare('DELETE FROM audit_events WHERE seq = 8').run();
    db.prepare('UPDATE audit_events SET seq = seq - 1 WHERE seq > 8').run();
  });
  assert.equal(r.problem?.kind, 'deleted');
  assert.equal(r.problem?.seq, 8);
});

test('insert: a forged record slipped into the chain is named', async () => {
  const r = await tampered((db) => {
    db.prepare('UPDATE audit_events SET seq = seq + 1000000 WHERE seq > 8').run();
    db.prepare('UPDATE audit_events SET seq = seq - 999999 WHERE seq > 1000000').run();
    const prev = (db.prepare('SELECT hash FROM audit_events WHERE seq = 8').get() as { hash: Buffer }).hash;
    const forged = { ...parseRecord(bodyOf(db, 8)), seq: 9, id: '01FORGEDFORGEDFORGEDFORGED', prev: prev.toString('hex'), command: { text: 'SELECT harmless' } };
    const body = canonicalJson(forged);
    db.prepare('INSERT INTO audit_events (seq, id, ts, type, session_id, subject, connection, outcome, body, hash) VALUES (9, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      forged.id, forged.ts, forged.type, forged.session ?? null, forged.identity?.subject ?? null, forged.connection ?? null, forged.outcome ?? null, body, hashLeaf(body),
    );
  });
  assert.equal(r.problem?.kind, 'inserted');
  assert.equal(r.problem?.seq, 9);
});

test('reorder: two swapped records are named', async () => {
  const r = await tampered((db) => {
    db.prepare('UPDATE audit_events SET seq = -1 WHERE seq = 8').run();
    db.prepare('UPDATE audit_events SET seq = 8 WHERE seq = 9').run();
    db.prepare('UPDATE audit_events SET seq = 9 WHERE seq = -1').run();
  });
  assert.equal(r.problem?.kind, 'reordered');
  assert.equal(r.problem?.seq, 8);
});

test('truncate: records removed from the end are named against the latest checkpoint', async () => {
  const r = await tampered((db) => db.prepare('DELETE FROM audit_events WHERE seq >= 15').run());
  assert.equal(r.problem?.kind, 'truncated');
  assert.equal(r.problem?.seq, 15);
});

test('truncate together with the checkpoints is caught by the witness beside the key', async () => {
  const r = await tampered((db) => {
    db.prepare('DELETE FROM audit_events WHERE seq >= 15').run();
    db.prepare('DELETE FROM audit_checkpoints WHERE size >= 15').run();
    db.prepare('UPDATE audit_head SET size = 14').run();
  });
  assert.equal(r.problem?.kind, 'truncated');
  assert.equal(r.problem?.seq, 15);
});

test('a checkpoint signed by another key is rejected', async () => {
  const r = await tampered((db) => {
    const origin = (db.prepare("SELECT value FROM audit_meta WHERE key = 'origin'").get() as { value: string }).value;
    const root = hashLeaf('forged root');
    const note = signNote(formatCheckpoint({ origin, size: 21, root, extensions: [] }), generateSigner('sluice-audit-test-node'));
    db.prepare('INSERT INTO audit_checkpoints (size, ts, root, note) VALUES (21, 0, ?, ?)').run(root, note);
  });
  assert.equal(r.problem?.kind, 'checkpoint');
  assert.equal(r.problem?.seq, 21);
});

test('an index column edited to hide a record from queries is named', async () => {
  const r = await tampered((db) => db.prepare("UPDATE audit_events SET subject = 'someone-else' WHERE seq = 4").run());
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.seq, 4);
});
