/**
 * Rotate the checkpoint signing key (AU-9(3)-style key hygiene, and the `key.rotate` event of the
 * catalog). Done by the log's one writer, so the gateway must be stopped (its writer lock says so):
 *
 * 1. append `key.rotate` naming the old and new key (ids and the new verifier key, no secret);
 * 2. sign a checkpoint over it with the **old** key, so the old key vouches for the new one;
 * 3. install the new private key (0600, atomically) and add its verifier to the `.pub` keyring.
 *
 * Every later checkpoint is signed by the new key; `verify` accepts any key of the keyring, so
 * checkpoints signed before the rotation keep verifying.
 */
import type { SluiceConfig } from '../config/load-config.js';
import { SluiceError } from '../errors.js';
import { openAuditLog } from './audit-log.js';
import { resolveAuditSettings } from './open-store.js';
import { encodeVerifierKey, generateSigner, type NoteVerifier } from './signed-note.js';
import { installSigningKey, loadSigningKey } from './signing-key.js';
import { WriterLockHeld } from './commit/spool.js';

export interface KeyRotation {
  readonly old: NoteVerifier;
  readonly next: NoteVerifier;
  /** seq of the `key.rotate` record. */
  readonly seq: number;
  /** Size of the checkpoint the old key signed over it. */
  readonly sealedSize: number;
}

export async function rotateSigningKey(config: SluiceConfig, options: { readonly clock?: () => number } = {}): Promise<KeyRotation> {
  const settings = resolveAuditSettings(config);
  const log = await openAuditLog(config, { mask: (s) => s, writer: 'inline', ...(options.clock !== undefined ? { clock: options.clock } : {}) }).catch((err: unknown) => {
    if (err instanceof WriterLockHeld) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `stop the gateway before rotating its signing key (${err.holder})`);
    throw err;
  });
  try {
    const old = loadSigningKey(settings.signingKeyPath);
    const next = generateSigner(old.name);
    const { seq } = await log.append({
      type: 'key.rotate',
      outcome: 'success',
      details: { key: 'audit-signing', name: old.name, oldKeyId: old.keyId, newKeyId: next.keyId, newVerifier: encodeVerifierKey(next) },
    });
    const sealed = await log.checkpoint();
    if (sealed === null || sealed.size < seq) throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'the old key could not seal the key.rotate record; the key was not rotated');
    installSigningKey(settings.signingKeyPath, next);
    return { old: { name: old.name, keyId: old.keyId, publicKey: old.publicKey }, next: { name: next.name, keyId: next.keyId, publicKey: next.publicKey }, seq, sealedSize: sealed.size };
  } finally {
    // Nothing new to seal: close signs no checkpoint, so no signature of the old key follows the new one.
    await log.close();
  }
}
