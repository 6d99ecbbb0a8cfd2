/**
 * A masked JSON body written back the way the upstream wrote it. `JSON.stringify` of the parsed
 * value would round integers beyond 2^53 (snowflake IDs, the int64s of Go and Java services),
 * turn `1.0` into `1` and `1e400` into `null`, and reformat the body. Instead the original text
 * is copied wherever the masked value is unchanged, and only changed values are serialised.
 *
 * An object with a duplicate key is the exception: `JSON.parse` keeps the last value, so the
 * earlier ones were never masked, and copying the text would send them as they came. Such a body
 * is sent as `JSON.stringify` of the masked value, which drops them (a client reading it sees the
 * same values as before). So every body is scanned in full, unchanged parts included.
 *
 * Written by hand: a scanner over text `JSON.parse` has already accepted, on every JSON response,
 * that needs token positions no library exposes in Node 20 (`JSON.parse` source access is newer).
 */

/**
 * Past this depth (masking replaces anything below 256 levels) the body is serialised instead:
 * the scanner recurses, and an unscanned subtree could hide a duplicate key.
 */
const MAX_SCAN_DEPTH = 512;

/** The first character of a JSON value: `"`, `{`, `[`, `-`, a digit, `t`, `f`, `n`. */
const VALUE_START: ReadonlySet<number> = new Set([0x22, 0x7b, 0x5b, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x74, 0x66, 0x6e]);

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Whether `text` can be JSON by its first and last characters (and what follows an opening
 * bracket): a cheap test before `JSON.parse`, whose failure costs an exception (tens of µs).
 * `{y}`, `[DONE]`, `[REDACTED:email]`, `true story` and `42 apples` are not; `{"a}` passes and
 * fails to parse. `objects`: only an object or an array.
 */
export function mayBeJson(text: string, objects = false): boolean {
  let i = 0;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  let j = text.length - 1;
  while (j > i && isSpace(text.charCodeAt(j))) j--;
  if (i > j) return false;
  const first = text.charCodeAt(i);
  const last = text.charCodeAt(j);
  if (first === 0x7b || first === 0x5b) {
    if (last !== (first === 0x7b ? 0x7d : 0x5d) || j === i) return false;
    let k = i + 1;
    while (k < j && isSpace(text.charCodeAt(k))) k++;
    const next = text.charCodeAt(k);
    return k === j || (first === 0x7b ? next === 0x22 : VALUE_START.has(next));
  }
  if (objects) return false;
  if (first === 0x22) return last === 0x22 && j > i;
  if (first === 0x2d || (first >= 0x30 && first <= 0x39)) return last >= 0x30 && last <= 0x39;
  const word = text.slice(i, j + 1);
  return word === 'true' || word === 'false' || word === 'null';
}

export const NOT_JSON: unique symbol = Symbol('not JSON');

/**
 * `JSON.parse(text)`, or NOT_JSON. Without a stack trace: the gateway runs with source maps on,
 * and mapping the stack of each SyntaxError made a failed parse cost ~15 µs (3.5 µs without).
 */
