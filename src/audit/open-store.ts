/**
 * Choose the store named by `store:` in sluice.yaml and resolve the audit settings once, so a
 * misconfiguration throws at startup rather than on the first query.
 */
import { join } from 'node:path';
import { SluiceError } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import type { SluiceConfig } from '../config/load-config.js';
import { openPostgresStore } from './store/postgres-store.js';
import { openSqliteStore } from './store/sqlite-store.js';
import type { AuditStore } from './store/types.js';
import { recoverAbandonedSpool } from './commit/spool.js';

export interface AuditSettings {
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly signingKeyPath: string;
  readonly previewRows: number;
  readonly previewBytes: number;
  readonly commitWindowMs: number;
  readonly retentionMs: number | undefined;
  readonly synchronous: 'normal' | 'full';
  readonly origin: string | undefined;
}

export const AUDIT_DEFAULTS = {
  checkpointEvery: 1000,
  checkpointIntervalMs: 60_000,
  previewRows: 20,
  previewBytes: 4096,
  commitWindowMs: 0,
} as const;

export function resolveAuditSettings(config: SluiceConfig): AuditSettings {
  const a = config.audit;
  const abs = (p: string): string => (p.startsWith('/') ? p : join(config.baseDir, p));
  return {
    checkpointEvery: a.checkpointEvery ?? AUDIT_DEFAULTS.checkpointEvery,
    checkpointIntervalMs: a.checkpointInterval === undefined ? AUDIT_DEFAULTS.checkpointIntervalMs : parseDuration(a.checkpointInterval, 'audit.checkpointInterval'),
    signingKeyPath: a.signingKey === undefined ? join(config.dataDir, 'audit-signing.key') : abs(a.signingKey),
    previewRows: a.previewRows ?? AUDIT_DEFAULTS.previewRows,
    previewBytes: a.previewBytes ?? AUDIT_DEFAULTS.previewBytes,
    commitWindowMs: a.commitWindow === undefined ? AUDIT_DEFAULTS.commitWindowMs : parseDuration(a.commitWindow, 'audit.commitWindow'),
    retentionMs: a.retention === undefined ? undefined : parseDuration(a.retention, 'audit.retention'),
    synchronous: a.synchronous ?? 'normal',
    origin: a.origin,
  };
}

export interface OpenStoreOptions {
  /**
   * Open for reading. For SQLite, if the writer died and left acknowledged records in its spool
   * and no live process holds the writer lock, they are moved into the store first, so a reader
   * after a crash sees everything a client saw succeed.
   */
  readonly readonly?: boolean;
  /** SQLite lock wait; the default 5 s suits the gateway, tests shorten it. */
  readonly busyTimeoutMs?: number;
}

export async function openAuditStore(config: SluiceConfig, options: OpenStoreOptions = {}): Promise<AuditStore> {
  const settings = resolveAuditSettings(config);
  if ('sqlite' in config.store) {
    const path = config.store.sqlite;
    // A reader after a crash: records the writer acknowledged may still be in its spool only.
    if (options.readonly === true) await recoverAbandonedSpool(path, () => openSqliteStore(path, { synchronous: settings.synchronous }));
    return openSqliteStore(path, {
      synchronous: settings.synchronous,
      ...(options.busyTimeoutMs !== undefined ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
      ...(options.readonly !== undefined ? { readonly: options.readonly } : {}),
    });
  }
  if ('postgres' in config.store) return openPostgresStore(config.store.postgres.reveal());
  throw new SluiceError('SLUICE_CONFIG_INVALID', 'store: expected sqlite or postgres');
}
