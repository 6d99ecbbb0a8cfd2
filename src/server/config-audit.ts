/**
 * AU-2 "configuration loads and changes": every start records `config.load` with a fingerprint of
 * the validated configuration (SHA-256 of its RFC 8785 form, whole and per top-level section;
 * secret references are hashed as written, never resolved values). When the previous
 * `config.load` in the log carries a different fingerprint, a `config.change` record names the
 * sections that changed, so an auditor sees a policy edit between two runs without diffing files.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.js';
import { parseRecord } from '../audit/event.js';
import type { AuditStore } from '../audit/store/types.js';
import type { SluiceConfig } from '../config/load-config.js';
import type { Pipeline } from '../pipeline/pipeline.js';

export interface ConfigFingerprint {
  readonly hash: string;
  readonly sections: Readonly<Record<string, string>>;
}

const sha = (v: unknown): string => `sha256:${createHash('sha256').update(canonicalJson(v ?? null)).digest('hex')}`;

export function configFingerprint(config: SluiceConfig): ConfigFingerprint {
  const raw = config.raw as Record<string, unknown>;
  const sections: Record<string, string> = {};
  for (const key of Object.keys(raw).sort()) if (raw[key] !== undefined) sections[key] = sha(raw[key]);
  return { hash: sha(raw), sections };
}

function previousFingerprint(body: string): { hash: string; sections: Record<string, string>; policyVersion?: string } | undefined {
  const d = parseRecord(body).details as Record<string, unknown> | undefined;
  if (d === undefined || typeof d.configHash !== 'string') return undefined;
  const sections = typeof d.sections === 'object' && d.sections !== null ? (d.sections as Record<string, string>) : {};
  return { hash: d.configHash, sections, ...(typeof d.policyVersion === 'string' ? { policyVersion: d.policyVersion } : {}) };
}

export async function recordConfigLoad(pipeline: Pipeline, store: AuditStore, config: SluiceConfig, policyVersion: string): Promise<void> {
  const now = configFingerprint(config);
  const last = await store.lastOfType('config.load');
  await pipeline.record({ type: 'config.load', details: { path: config.path, policyVersion, configHash: now.hash, sections: now.sections } });
  const before = last === undefined ? undefined : previousFingerprint(last.body);
  if (before === undefined || before.hash === now.hash) return;
  const changed = changedSections(before, now);
  await pipeline.record({
    type: 'config.change',
    outcome: 'success',
    details: {
      path: config.path,
      from: before.hash,
      to: now.hash,
      changed,
      ...(before.policyVersion !== undefined && before.policyVersion !== policyVersion ? { policyVersion: { from: before.policyVersion, to: policyVersion } } : {}),
      sinceRecord: last?.seq,
    },
  });
}

/** Top-level sections whose fingerprints differ between two fingerprints. */
export function changedSections(before: ConfigFingerprint, after: ConfigFingerprint): string[] {
  const names = [...new Set([...Object.keys(before.sections), ...Object.keys(after.sections)])].sort();
  return names.filter((k) => before.sections[k] !== after.sections[k]);
}
