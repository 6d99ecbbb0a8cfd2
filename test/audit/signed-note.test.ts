import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  computeKeyId,
  encodeSignerKey,
  encodeVerifierKey,
  formatCheckpoint,
  generateSigner,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from '../../src/audit/signed-note.js';
import { hashLeaf } from '../../src/audit/merkle.js';

test('Go sumdb/note vector: verifier key and signature from golang.org/x/mod/sumdb/note', () => {
  // note_test.go TestOpen: the "PeterNeumann" verifier key and the note it signed.
  const vkey = parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
  assert.equal(vkey.keyId, 0xc74f20a3);
  assert.equal(computeKeyId('PeterNeumann', vkey.publicKey), 0xc74f20a3);
  const note =
    'If you think cryptography is the answer to your problem,\n' +
    'then you don\'t know what your problem is.\n' +
    '\n' +
    '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
  const opened = openNote(note, [vkey]);
  assert.deepEqual(opened.verifiedBy, ['PeterNeumann']);
  assert.throws(() => openNote(note.replace('problem,', 'problem;'), [vkey]), /invalid signature/);
});

test('sign, open and round-trip keys and checkpoints', () => {
  const signer = generateSigner('sluice-audit-test');
  const again = parseSignerKey(encodeSignerKey(signer));
  assert.equal(again.keyId, signer.keyId);
  const verifier = parseVerifierKey(encodeVerifierKey(signer));
  const root = hashLeaf('x');
  const body = formatCheckpoint({ origin: 'sluice.local/audit/abc', size: 42, root, extensions: [] });
  assert.equal(body, `sluice.local/audit/abc\n42\n${root.toString('base64')}\n`);
  const note = signNote(body, again);
  assert.match(note, /\n\n\u2014 sluice-audit-test [A-Za-z0-9+/]+=*\n$/);
  // 4-byte key id + 64-byte Ed25519 signature
  assert.equal(Buffer.from(note.trim().split(' ').pop()!, 'base64').length, 68);
  const cp = parseCheckpoint(openNote(note, [verifier]).text);
  assert.equal(cp.size, 42);
  assert.ok(cp.root.equals(root));
  const other = parseVerifierKey(encodeVerifierKey(generateSigner('sluice-audit-test')));
  assert.throws(() => openNote(note, [other]), /no signature from a known key|invalid signature/);
  assert.throws(() => openNote(note.replace('\n42\n', '\n43\n'), [verifier]), /invalid signature/);
  assert.throws(() => parseCheckpoint('origin\n042\nAAAA\n'), /tree size/);
  assert.throws(() => parseVerifierKey('name+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), /id does not match/);
});
