/**
 * Server-sent events (`text/event-stream`, the WHATWG HTML "server-sent events" format), masked
 * one event at a time. MCP's Streamable HTTP transport and the LLM streaming APIs answer this way:
 * each event's `data:` lines carry one JSON-RPC message or one JSON chunk. Masked line by line
 * as plain text, that JSON would get the detectors but not the connection's field rules
 * (`mask.columns` on a key or a dotted path), and a JSON value spread over several `data:` lines
 * would not parse. So the lines of an event are held until the blank line that ends it (a client
 * acts on an event only then, so holding costs the agent nothing), its data is joined as the
 * client joins it, masked as JSON when it parses and as text when not, and written back as data
 * lines. Every other line (`event:`, `id:`, `retry:`, comments) is masked as text.
 *
 * An event longer than `maxEvent` bytes is not held: its lines go out one by one, masked as text,
 * until the blank line, so a stream that never ends its events still streams, masked.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { maskTextBytes } from './body-streams.js';

export interface EventMask {
  /** An event's data, its `data:` values joined by `\n`. */
  data(text: string): string;
  /** Any other line, and the data of an event too long to hold. */
  line(text: string): string;
}

const LF = 0x0a;
const NL = Buffer.from('\n');
const CRLF = Buffer.from('\r\n');

/**
 * The lines of one event (each without its LF; a CR before it is kept), masked. Lines that are
 * not data stay where they were; the masked data fills the data lines in order, or the place of
 * the first one when masking changed how many lines it has.
 */
export function maskEvent(lines: readonly string[], mask: EventMask): string[] {
  const out: (string | null)[] = [];
  const dataAt: number[] = [];
  const values: string[] = [];
  const prefixes: string[] = [];
  for (const raw of lines) {
    const cr = raw.endsWith('\r');
    const line = cr ? raw.slice(0, -1) : raw;
    // Field `data`, exactly: `data`, `data:value` or `data: value` (one space is part of the colon).
    // A line with a lone CR inside was split differently by a client that ends lines at CR: text.
    if ((line === 'data' || line.startsWith('data:')) && !line.includes('\r')) {
      const cut = line.startsWith('data: ') ? 6 : Math.min(line.length, 5);
      dataAt.push(out.length);
      values.push(line.slice(cut));
      prefixes.push(cut === 4 ? 'data:' : line.slice(0, cut));
      out.push(raw);
    } else {
      out.push(line === '' ? raw : mask.line(raw));
    }
  }
  if (dataAt.length > 0) {
    const joined = values.join('\n');
    const masked = mask.data(joined);
    if (masked !== joined) {
      const pieces = masked.split('\n');
      const eol = (i: number): string => ((lines[i] as string).endsWith('\r') ? '\r' : '');
      if (pieces.length === dataAt.length) {
        dataAt.forEach((at, k) => (out[at] = `${prefixes[k] as string}${pieces[k] as string}${eol(at)}`));
      } else {
        const first = dataAt[0] as number;
        const end = eol(first);
        out[first] = pieces.map((p) => `${prefixes[0] as string}${p}`).join(`${end}\n`) + end;
        for (const at of dataAt.slice(1)) out[at] = null;
      }
    }
  }
  return out.filter((l): l is string => l !== null);
}

/**
 * The transform: splits the stream into lines, holds each event until its blank line and emits
 * it masked. Bytes that are not UTF-8 are read one byte per character (maskTextBytes),
 * so ASCII secrets in them are still found and every other byte is written back as it came.
 */
export function maskEventStream(mask: EventMask, maxEvent: number): Transform {
  /** The current event's complete lines. */
  let held: Buffer[] = [];
  let heldBytes = 0;
  /** The line being read (no LF yet). */
  let partial: Buffer[] = [];
  let partialBytes = 0;
  /** The current event passed maxEvent: its lines go out as they come, as text, until its end. */
  let overflow = false;

  const textLine = (self: Transform, line: Buffer, newline: boolean): void => {
    const out = maskTextBytes(line, mask.line);
    self.push(newline ? Buffer.concat([out, NL]) : out);
  };
  /** Emit the held event; `terminated`: its last line had its LF (false only at the stream's end). */
  const emitHeld = (self: Transform, terminated: boolean): void => {
    if (held.length === 0) return;
    const event = Buffer.concat(held.flatMap((l, i) => (i === 0 ? [l] : [NL, l])));
    const out = maskTextBytes(event, (text) => maskEvent(text.split('\n'), mask).join('\n'));
    self.push(terminated ? Buffer.concat([out, NL]) : out);
    held = [];
    heldBytes = 0;
  };
  /** Stop holding: what is held goes out now, line by line, and the rest of the event as it comes. */
  const spill = (self: Transform): void => {
    for (const l of held) textLine(self, l, true);
    held = [];
    heldBytes = 0;
    overflow = true;
  };
  const onLine = (self: Transform, line: Buffer): void => {
    const blank = line.length === 0 || (line.length === 1 && line[0] === 0x0d);
    if (blank) {
      emitHeld(self, true);
      overflow = false;
      self.push(line.length === 0 ? NL : CRLF);
      return;
    }
    if (overflow) {
      textLine(self, line, true);
      return;
    }
    held.push(line);
    heldBytes += line.length + 1;
    if (heldBytes > maxEvent) spill(self);
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      let start = 0;
      let nl = chunk.indexOf(LF);
      while (nl >= 0) {
        const piece = chunk.subarray(start, nl);
        const line = partialBytes === 0 ? piece : Buffer.concat([...partial, piece]);
        partial = [];
        partialBytes = 0;
        onLine(this, line);
        start = nl + 1;
        nl = chunk.indexOf(LF, start);
      }
      if (start < chunk.length) {
        partial.push(chunk.subarray(start));
        partialBytes += chunk.length - start;
        if (heldBytes + partialBytes > maxEvent) {
          // One line longer than an event may be: masked and sent in pieces, as free text is.
          if (!overflow) spill(this);
          textLine(this, Buffer.concat(partial), false);
          partial = [];
          partialBytes = 0;
        }
      }
      cb();
    },
    flush(cb: TransformCallback) {
      // The stream ended inside an event (no client dispatches it, but its bytes go out masked).
      if (partialBytes > 0) {
        const line = Buffer.concat(partial);
        if (overflow) textLine(this, line, false);
        else {
          held.push(line);
          emitHeld(this, false);
        }
      } else emitHeld(this, true);
      cb();
    },
  });
}
