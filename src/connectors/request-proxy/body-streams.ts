/**
 * Streams on the body path: a byte limit, and a line splitter that masks each complete line as it
 * arrives (NDJSON, Kubernetes watch events, `kubectl logs -f`), so a stream is masked without
 * being buffered and each event reaches the agent as soon as it is complete.
 */
import { isUtf8 } from 'node:buffer';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { SluiceError } from '../../errors.js';
import { findMaskMarker, MARKER_CARRY, utf8Boundary } from '../../masking/index.js';

/**
 * Mask text bytes, returning `bytes` itself when nothing changed. UTF-8 is masked as UTF-8. Bytes
 * that are not UTF-8 (a Latin-1 or Windows-1252 page, a log with stray bytes) are read one byte
 * per character, so ASCII secrets in them are still found and every other byte is written back
 * as it came; decoding them as UTF-8 would miss nothing ASCII but would turn each stray byte into
 * U+FFFD in any line that changed.
 */
export function maskTextBytes(bytes: Buffer, mask: (text: string) => string): Buffer {
  const encoding = isUtf8(bytes) ? 'utf8' : 'latin1';
  const text = bytes.toString(encoding);
  const out = mask(text);
  return out === text ? bytes : Buffer.from(out, encoding);
}

/** Fails the stream with SLUICE_MESSAGE_TOO_LARGE once more than `limit` bytes passed. */
/**
 * Fail a request body that carries a value Sluice masked (masking/markers.ts): written back, it
 * would replace the real value. A placeholder cut across chunks is found with the carry.
 */
export function refuseMaskMarkers(): Transform {
  let carry = '';
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const text = carry + chunk.toString('latin1');
      const found = findMaskMarker(text);
      if (found !== undefined) {
        cb(maskedWriteBack(found));
        return;
      }
      carry = text.slice(-MARKER_CARRY);
      cb(null, chunk);
    },
  });
}

/** The refusal of a request that would write a masked placeholder back. */
export function maskedWriteBack(found: string): SluiceError {
  return new SluiceError(
    'SLUICE_POLICY_DENIED',
    `the request body carries a value Sluice masked (${found}); written back it would replace the real value. Send the real value, or leave the field out`,
  );
}

export function byteLimit(limit: number, what: string, onBytes?: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      onBytes?.(chunk.length);
      if (seen > limit) {
        cb(new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `${what} exceeds ${limit} bytes`));
        return;
      }
      cb(null, chunk);
    },
  });
}

/**
 * Split on `\n` and replace every line (without its newline) by `mask(line)`. A line longer than
 * `maxLine` bytes fails the stream when `strict` (JSON lines cannot be masked in pieces), and is
 * otherwise masked and flushed in pieces (free text).
 */
export function maskLines(mask: (line: string) => string, maxLine: number, strict: boolean): Transform {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const emit = (self: Transform, line: Buffer, newline: boolean): void => {
    const out = maskTextBytes(line, mask);
    self.push(newline ? Buffer.concat([out, NL]) : out);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      let start = 0;
      let nl = chunk.indexOf(0x0a);
      while (nl >= 0) {
        const piece = chunk.subarray(start, nl);
        const line = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        pendingBytes = 0;
        emit(this, line, true);
        start = nl + 1;
        nl = chunk.indexOf(0x0a, start);
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > maxLine) {
          if (strict) {
            cb(new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `a streamed line exceeds ${maxLine} bytes and cannot be masked`));
            return;
          }
          emit(this, Buffer.concat(pending), false);
          pending = [];
          pendingBytes = 0;
        }
      }
      cb();
    },
    flush(cb: TransformCallback) {
      if (pendingBytes > 0) emit(this, Buffer.concat(pending), false);
      cb();
    },
  });
}

const NL = Buffer.from('\n');

/**
 * The first chunk of `stream` (null when it ends at once) and a stream of the whole body, that
 * chunk first. Errors and an early close pass through both ways.
 */
export async function peekFirstChunk(stream: Readable): Promise<{ head: Buffer | null; body: Readable }> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  const head = first.done === true ? null : first.value;
  async function* whole(): AsyncGenerator<Buffer> {
    if (head === null) return;
    yield head;
    for (;;) {
      const next = await it.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  return { head, body: Readable.from(whole(), { objectMode: false }) };
}

/**
 * Whether the first bytes of a body read as text: UTF-8 (a sequence cut at the end allowed), no
 * NUL, and control characters other than tab, line breaks, form feed and escape under 1 %.
 * Binary formats (images, archives, protobuf) fail at once.
 */
export function looksLikeText(head: Buffer): boolean {
  const probe = head.subarray(0, Math.min(head.length, 4096));
  if (probe.length === 0 || probe.includes(0)) return false;
  let control = 0;
  for (const b of probe) if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) control++;
  if (control * 100 > probe.length) return false;
  return isUtf8(probe.subarray(0, utf8Boundary(probe)));
}
