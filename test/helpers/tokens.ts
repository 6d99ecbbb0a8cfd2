/**
 * Short-lived local tokens for tests of what happens at a token's expiry. A token's `exp` is in
 * whole seconds (its `iat` plus the TTL's seconds), so one minted late in a second lives up to a
 * second less than asked: minting just after a second starts makes the lifetime what was asked.
 */
import type { SluiceConfig } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';

export async function mintShortToken(config: SluiceConfig, role: string, subject: string, seconds: number): Promise<{ token: string; expiresAt: number }> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 10));
  const token = await mintLocalToken(config, { role, subject, ttlMs: seconds * 1000 });
  const exp = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp;
  return { token, expiresAt: exp * 1000 };
}
