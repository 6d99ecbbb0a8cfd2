/**
 * Stream records out of the store in log order as JSON Lines, OCSF (one JSON object per line) or
 * CEF. JSON Lines are the stored canonical bytes, so a SIEM can rehash them: SHA-256(0x00||line)
 * is the record's Merkle leaf.
 */
import { parseRecord } from '../event.js';
import type { AuditStore, StoredEvent } from '../store/types.js';
import { toCef } from './cef.js';
import { toOcsf } from './ocsf.js';

export const EXPORT_FORMATS = ['jsonl', 'ocsf', 'cef'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function formatRecord(ev: StoredEvent, format: ExportFormat): string {
  switch (format) {
    case 'jsonl':
      return ev.body;
    case 'ocsf':
      return JSON.stringify(toOcsf(parseRecord(ev.body)));
    case 'cef':
      return toCef(parseRecord(ev.body));
    default: {
      const never: never = format;
      throw new TypeError(`unknown export format ${String(never)}`);
    }
  }
}

export interface ExportOptions {
  readonly format: ExportFormat;
  /** ms since epoch; records before it are skipped. */
  readonly since?: number;
  /** Only records with seq > afterSeq (streaming cursors). */
  readonly afterSeq?: number;
  readonly pageSize?: number;
}

/** Calls `write` once per record line (without newline); returns the last seq written. */
export async function exportRecords(store: AuditStore, options: ExportOptions, write: (line: string) => void | Promise<void>): Promise<number> {
  let after = options.afterSeq ?? 0;
  const pageSize = options.pageSize ?? 2000;
  for (;;) {
    const page = await store.readEventsSince(options.since ?? 0, after, pageSize);
    if (page.length === 0) return after;
    for (const ev of page) {
      await write(formatRecord(ev, options.format));
      after = ev.seq;
    }
  }
}
