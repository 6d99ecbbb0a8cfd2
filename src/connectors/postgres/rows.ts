/**
 * RowDescription parsing and DataRow rewriting for inline masking. A DataRow is rebuilt only when a
 * value changed; otherwise the original bytes are forwarded untouched.
 */
import { Backend } from './protocol.js';
import { BodyReader } from './frame-reader.js';
import type { ColumnPlan, MaskStats } from '../../masking/index.js';

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
  readonly plan: ColumnPlan;
  /** Per column: 'text' (scan the bytes), 'pass' (binary, left alone), 'null' (binary, sent as NULL). */
  readonly modes: readonly ('text' | 'pass' | 'null')[];
}

/** `formats` are Bind's result format codes (one for all, or one per column); absent: use the RowDescription's. */
export function buildRowMaskPlan(fields: readonly FieldDescription[], plan: ColumnPlan, formats?: readonly number[]): RowMaskPlan {
  const modes = fields.map((f, i) => {
    const format = formats === undefined ? f.format : formats.length === 0 ? 0 : formats.length === 1 ? (formats[0] as number) : (formats[i] ?? 0);
    if (format === 0 || TEXTUAL_BINARY.has(f.typeOid)) return 'text' as const;
    return plan.binaryAction(i);
  });
  return { plan, modes };
}

/**
 * Mask one DataRow frame (whole frame bytes). Returns the same Buffer when nothing changed.
 * NULLs stay NULL; lengths are recomputed for changed values. Values are scanned as bytes, so a
 * row with nothing to mask is never decoded.
 */
export function maskDataRow(frameBytes: Buffer, rp: RowMaskPlan, stats?: MaskStats): Buffer {
  const n = frameBytes.readInt16BE(5);
  let offset = 7;
  let parts: (Buffer | null)[] | undefined;
  for (let i = 0; i < n; i++) {
    if (offset + 4 > frameBytes.length) return frameBytes; // malformed from upstream: leave to the client's parser
    const len = frameBytes.readInt32BE(offset);
    const start = offset + 4;
    const end = len < 0 ? start : start + len;
    if (end > frameBytes.length) return frameBytes;
    const mode = rp.modes[i] ?? 'text';
    let replacement: Buffer | null | undefined;
    if (len >= 0 && mode !== 'pass') {
      if (mode === 'null') {
        replacement = null;
        stats?.add('binary_nulled');
      } else {
        replacement = rp.plan.maskBytes(i, frameBytes, start, end, stats);
      }
    }
    if (replacement !== undefined && parts === undefined) {
      parts = [];
      // Keep the values before this one as they were.
      let o = 7;
      for (let j = 0; j < i; j++) {
        const l = frameBytes.readInt32BE(o);
        parts.push(l < 0 ? null : frameBytes.subarray(o + 4, o + 4 + l));
        o += 4 + Math.max(l, 0);
      }
    }
    if (parts !== undefined) parts.push(replacement !== undefined ? replacement : len < 0 ? null : frameBytes.subarray(start, end));
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
