/**
 * Masking a stream of text that arrives in chunks cut anywhere (exec/attach frames, stdin of
 * `sluice mask`): a value straddling two chunks would slip past masking done chunk by chunk. The
 * carry masks whole lines: the bytes after a chunk's last newline wait and are masked with the
 * next chunk. A private key's PEM block spans lines, so from its BEGIN line on everything waits
 * for the END line and the masker sees the block whole. Bytes are kept, not strings, so a
 * character cut in half is never re-encoded.
 *
 * What waits is bounded by `maxHold` bytes: past it, the text is masked as it stands (a line
 * masked in pieces; an unterminated key block masked to the end of the piece, fail closed), so
 * a value across such a cut is the one case still missed.
 */

/** Default bound on what waits, in bytes. */
export const MAX_HOLD = 64 * 1024;

const EMPTY = Buffer.alloc(0);

export interface CarryOut {
  /** The bytes to send: the original ones when masking changed nothing. */
  readonly data: Buffer;
  /** True when a detector changed something. */
  readonly changed: boolean;
}

export class LineCarry {
  #pending: Buffer = EMPTY;

  constructor(
    private readonly mask: (text: string) => string,
    private readonly maxHold = MAX_HOLD,
  ) {}

  /** Bytes waiting for the rest of their line. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Add a chunk; returns what can go now (complete lines, masked), keeps the rest. */
  push(chunk: Buffer): CarryOut | undefined {
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    return this.#cut(data, data.lastIndexOf(0x0a) + 1);
  }

  /**
   * What waits, masked: a partial line goes (an interactive prompt has no newline), while an
   * open key block, the start of a BEGIN header and half a character stay. `final` (end of
   * stream): everything.
   */
  flush(final = false): CarryOut | undefined {
    if (this.#pending.length === 0) return undefined;
    if (final) {
      const out = this.#pending;
      this.#pending = EMPTY;
      return maskBytes(out, this.mask);
    }
    return this.#cut(this.#pending, headerStart(this.#pending, utf8Boundary(this.#pending)));
  }

  /** Send `data` up to `cut`, held back to the start of an open key block, unless over the bound. */
  #cut(data: Buffer, cut: number): CarryOut | undefined {
    let at = openKeyBlock(data, cut);
    if (data.length - at > this.maxHold) at = utf8Boundary(data);
    // A copy, so a long-lived partial line does not pin the whole chunk it came in.
    this.#pending = at === data.length ? EMPTY : Buffer.from(data.subarray(at));
    return at === 0 ? undefined : maskBytes(data.subarray(0, at), this.mask);
  }
}

const BEGIN = Buffer.from('-----BEGIN ');
const END = Buffer.from('-----END ');
const DASHES = Buffer.from('-----');
const PRIVATE_KEY_HEADER = /^-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;

/**
 * `at`, or where the partial line before it may be starting a key block's BEGIN header: a header
 * not closed yet, or a tail that is the first bytes of `-----BEGIN `. Sending those bytes alone
 * would hide the header from the masker when the rest arrives.
 */
function headerStart(data: Buffer, at: number): number {
  const lineStart = data.lastIndexOf(0x0a, at - 1) + 1;
  const b = data.lastIndexOf(BEGIN, at - 1);
  if (b >= lineStart && b + BEGIN.length <= at) {
    const close = data.indexOf(DASHES, b + BEGIN.length);
    if (close < 0 || close + DASHES.length > at) return b;
  }
  for (let k = Math.min(BEGIN.length, at - lineStart); k >= 1; k--) {
    if (data.subarray(at - k, at).equals(BEGIN.subarray(0, k))) return at - k;
  }
  return at;
}

/**
 * `cut`, or the start of the line of the last private key block begun before it when no END line
 * starts between that BEGIN and `cut`. Linear in `data`, however many BEGIN lines it holds (the
 * bytes may come from an agent's command).
 */
function openKeyBlock(data: Buffer, cut: number): number {
  if (cut === 0) return cut;
  const lastEnd = data.lastIndexOf(END, cut - 1);
  let at = cut;
  for (;;) {
    const b = at === 0 ? -1 : data.lastIndexOf(BEGIN, at - 1);
    if (b < 0) return cut;
    if (PRIVATE_KEY_HEADER.test(data.toString('latin1', b, Math.min(data.length, b + 80)))) {
      return lastEnd > b ? cut : data.lastIndexOf(0x0a, b) + 1;
    }
    at = b;
  }
}

function maskBytes(bytes: Buffer, mask: (text: string) => string): CarryOut {
  const text = bytes.toString('utf8');
  const masked = mask(text);
  return masked === text ? { data: bytes, changed: false } : { data: Buffer.from(masked, 'utf8'), changed: true };
}

/** The length of `buf` without a UTF-8 sequence left incomplete at its end. */
export function utf8Boundary(buf: Buffer): number {
  const n = buf.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = buf[n - back] as number;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead
    if (b < 0x80) return n;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
