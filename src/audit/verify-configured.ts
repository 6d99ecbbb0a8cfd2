/**
 * `sluice audit verify` for a config: open the store read-only, take the verifier keys from
 * `--key` or the keyring beside the signing key, and the witness checkpoint if one was written.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { SluiceConfig } from '../config/load-config.js';
import { openAuditStore, resolveAuditSettings } from './open-store.js';
import { loadVerifiers, witnessPath } from './signing-key.js';
import { verifyAuditLog, type VerifyReport } from './verify.js';

export async function verifyConfiguredLog(config: SluiceConfig, options: { readonly verifierKey?: string } = {}): Promise<VerifyReport> {
  const settings = resolveAuditSettings(config);
  const verifiers = loadVerifiers(settings.signingKeyPath, options.verifierKey);
  const wp = witnessPath(settings.signingKeyPath);
  const witness = existsSync(wp) ? readFileSync(wp, 'utf8') : undefined;
  const store = await openAuditStore(config, { readonly: true });
  try {
    return await verifyAuditLog(store, { verifiers, ...(witness !== undefined ? { witness } : {}) });
  } finally {
    await store.close();
  }
}
