/**
 * RowDescription parsing and DataRow rewriting for inline masking. A DataRow is rebuilt only when a
 * value changed; otherwise the original bytes are forwarded untouched.
 */
import { Backend } from './protocol.js';
import { BodyReader } from './frame-reader.js';
import type { ColumnPlanLike, MaskStatsRecorder } from '../engine.js';

export interface FieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly attnum: number;
  readonly typeOid: number;
  readonly format: number;
}

export function parseRowDescription(body: Buffer): FieldDescription[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableOid = r.int32() >>> 0;
    const attnum = r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16(); // typlen
    r.int32(); // typmod
    const format = r.int16();
    fields.push({ name, tableOid, attnum, typeOid, format });
  }
  return fields;
}

/** Types whose binary wire format is the UTF-8 text itself (text, varchar, bpchar, name, json, xml, unknown). */
const TEXTUAL_BINARY = new Set([25, 1043, 1042, 19, 114, 142, 705]);

export interface RowMaskPlan {
  readonly plan: ColumnPlanLike;
  /** Per column: 'text' (mask), 'skip' (leave), 'null' (binary non-text nulled by config). */
  readonly modes: readonly ('text' | 'skip' | 'null')[];
}

export function buildRowMaskPlan(fields: readonly FieldDescription[], plan: ColumnPlanLike, binary: 'pass' | 'null', formats?: readonly number[]): RowMaskPlan {
  const modes = fields.map((f, i) => {
    const format = formats === undefined ? f.format : formats.length === 1 ? (formats[0] as number) : (formats[i] ?? 0);
    if (format === 0) return 'text' as const;
    if (TEXTUAL_BINARY.has(f.typeOid)) return 'text' as const;
    return binary === 'null' ? ('null' as const) : ('skip' as const);
  });
  return { plan, modes };
}

/**
 * Mask one DataRow frame (whole frame bytes). Returns the same Buffer when nothing changed.
 * Values keep their NULLs; lengths are recomputed for changed values.
 */
export function maskDataRow(frameBytes: Buffer, rp: RowMaskPlan, stats?: MaskStatsRecorder): Buffer {
  const n = frameBytes.readInt16BE(5);
  let offset = 7;
  let parts: (Buffer | null)[] | undefined;
  for (let i = 0; i < n; i++) {
    if (offset + 4 > frameBytes.length) return frameBytes; // malformed from upstream: leave to the client's parser
    const len = frameBytes.readInt32BE(offset);
    const start = offset + 4;
    const end = len < 0 ? start : start + len;
    if (end > frameBytes.length) return frameBytes;
    const mode = rp.modes[i] ?? 'skip';
    if (len >= 0 && mode !== 'skip') {
      let replacement: Buffer | null | undefined;
      if (mode === 'null') {
        replacement = null;
        stats?.add('binary_nulled');
      } else {
        const value = frameBytes.toString('utf8', start, end);
        const masked = rp.plan.maskValue(i, value, stats);
        if (masked !== value) replacement = Buffer.from(masked, 'utf8');
      }
      if (replacement !== undefined) {
        if (parts === undefined) {
          parts = [];
          // Copy the values before this one as they were.
          let o = 7;
          for (let j = 0; j < i; j++) {
            const l = frameBytes.readInt32BE(o);
            parts.push(l < 0 ? null : frameBytes.subarray(o + 4, o + 4 + l));
            o += 4 + Math.max(l, 0);
          }
        }
        parts.push(replacement);
        offset = end;
        continue;
      }
    }
    parts?.push(len < 0 ? null : frameBytes.subarray(start, end));
    offset = end;
  }
  if (parts === undefined) return frameBytes;
  let size = 4 + 2;
  for (const p of parts) size += 4 + (p === null ? 0 : p.length);
  const out = Buffer.allocUnsafe(1 + size);
  out[0] = Backend.DataRow;
  out.writeInt32BE(size, 1);
  out.writeInt16BE(parts.length, 5);
  let o = 7;
  for (const p of parts) {
    if (p === null) {
      out.writeInt32BE(-1, o);
      o += 4;
    } else {
      out.writeInt32BE(p.length, o);
      p.copy(out, o + 4);
      o += 4 + p.length;
    }
  }
  return out;
}