export function tryParse(text: string): unknown {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The text cannot be spliced (a duplicate key, a masked value of another shape): serialise instead. */
class Fallback extends Error {}

/** Integers of more digits than this may not survive a double (2^53 has 16). */
const MAX_EXACT_DIGITS = 15;

/**
 * The text to send for a JSON body: `text` itself when `masked === parsed` and it holds no
 * duplicate key, else `text` with each changed value replaced. `parsed` must be `JSON.parse(text)`
 * and `masked` what masking made of it (unchanged branches the same objects).
 *
 * `maskNumber` sees the written digits of every integer too long for a double (a 19-digit card
 * number, which `JSON.parse` rounds so that its checksum fails and masking passes it): what it
 * returns in their place, when different, is sent as a string.
 */
export function spliceJson(text: string, parsed: unknown, masked: unknown, maskNumber?: (digits: string) => string): string {
  const s = new Splicer(text, maskNumber);
  try {
    s.value(parsed, masked, 0);
  } catch (err) {
    if (err instanceof Fallback) return JSON.stringify(masked);
    throw err;
  }
  return s.finish();
}

/**
 * Whether JSON text that `JSON.parse` read as `parsed` repeats a key in some object (or nests past
 * the scanner's depth): parsers disagree on which value such a key has.
 */
export function hasDuplicateKey(text: string, parsed: unknown): boolean {
  return spliceJson(text, parsed, parsed) !== text;
}

class Splicer {
  private pos = 0;
  private copied = 0;
  private readonly parts: string[] = [];

  constructor(
    private readonly text: string,
    private readonly maskNumber: ((digits: string) => string) | undefined,
  ) {}

  finish(): string {
    if (this.parts.length === 0) return this.text;
    this.parts.push(this.text.slice(this.copied));
    return this.parts.join('');
  }

  /** Scan one value at `pos`, replacing it (or the parts of it that changed) by `mask`. */
  value(orig: unknown, mask: unknown, depth: number): void {
    this.ws();
    const start = this.pos;
    const c = this.text.charCodeAt(start);
    const container = c === 0x7b /* { */ || c === 0x5b; /* [ */
    if (!container) {
      this.skipScalar();
      if (mask !== orig) {
        this.replace(start, this.pos, mask);
      } else if (this.maskNumber !== undefined && this.pos - start > MAX_EXACT_DIGITS && (c === 0x2d || (c >= 0x30 && c <= 0x39))) {
        const digits = this.text.slice(start, this.pos);
        if (/^-?[0-9]+$/.test(digits)) {
          const out = this.maskNumber(digits);
          if (out !== digits) this.replace(start, this.pos, out);
        }
      }
      return;
    }
    if (depth >= MAX_SCAN_DEPTH) throw new Fallback();
    // A changed container of the same shape is walked member by member; anything else (a scalar
    // or another shape in its place) is scanned for duplicate keys, then replaced whole.
    const sameShape = mask === orig || (mask !== null && typeof mask === 'object' && Array.isArray(mask) === (c === 0x5b) && Array.isArray(orig) === (c === 0x5b));
    const o = (sameShape ? orig : undefined) as Record<string, unknown> | unknown[] | undefined;
    const m = (sameShape ? mask : undefined) as Record<string, unknown> | unknown[] | undefined;
    if (c === 0x5b) this.array(o as unknown[] | undefined, m as unknown[] | undefined, depth);
    else this.object(o as Record<string, unknown> | undefined, m as Record<string, unknown> | undefined, depth);
    if (!sameShape) this.replace(start, this.pos, mask);
  }

  private array(orig: unknown[] | undefined, mask: unknown[] | undefined, depth: number): void {
    this.pos++; // [
    this.ws();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return;
    }
    const walk = orig !== undefined && mask !== undefined && orig !== mask;
    for (let i = 0; ; i++) {
      if (walk) this.value(orig[i], mask[i], depth + 1);
      else this.value(undefined, undefined, depth + 1);
      this.ws();
      if (this.text.charCodeAt(this.pos++) === 0x5d /* ] */) {
        if (walk && (i + 1 !== mask.length || i + 1 !== orig.length)) throw new Fallback();
        return;
      } // else ,
    }
  }

  private object(orig: Record<string, unknown> | undefined, mask: Record<string, unknown> | undefined, depth: number): void {
    this.pos++; // {
    this.ws();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return;
    }
    const walk = orig !== undefined && mask !== undefined && orig !== mask;
    const seen = new Set<string>();
    for (;;) {
      this.ws();
      const key = this.key();
      if (seen.has(key)) throw new Fallback();
      seen.add(key);
      this.ws();
      this.pos++; // :
      if (walk) {
        if (!Object.hasOwn(mask, key)) throw new Fallback();
        this.value(orig[key], mask[key], depth + 1);
      } else {
        this.value(undefined, undefined, depth + 1);
      }
      this.ws();
      if (this.text.charCodeAt(this.pos++) === 0x7d /* } */) {
        if (walk && Object.keys(mask).length !== seen.size) throw new Fallback();
        return;
      } // else ,
    }
  }

  private key(): string {
    const start = this.pos;
    const escaped = this.skipString();
    return escaped ? (JSON.parse(this.text.slice(start, this.pos)) as string) : this.text.slice(start + 1, this.pos - 1);
  }

  private replace(start: number, end: number, value: unknown): void {
    const json = JSON.stringify(value) as string | undefined;
    if (json === undefined) throw new Fallback();
    this.parts.push(this.text.slice(this.copied, start), json);
    this.copied = end;
  }

  private ws(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.pos = p;
  }

  /** A string at `pos` (its opening quote); returns whether it held an escape. */
  private skipString(): boolean {
    const t = this.text;
    let p = this.pos + 1;
    let escaped = false;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x22 /* " */) break;
      if (c === 0x5c /* \ */) {
        escaped = true;
        p += 2;
      } else {
        p++;
      }
    }
    this.pos = p + 1;
    return escaped;
  }

  /** A string, number, true, false or null. */
  private skipScalar(): void {
    if (this.text.charCodeAt(this.pos) === 0x22) {
      this.skipString();
      return;
    }
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      // Numbers and the three literals are letters, digits, `-`, `+` and `.`; anything else ends them.
      if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x2b || c === 0x2e) p++;
      else break;
    }
    this.pos = p;
  }
}
