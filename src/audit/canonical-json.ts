/**
 * RFC 8785 JSON Canonicalization Scheme (JCS). The audit log hashes and signs these bytes, so two
 * implementations that agree on the record agree on its hash.
 *
 * JCS is defined in terms of ECMAScript: numbers serialise as `Number.prototype.toString` (RFC 8785
 * §3.2.2.3), strings as `JSON.stringify` does (§3.2.2.2), and object members are sorted by their
 * UTF-16 code units (§3.2.3), which is what `Array.prototype.sort` compares. What JCS forbids
 * (NaN, ±Infinity, lone surrogates) throws instead of producing bytes another verifier would reject.
 */

export class CanonicalJsonError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalJsonError';
  }
}

// A lone surrogate cannot be encoded in UTF-8 (RFC 8785 §3.2.2.2 requires well-formed Unicode).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, out, 0);
  return out.join('');
}

function write(value: unknown, out: string[], depth: number): void {
  if (depth > 64) throw new CanonicalJsonError('value is nested too deeply');
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`${String(value)} has no JSON form`);
      // -0 serialises as 0 (RFC 8785 §3.2.2.3); toString already does that.
      out.push(String(value));
      return;
    case 'string':
      out.push(writeString(value));
      return;
    case 'object': {
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          const item: unknown = value[i];
          write(item === undefined ? null : item, out, depth + 1);
        }
        out.push(']');
        return;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalJsonError(`cannot canonicalise a ${(value as object).constructor?.name ?? 'non-plain'} object`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (i > 0) out.push(',');
        out.push(writeString(k), ':');
        write(record[k], out, depth + 1);
      });
      out.push('}');
      return;
    }
    default:
      throw new CanonicalJsonError(`cannot canonicalise a ${typeof value}`);
  }
}

function writeString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalJsonError('string contains a lone surrogate');
  return JSON.stringify(s);
}
