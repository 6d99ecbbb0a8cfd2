/**
 * Remove the upstream credential from anything the agent receives. An upstream that echoes
 * request headers (debug endpoints, error pages, httpbin's /headers) would otherwise hand the
 * agent the very credential Sluice exists to keep from it (DESIGN.md principle 2).
 *
 * Text is scrubbed by replacement; bytes that pass through unparsed (binary bodies) are
 * overwritten in place with `*`, which keeps their length, across chunk boundaries.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const CREDENTIAL_MARK = '[REDACTED:credential]';

export interface Scrubber {
  readonly active: boolean;
  /** `text` with every credential replaced; the same string when none occurs. */
  text(text: string, onHit?: () => void): string;
  /** Overwrite every credential in `buf` with `*`, in place (length preserved). */
  overwrite(buf: Buffer, onHit?: () => void): void;
  /** A byte stream transform that overwrites credentials in place (length preserved). */
  bytes(onHit?: () => void): Transform;
}

export function createScrubber(secrets: readonly string[]): Scrubber {
  const needles = secrets.map((s) => Buffer.from(s));
  const longest = needles.reduce((m, n) => Math.max(m, n.length), 0);
  return {
    active: needles.length > 0,
    text(text, onHit) {
      let out = text;
      for (const s of secrets) {
        if (out.includes(s)) {
          out = out.split(s).join(CREDENTIAL_MARK);
          onHit?.();
        }
      }
      return out;
    },
    overwrite(buf, onHit) {
      overwrite(needles, buf, onHit);
    },
    bytes(onHit) {
      let tail: Buffer = Buffer.alloc(0);
      const keep = Math.max(0, longest - 1);
      return new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          const buf = tail.length === 0 ? Buffer.from(chunk) : Buffer.concat([tail, chunk]);
          overwrite(needles, buf, onHit);
          // Hold back what could be the start of a credential split across chunks.
          const cut = Math.max(0, buf.length - keep);
          tail = buf.subarray(cut);
          cb(null, buf.subarray(0, cut));
        },
        flush(cb: TransformCallback) {
          cb(null, tail);
        },
      });
    },
  };
}

function overwrite(needles: readonly Buffer[], buf: Buffer, onHit: (() => void) | undefined): void {
  for (const n of needles) {
    let i = buf.indexOf(n);
    while (i >= 0) {
      buf.fill(0x2a /* * */, i, i + n.length);
      onHit?.();
      i = buf.indexOf(n, i + n.length);
    }
  }
}
