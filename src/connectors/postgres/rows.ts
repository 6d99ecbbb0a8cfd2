/**
 * RowDescription parsing and DataRow rewriting for inline masking. A DataRow is rebuilt only when a
 * value changed; otherwise the original bytes are forwarded untouched.
 */
import { isUtf8 } from 'node:buffer';
import { Backend } from './protocol.js';
import { BodyReader } from './frame-reader.js';
import { isReadableText, type ColumnPlan, type MaskStats } from '../../masking/index.js';

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
const BYTEA = 17;
/** bytea values longer than this (decoded) are not read as text: they pass as they are. */
const MAX_BYTEA_TEXT = 1 << 20;

export type RowMode = 'text' | 'pass' | 'null' | 'bytea-hex' | 'bytea-raw';

export interface RowMaskPlan {
  readonly plan: ColumnPlan;
  /**
   * Per column: 'text' (scan the bytes), 'pass' (binary, left alone), 'null' (binary, sent as
   * NULL), 'bytea-hex' / 'bytea-raw' (a bytea in text or binary form: text stored in it is
   * masked as text, maskBytea).
   */
  readonly modes: readonly RowMode[];
}

/** `formats` are Bind's result format codes (one for all, or one per column); absent: use the RowDescription's. */
export function buildRowMaskPlan(fields: readonly FieldDescription[], plan: ColumnPlan, formats?: readonly number[]): RowMaskPlan {
  const modes = fields.map((f, i): RowMode => {
    const format = formats === undefined ? f.format : formats.length === 0 ? 0 : formats.length === 1 ? (formats[0] as number) : (formats[i] ?? 0);
    const scanned = plan.actions[i] === 'scan';
    if (f.typeOid === BYTEA && scanned) return format === 0 ? 'bytea-hex' : plan.binaryAction(i) === 'pass' ? 'bytea-raw' : 'null';
    if (format === 0 || TEXTUAL_BINARY.has(f.typeOid)) return 'text';
    return plan.binaryAction(i);
  });
  return { plan, modes };
}

/**
 * A bytea holding text (a config file, a token stored as bytes): the server sends it as hex
 * (`\x41…`, bytea_output=hex) or raw bytes (binary format), where no detector can see it. When
 * the bytes are readable UTF-8 they are masked as the column's text and encoded back the same
 * way; other bytes (images, hashes, ciphertext) and values over MAX_BYTEA_TEXT pass as they
 * are. bytea_output=escape keeps printable ASCII as itself, so it is scanned as text.
 */
function maskBytea(plan: ColumnPlan, i: number, buf: Buffer, start: number, end: number, hex: boolean, stats?: MaskStats): Buffer | null | undefined {
  if (!hex) return maskByteaBytes(plan, i, buf.subarray(start, end), stats);
  if (end - start < 2 || buf[start] !== 0x5c /* \ */ || buf[start + 1] !== 0x78 /* x */) return plan.maskBytes(i, buf, start, end, stats);
  const value = buf.toString('latin1', start, end);
  const out = maskByteaHex(plan, i, value, stats);
  return out === value ? undefined : out === null ? null : Buffer.from(out, 'latin1');
}

/** A bytea in its text form (`\x…` hex, or escape format): see maskBytea. The same string when unchanged. */
export function maskByteaHex(plan: ColumnPlan, i: number, value: string, stats?: MaskStats): string | null {
  if (!value.startsWith('\\x')) return plan.maskValue(i, value, stats);
  if ((value.length - 2) / 2 > MAX_BYTEA_TEXT) return value;
  const out = maskByteaBytes(plan, i, Buffer.from(value.slice(2), 'hex'), stats);
  return out === undefined ? value : out === null ? null : `\\x${out.toString('hex')}`;
}

/** A bytea's raw bytes: see maskBytea. Undefined when unchanged, null to send NULL. */
export function maskByteaBytes(plan: ColumnPlan, i: number, bytes: Buffer, stats?: MaskStats): Buffer | null | undefined {
  if (bytes.length === 0 || bytes.length > MAX_BYTEA_TEXT || !isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  if (!isReadableText(text)) return undefined;
  const masked = plan.maskValue(i, text, stats);
  if (masked === text) return undefined;
  return masked === null ? null : Buffer.from(masked, 'utf8');
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
      } else if (mode === 'bytea-hex' || mode === 'bytea-raw') {
        replacement = maskBytea(rp.plan, i, frameBytes, start, end, mode === 'bytea-hex', stats);
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
