/**
 * Path patterns of HTTP and Kubernetes rules (`paths: ['/v1/orders/*']`). Both glob and route
 * styles are accepted, one path segment at a time:
 *
 * - `*` inside a segment matches any run of characters except `/` (`/v1/*` ⊇ `/v1/orders`, not `/v1/a/b`)
 * - `**` as a whole segment matches any number of segments, none included (`/v1/**` ⊇ `/v1`, `/v1/a/b`)
 * - `:name` and `{name}` as a whole segment match one non-empty segment (route style)
 * - `?` matches one character other than `/`
 *
 * Patterns match the *decoded* path that request-target.ts has already normalised (no dot
 * segments, no encoded slashes), so `/v1/%61dmin` is tested as `/v1/admin`.
 */
import { SluiceError } from '../../errors.js';

export interface PathPattern {
  readonly source: string;
  /** Exact-case match: used by allow rules, so an allow never widens to a differently cased path. */
  test(path: string): boolean;
  /** Case-insensitive match: used by deny and review rules, so `/Admin` cannot dodge a deny on `/admin` at a case-insensitive upstream. */
  testFolded(path: string): boolean;
}

const MAX_PATTERN_LENGTH = 1024;

export function compilePathPattern(pattern: string, where: string): PathPattern {
  if (pattern.length > MAX_PATTERN_LENGTH) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: path pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  if (!pattern.startsWith('/')) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: path pattern "${pattern}" must start with "/"`);
  const segments = pattern.slice(1).split('/');
  let src = '';
  for (const seg of segments) {
    if (seg === '**') {
      src += '(?:/.*)?';
      continue;
    }
    if (/^:[A-Za-z_][A-Za-z0-9_]*$/.test(seg) || /^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(seg)) {
      src += '/[^/]+';
      continue;
    }
    if (seg.includes('**')) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: "**" must be a whole path segment in "${pattern}"`);
    src += '/';
    for (const ch of seg) {
      if (ch === '*') src += '[^/]*';
      else if (ch === '?') src += '[^/]';
      else src += ch.replace(/[\\^$.+()[\]{}|]/g, '\\$&');
    }
  }
  if (src === '') src = '/';
  const exact = new RegExp(`^${src}$`, 's');
  const folded = new RegExp(`^${src}$`, 'is');
  return { source: pattern, test: (p) => exact.test(p), testFolded: (p) => folded.test(p) };
}
