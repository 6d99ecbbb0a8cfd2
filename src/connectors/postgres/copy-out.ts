/**
 * Masking COPY … TO STDOUT row by row, per column, in the three formats PostgreSQL sends:
 * text (delimiter-separated, backslash escapes), csv (quotes) and binary (length-prefixed values).
 * The server sends one CopyData message per row (binary: the file header rides with the first
 * row, the trailer comes alone), so each message is parsed on its own. Column rules need the
 * columns, which COPY never describes: the connector learns them beforehand (see
 * `copySource` in the SQL facts) and hands a RowMaskPlan here.
 *
 * Hand-written: the formats are PostgreSQL's own (https://www.postgresql.org/docs/current/sql-copy.html,
 * "File Formats"), small, and on the path of every row; no library parses them from CopyData.
 */
import type { MaskStats } from '../../masking/index.js';
import type { CopyFormat } from '../../policy/index.js';
import { maskByteaBytes, maskByteaHex, type RowMaskPlan } from './rows.js';

/** Thrown when a row does not have the described columns: the connector fails the COPY (fail closed). */
export class CopyShapeError extends Error {}

const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export class CopyOutMasker {
  readonly #f: CopyFormat;
  readonly #rp: RowMaskPlan;
  readonly #columns: number;
  #first = true;
  #ended = false;

  constructor(format: CopyFormat, rp: RowMaskPlan) {
    this.#f = format;
    this.#rp = rp;
    this.#columns = rp.modes.length;
  }

  get columns(): number {
    return this.#columns;
  }

  /** Mask one CopyData body: undefined when nothing changed. Throws CopyShapeError on a row it cannot read. */
  mask(body: Buffer, stats?: MaskStats): Buffer | undefined {
    const first = this.#first;
    this.#first = false;
    if (this.#f.format === 'binary') return this.#binary(body, first, stats);
    if (first && this.#f.header) return undefined;
    const text = body.toString('utf8');
    return this.#f.format === 'csv' ? this.#csv(text, stats) : this.#text(text, stats);
  }

  /** One text or csv value of column `i`: a bytea's hex form is masked as the text inside it. */
  #value(i: number, value: string, stats?: MaskStats): string | null {
    return this.#rp.modes[i] === 'bytea-hex' ? maskByteaHex(this.#rp.plan, i, value, stats) : this.#rp.plan.maskValue(i, value, stats);
  }

  #text(row: string, stats?: MaskStats): Buffer | undefined {
    const delim = this.#f.delimiter;
    const eol = lineEndLength(row);
    const line = row.slice(0, row.length - eol);
    const raw: string[] = [];
    let start = 0;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (ch === '\\') i++;
      else if (ch === delim) {
        raw.push(line.slice(start, i));
        start = i + 1;
      }
    }
    raw.push(line.slice(start));
    if (raw.length !== this.#columns) throw new CopyShapeError(`a COPY text row has ${raw.length} fields, ${this.#columns} columns were described`);
    let changed = false;
    for (let i = 0; i < raw.length; i++) {
      const field = raw[i] as string;
      if (field === this.#f.null) continue;
      const value = unescapeText(field);
      const out = this.#value(i, value, stats);
      if (out === value) continue;
      changed = true;
      raw[i] = out === null ? this.#f.null : escapeText(out, delim);
    }
    return changed ? Buffer.from(raw.join(delim) + row.slice(row.length - eol), 'utf8') : undefined;
  }

  #csv(row: string, stats?: MaskStats): Buffer | undefined {
    const { delimiter, quote, escape } = this.#f;
    const eol = lineEndLength(row);
    const line = row.slice(0, row.length - eol);
    const fields: { value: string; quoted: boolean; raw: string }[] = [];
    let i = 0;
    for (;;) {
      const start = i;
      if (line[i] === quote) {
        let value = '';
        i++;
        for (;;) {
          if (i >= line.length) throw new CopyShapeError('a COPY csv row ends inside a quoted field');
          const ch = line[i] as string;
          if (ch === escape && escape !== quote && (line[i + 1] === quote || line[i + 1] === escape)) {
            value += line[i + 1];
            i += 2;
          } else if (ch === quote) {
            if (escape === quote && line[i + 1] === quote) {
              value += quote;
              i += 2;
            } else {
              i++;
              break;
            }
          } else {
            value += ch;
            i++;
          }
        }
        if (i < line.length && line[i] !== delimiter) throw new CopyShapeError('a COPY csv field continues after its closing quote');
        fields.push({ value, quoted: true, raw: line.slice(start, i) });
      } else {
        let end = line.indexOf(delimiter, i);
        if (end < 0) end = line.length;
        const v = line.slice(i, end);
        fields.push({ value: v, quoted: false, raw: v });
        i = end;
      }
      if (i >= line.length) break;
      i++; // the delimiter
      if (i === line.length) {
        fields.push({ value: '', quoted: false, raw: '' });
        break;
      }
    }
    if (fields.length !== this.#columns) throw new CopyShapeError(`a COPY csv row has ${fields.length} fields, ${this.#columns} columns were described`);
    let changed = false;
    const out = fields.map((f, col) => {
      // An unquoted field equal to the NULL string is NULL; a quoted one is that text.
      if (!f.quoted && f.value === this.#f.null) return f.raw;
      const masked = this.#value(col, f.value, stats);
      if (masked === f.value) return f.raw;
      changed = true;
      if (masked === null) return this.#f.null;
      let q = quote;
      for (const ch of masked) q += ch === quote || ch === escape ? escape + ch : ch;
      return q + quote;
    });
    return changed ? Buffer.from(out.join(delimiter) + row.slice(row.length - eol), 'utf8') : undefined;
  }

  #binary(body: Buffer, first: boolean, stats?: MaskStats): Buffer | undefined {
    let off = 0;
    if (first) {
      if (body.length < 19 || !body.subarray(0, 11).equals(BINARY_SIGNATURE)) throw new CopyShapeError('a binary COPY does not start with its signature');
      const extension = body.readInt32BE(15);
      off = 19 + extension;
      if (extension < 0 || off > body.length) throw new CopyShapeError('a binary COPY header is malformed');
    }
    if (this.#ended) throw new CopyShapeError('a binary COPY sent data after its trailer');
    const parts: Buffer[] = [];
    let copiedTo = 0;
    while (off < body.length) {
      if (off + 2 > body.length) throw new CopyShapeError('a binary COPY tuple is truncated');
      const n = body.readInt16BE(off);
      off += 2;
      if (n === -1) {
        this.#ended = true;
        if (off !== body.length) throw new CopyShapeError('a binary COPY has bytes after its trailer');
        break;
      }
      if (n !== this.#columns) throw new CopyShapeError(`a binary COPY tuple has ${n} fields, ${this.#columns} columns were described`);
      for (let i = 0; i < n; i++) {
        if (off + 4 > body.length) throw new CopyShapeError('a binary COPY tuple is truncated');
        const len = body.readInt32BE(off);
        const start = off + 4;
        const end = len < 0 ? start : start + len;
        if (end > body.length) throw new CopyShapeError('a binary COPY value runs past its message');
        const mode = this.#rp.modes[i];
        let replacement: Buffer | null | undefined;
        if (len >= 0 && mode === 'text') replacement = this.#rp.plan.maskBytes(i, body, start, end, stats);
        else if (len >= 0 && mode === 'bytea-raw') replacement = maskByteaBytes(this.#rp.plan, i, body.subarray(start, end), stats);
        else if (len >= 0 && mode === 'null') {
          replacement = null;
          stats?.add('binary_nulled');
        }
        if (replacement !== undefined) {
          parts.push(body.subarray(copiedTo, off));
          const head = Buffer.allocUnsafe(4);
          head.writeInt32BE(replacement === null ? -1 : replacement.length, 0);
          parts.push(head);
          if (replacement !== null) parts.push(replacement);
          copiedTo = end;
        }
        off = end;
      }
    }
    if (parts.length === 0) return undefined;
    parts.push(body.subarray(copiedTo));
    return Buffer.concat(parts);
  }
}

/** The length of a row's line ending (`\r\n`, `\n` or `\r`), which masking leaves as it came. */
function lineEndLength(row: string): number {
  return row.endsWith('\r\n') ? 2 : row.endsWith('\n') || row.endsWith('\r') ? 1 : 0;
}

/** COPY text format escapes (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2). */
function unescapeText(field: string): string {
  if (!field.includes('\\')) return field;
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const ch = field[i] as string;
    if (ch !== '\\' || i + 1 >= field.length) {
      out += ch;
      continue;
    }
    const next = field[++i] as string;
    switch (next) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x': {
        const m = /^[0-9a-fA-F]{1,2}/.exec(field.slice(i + 1, i + 3));
        if (m === null) out += 'x';
        else {
          out += String.fromCharCode(parseInt(m[0], 16));
          i += m[0].length;
        }
        break;
      }
      default:
        if (next >= '0' && next <= '7') {
          const m = /^[0-7]{1,3}/.exec(field.slice(i, i + 3)) as RegExpExecArray;
          out += String.fromCharCode(parseInt(m[0], 8));
          i += m[0].length - 1;
        } else out += next;
    }
  }
  return out;
}

function escapeText(value: string, delimiter: string): string {
  let out = '';
  for (const ch of value) {
    if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === delimiter) out += ch === '\t' ? '\\t' : '\\' + ch;
    else out += ch;
  }
  return out;
}
