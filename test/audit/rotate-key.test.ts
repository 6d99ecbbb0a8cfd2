/**
 * Signing-key rotation: a key.rotate record sealed by the old key, the new key signing from then
 * on, the keyring keeping old checkpoints verifiable, and no rotation while a writer runs.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openAuditLog, openAuditStore, parseRecord, rotateSigningKey, verifyConfiguredLog } from '../../src/audit/index.js';
import { openNote, parseVerifierKey } from '../../src/audit/signed-note.js';
import { run as auditRun } from '../../src/cli/commands/audit.js';
import { captureIo, session, tempConfig, testMask } from './helpers.js';

test('rotate-key: the old key seals key.rotate, the new key signs after it, and the whole log still verifies', async () => {
  const t = tempConfig('{ checkpointEvery: 3 }');
  try {
    const keyPath = join(t.dir, 'data', 'audit-signing.key');
    let log = await openAuditLog(t.config, { mask: testMask });
    for (let i = 0; i < 4; i++) await log.append({ type: 'command', session: session(), command: { text: `SELECT ${i}` } });
    await log.close();
    const oldPrivate = readFileSync(keyPath, 'utf8');
    const [oldVerifier] = readFileSync(`${keyPath}.pub`, 'utf8').trim().split('\n').map(parseVerifierKey);

    const io = captureIo();
    assert.equal(await auditRun(['rotate-key', '--config', t.path], io), 0);
    assert.match(io.out(), /rotated the audit signing key: .* → .*; key\.rotate is record 5, sealed by the old key in the checkpoint of size 5/);

    // The new private key replaced the old one (0600); the keyring holds both verifiers.
    assert.notEqual(readFileSync(keyPath, 'utf8'), oldPrivate);
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    const ring = readFileSync(`${keyPath}.pub`, 'utf8').trim().split('\n').map(parseVerifierKey);
    assert.equal(ring.length, 2);
    const newVerifier = ring[1] as (typeof ring)[number];
    assert.notEqual(newVerifier.keyId, oldVerifier?.keyId);

    log = await openAuditLog(t.config, { mask: testMask });
    for (let i = 0; i < 4; i++) await log.append({ type: 'command', session: session(), command: { text: `SELECT after ${i}` } });
    await log.close();

    const store = await openAuditStore(t.config, { readonly: true });
    const events = await store.readEvents(0, 100);
    const rotate = parseRecord((events[4] as (typeof events)[number]).body);
    assert.equal(rotate.type, 'key.rotate');
    assert.deepEqual({ ...rotate.details, newVerifier: undefined }, { key: 'audit-signing', name: oldVerifier?.name, oldKeyId: oldVerifier?.keyId, newKeyId: newVerifier.keyId, newVerifier: undefined });
    // PRIVATE+KEY+<name>+<hash>+<base64>: the base64 may itself hold '+', so take everything after the hash.
    const material = oldPrivate.trim().split('+').slice(4).join('+');
    assert.ok(material.length >= 40, material);
    assert.ok(!JSON.stringify(rotate).includes(material), 'no private key material in the record');
    // Checkpoints up to the rotation are signed by the old key, later ones by the new key.
    for (const cp of await store.readCheckpoints()) {
      const signer = cp.size <= 5 ? oldVerifier : newVerifier;
      assert.doesNotThrow(() => openNote(cp.note, [signer as (typeof ring)[number]]), `checkpoint ${cp.size} signed by the ${cp.size <= 5 ? 'old' : 'new'} key`);
    }
    await store.close();

    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.equal(report.records, 9);
    // Without the old verifier, the checkpoints it signed cannot be checked.
    const onlyNew = await verifyConfiguredLog(t.config, { verifierKey: readFileSync(`${keyPath}.pub`, 'utf8').trim().split('\n')[1] as string });
    assert.equal(onlyNew.ok, false);
  } finally {
    t.cleanup();
  }
});

test('rotate-key is refused while a gateway writes the log', async () => {
  const t = tempConfig();
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    await log.append({ type: 'gateway.start' });
    await assert.rejects(rotateSigningKey(t.config), /stop the gateway before rotating its signing key/);
    await log.close();
    assert.equal((await rotateSigningKey(t.config)).seq, 2);
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
  } finally {
    t.cleanup();
  }
});
