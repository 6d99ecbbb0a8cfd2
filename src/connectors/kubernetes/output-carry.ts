/**
 * Exec/attach output reaches Sluice in frames cut wherever the container's writes and the kubelet's
 * buffers fell, so a secret can straddle two frames and slip past masking done frame by frame.
 * One carry per output channel: the bytes after a frame's last newline wait and are masked
 * together with the next frame. What waits is sent anyway after a short delay (an interactive
 * prompt has no newline), before a frame of another channel, and at the end of the stream.
 *
 * A private key's PEM block spans lines: from its BEGIN line on, everything waits for the END
 * line, so the masker sees the block whole. A line (or block) longer than `maxCarry` bytes is
 * masked in pieces, as `maskLines` does for free text: a value across such a cut is the one case
 * still missed.
 */

/** Longest partial line (or unterminated private key block) kept back, in bytes. */
export const MAX_CARRY = 64 * 1024;
/** How long a partial line waits for the rest of it (ms). */
export const CARRY_MS = 25;

const EMPTY = Buffer.alloc(0);

export interface CarryOut {
  /** The bytes to send: the original ones when masking changed nothing. */
  readonly data: Buffer;
  /** True when a detector changed something. */
  readonly changed: boolean;
}

export class OutputCarry {
  #pending: Buffer = EMPTY;

  constructor(
    private readonly mask: (text: string) => string,
    private readonly maxCarry = MAX_CARRY,
  ) {}

  /** Bytes waiting for the rest of their line. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Add a frame's payload; returns what can go now (complete lines, masked), keeps the rest. */
  push(payload: Buffer): CarryOut | undefined {
    const data = this.#pending.length === 0 ? payload : Buffer.concat([this.#pending, payload]);
    let cut = openKeyBlock(data, data.lastIndexOf(0x0a) + 1);
    if (data.length - cut > this.maxCarry) cut = utf8Boundary(data);
    // A copy, so a long-lived partial line does not pin the whole frame it came in.
    this.#pending = cut === data.length ? EMPTY : Buffer.from(data.subarray(cut));
    return cut === 0 ? undefined : maskBytes(data.subarray(0, cut), this.mask);
  }

  /**
   * Everything waiting, masked. Unless `final`, up to 3 bytes of a character cut in half stay
   * for the next frame, so masking never re-encodes half a character.
   */
  flush(final = false): CarryOut | undefined {
    if (this.#pending.length === 0) return undefined;
    const cut = final ? this.#pending.length : utf8Boundary(this.#pending);
    if (cut === 0) return undefined;
    const out = this.#pending.subarray(0, cut);
    this.#pending = cut === this.#pending.length ? EMPTY : Buffer.from(this.#pending.subarray(cut));
    return maskBytes(out, this.mask);
  }
}

const BEGIN = Buffer.from('-----BEGIN ');
const END = Buffer.from('-----END ');
const PRIVATE_KEY_HEADER = /^-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;

/** `cut`, or the start of the line of a private key block begun before it and not ended in `data`. */
function openKeyBlock(data: Buffer, cut: number): number {
  let at = cut;
  for (;;) {
    const b = data.lastIndexOf(BEGIN, at - 1);
    if (b < 0 || at === 0) return cut;
    if (PRIVATE_KEY_HEADER.test(data.toString('latin1', b, Math.min(data.length, b + 80)))) {
      const e = data.indexOf(END, b);
      if (e < 0 || e >= cut) return data.lastIndexOf(0x0a, b) + 1;
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
