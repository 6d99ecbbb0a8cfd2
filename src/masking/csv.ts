/**
 * CSV and TSV bodies (an export endpoint's `text/csv`): the header row names each column, so column
 * rules and secret-like column names apply to every value under it, as they do to a PostgreSQL
 * result's columns, and the detectors run on every value. A `password` column's values carry no
 * key of their own, so masking the text alone would pass them in clear.
 *
 * Hand-written (RFC 4180 with the delimiter found in the header: `,`, `;` or tab) and fed one
 * physical line at a time, so it streams: a quoted field may span lines, and its pieces are masked
 * under its column. Unchanged fields keep their exact bytes; a masked value is quoted if it needs
 * to be. General CSV libraries parse to values and write their own quoting, which would change
 * bytes masking did not touch.
 */
import type { ColumnPlan, Masker } from './create-masker.js';
import type { MaskStats } from './stats.js';

const QUOTE = '"';

export class CsvMasker {
  readonly #masker: Masker;
  #delimiter: string | undefined;
  #plan: ColumnPlan | undefined;
  readonly #header: string[] = [];
  #inQuotes = false;
  #field = 0;

  /** `delimiter`: fixed (tab for TSV), or undefined to take it from the header line. */
  constructor(masker: Masker, delimiter?: string) {
    this.#masker = masker;
    this.#delimiter = delimiter;
  }

  /** A whole body: every line through line(), line breaks kept. */
  text(body: string, stats?: MaskStats): string {
    const lines = body.split('\n');
    let changed = false;
    for (let i = 0; i < lines.length; i++) {
      const out = this.line(lines[i]!, stats);
      if (out !== lines[i]) {
        lines[i] = out;
        changed = true;
      }
    }
    return changed ? lines.join('\n') : body;
  }

  /** One physical line without its `\n` (a trailing `\r` outside quotes is kept as it is). */
  line(text: string, stats?: MaskStats): string {
    this.#delimiter ??= sniffDelimiter(text);
    const d = this.#delimiter;
    let end = text.length;
    let out = '';
    let i = 0;
    for (;;) {
      if (this.#inQuotes) {
        // Inside a quoted field: content up to a lone `"`; `""` is an escaped quote.
        let content = '';
        let closed = false;
        while (i < end) {
          const ch = text[i]!;
          if (ch === QUOTE) {
            if (text[i + 1] === QUOTE) {
              content += QUOTE;
              i += 2;
              continue;
            }
            closed = true;
            i++;
            break;
          }
          content += ch;
          i++;
        }
        out += escapeQuoted(this.#value(content, stats));
        if (!closed) return out;
        out += QUOTE;
        this.#inQuotes = false;
        // Anything after the closing quote, up to the delimiter, is kept as sent (malformed input).
        const next = text.indexOf(d, i);
        const stop = next < 0 ? end : next;
        out += text.slice(i, stop);
        i = stop;
      } else if (text[i] === QUOTE) {
        out += QUOTE;
        this.#inQuotes = true;
        i++;
        continue;
      } else {
        const next = text.indexOf(d, i);
        let stop = next < 0 ? end : next;
        if (next < 0 && stop > i && text[stop - 1] === '\r') {
          stop--;
          end = stop;
        }
        const raw = text.slice(i, stop);
        const masked = this.#value(raw, stats);
        out += masked === raw ? raw : needsQuotes(masked, d) ? QUOTE + escapeQuoted(masked) + QUOTE : masked;
        i = stop;
      }
      if (i < end && text.startsWith(d, i)) {
        out += d;
        i += d.length;
        this.#field += 1;
        continue;
      }
      // The record ends with the line.
      out += text.slice(end);
      this.#endRecord();
      return out;
    }
  }

  /** A field's value (or the piece of it on this line) masked under its column. */
  #value(value: string, stats: MaskStats | undefined): string {
    if (this.#plan === undefined) {
      const at = this.#field;
      this.#header[at] = (this.#header[at] ?? '') + value;
      return this.#masker.maskText(value, stats);
    }
    if (value === '') return value;
    if (this.#field < this.#header.length) return this.#plan.maskValue(this.#field, value, stats) ?? '';
    return this.#masker.maskText(value, stats);
  }

  #endRecord(): void {
    this.#field = 0;
    if (this.#plan === undefined) this.#plan = this.#masker.planColumns(this.#header.map((h) => ({ column: h.trim() })));
  }
}

/** The delimiter of a header line: `,` unless the line has none and has a tab or `;`. */
function sniffDelimiter(header: string): string {
  if (header.includes(',')) return ',';
  if (header.includes('\t')) return '\t';
  if (header.includes(';')) return ';';
  return ',';
}

function escapeQuoted(s: string): string {
  return s.includes(QUOTE) ? s.replaceAll(QUOTE, '""') : s;
}

function needsQuotes(s: string, d: string): boolean {
  return s.includes(d) || s.includes(QUOTE) || s.includes('\n') || s.includes('\r');
}
