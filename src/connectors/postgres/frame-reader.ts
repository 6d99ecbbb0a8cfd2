/**
 * Splits a byte stream into typed protocol frames (1-byte type + int32 length) with a cursor over
 * the incoming chunk, keeping only the unfinished tail (the pg-protocol parser's shape). Frames are
 * views into the current buffer, valid until the next `feed`. Every declared length is capped before
 * anything is buffered: the peer is untrusted.
 */
import { SluiceError } from '../../errors.js';

export class FrameReader {
  /** Bytes not yet consumed: the current buffer from `cursor` on. */
  buffer: Buffer = Buffer.alloc(0);
  cursor = 0;
  /** The last frame returned by `next()`: type byte and [start, end) of the whole frame, body from start+5. */
  type = 0;
  start = 0;
  end = 0;

  constructor(private readonly maxLength: number, private readonly peer: string) {}

  feed(chunk: Buffer): void {
    if (this.cursor >= this.buffer.length) {
      this.buffer = chunk;
    } else {
      // Only the unfinished tail survives; copy it once together with the new chunk.
      this.buffer = Buffer.concat([this.buffer.subarray(this.cursor), chunk]);
    }
    this.cursor = 0;
  }

  /** Advance to the next complete frame. False when the rest is incomplete (kept for the next feed). */
  next(): boolean {
    const buf = this.buffer;
    const at = this.cursor;
    if (buf.length - at < 5) return false;
    const length = buf.readInt32BE(at + 1);
    if (length < 4) {
      throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `invalid message length ${length} from ${this.peer}`);
    }
    if (length > this.maxLength) {
      throw new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `message of ${length} bytes from ${this.peer} exceeds the limit of ${this.maxLength}`);
    }
    if (buf.length - at < length + 1) return false;
    this.type = buf[at] as number;
    this.start = at;
    this.end = at + 1 + length;
    this.cursor = this.end;
    return true;
  }

  /** Body of the current frame (view). */
  body(): Buffer {
    return this.buffer.subarray(this.start + 5, this.end);
  }

  /** Whole current frame (view). */
  frame(): Buffer {
    return this.buffer.subarray(this.start, this.end);
  }

  /** Bytes buffered but not yet framed. */
  get pending(): number {
    return this.buffer.length - this.cursor;
  }
}

/** Reads NUL-terminated strings and integers from a message body, bounds-checked. */
export class BodyReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  cstring(): string {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'unterminated string in message');
    const s = this.buf.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return s;
  }

  int16(): number {
    if (this.offset + 2 > this.buf.length) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'message too short');
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    if (this.offset + 4 > this.buf.length) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'message too short');
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.offset + n > this.buf.length) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'message too short');
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  byte(): number {
    if (this.offset >= this.buf.length) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'message too short');
    return this.buf[this.offset++] as number;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }
}
