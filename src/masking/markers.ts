/**
 * What masking puts in place of a value, recognised when it comes back. An agent that reads a
 * masked object and writes it back (`kubectl edit`, a read-modify-write API call, `UPDATE … SET
 * email = 'hash:…'` copied from a result) would replace the real value with the placeholder.
 * Connectors refuse such writes; this module says whether a text carries one of the forms
 * styles.ts produces:
 *
 * - `[REDACTED]`, `[REDACTED:<detector>]` (redact), and its base64 (a Kubernetes Secret's data);
 * - `hash:` and 16 hex digits (hash);
 * - partial forms that cannot be real data: `a***@example.com`, `***-**-6789`, `4111 **** **** 1111`.
 *
 * Plain `*` runs (the `mask` style) are not recognised: real text has them too.
 */

/** The base64 of `[REDACTED]`, as Kubernetes Secret data is masked (kubernetes/secrets.ts). */
const REDACTED_B64 = Buffer.from('[REDACTED]').toString('base64').replace(/=+$/, '');

const MARKERS = new RegExp(
  [
    '\\[REDACTED(?::[a-z0-9_]+)?\\]',
    REDACTED_B64,
    '\\bhash:[0-9a-f]{16}\\b',
    // Partial e-mail, SSN and card forms (styles.ts `partial`).
    '\\b[A-Za-z0-9]\\*{3}@[A-Za-z0-9.-]+',
    '\\*{3}-\\*{2}-\\d{4}\\b',
    '\\d{4}[ -]\\*{4}[ -]\\*{4}[ -]\\d{4}\\b',
  ].join('|'),
);

/** Bytes that no masked form can be shorter than, kept between chunks of a stream. */
export const MARKER_CARRY = 64;

/** The first masked placeholder in `text`, or undefined. */
export function findMaskMarker(text: string): string | undefined {
  // Cheap pre-checks: every form has `REDACTED`'s base64, `[REDACTED`, `hash:` or `***`.
  if (!text.includes('[REDACTED') && !text.includes(REDACTED_B64) && !text.includes('hash:') && !text.includes('***')) return undefined;
  return MARKERS.exec(text)?.[0];
}
