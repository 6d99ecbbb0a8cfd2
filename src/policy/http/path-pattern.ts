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
 *
 * Deny and review rules also match the forms of a path that common upstreams route to the same
 * handler (`routeAliases`): any case, a trailing slash either way, trailing dots or spaces on a
 * segment, and a format suffix on the last one. An allow rule matches only the path as written,
 * so neither side widens what is allowed.
 */
import { SluiceError } from '../../errors.js';

export interface PathPattern {
  readonly source: string;
  /** Exact-case match: used by allow rules, so an allow never widens to a differently cased path. */
  test(path: string): boolean;
  /**
   * Loose match, used by deny and review rules: any case, and any of the path's `routeAliases`,
   * so `/Admin`, `/admin/` or `/admin.json` cannot dodge a deny on `/admin` at an upstream that
   * routes them to `/admin`.
   */
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
  // A trailing slash is optional on both sides: `/admin/` in a deny also covers `/admin`.
  const folded = new RegExp(`^${src.endsWith('/') && src.length > 1 ? src.slice(0, -1) : src}/?$`, 'is');
  return {
    source: pattern,
    test: (p) => exact.test(p),
    testFolded: (p) => folded.test(p) || routeAliases(p).some((a) => folded.test(a)),
  };
}

/** A format suffix on a last segment: `.json`, `.xml`, `.csv` (Rails' `(.:format)`, Spring's suffix match). */
const FORMAT_SUFFIX = /\.[A-Za-z0-9]{1,10}$/;
/** Trailing dots and spaces, which IIS and Windows file systems drop from a segment. */
const TRAILING_DOTS = /[. ]+$/;

/**
 * Other spellings of `path` that widely used upstream frameworks route to the same handler as
 * a path without them: trailing dots or spaces on a segment (`/admin.` and `/admin%20` are
 * `/admin` to IIS), a format suffix on the last segment (`/admin.json` is `/admin` to Rails and
 * to Spring MVC before 5.3), and the path decoded once more (`/%2561dmin` is `/admin` to an
 * upstream that decodes twice). The trailing slash (Express, Spring, Flask) is folded by the deny
 * pattern itself. Only deny and review rules use these, so they only ever make a refusal more
 * likely.
 */
export function routeAliases(path: string): string[] {
  if (!path.includes('.') && !path.includes(' ') && !path.includes('%')) return [];
  const out: string[] = [];
  const forms = [path];
  if (path.includes('%')) {
    try {
      const again = decodeURIComponent(path);
      if (again !== path) {
        forms.push(again);
        out.push(again);
      }
    } catch {
      // not a second layer of escapes: nothing to add
    }
  }
  for (const form of forms) out.push(...spellings(form));
  return out;
}

/** `path` without trailing dots or spaces on its segments, and without a format suffix on its last one. */
function spellings(path: string): string[] {
  const segments = path.split('/');
  let trimmed = false;
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i] as string;
    const t = seg.replace(TRAILING_DOTS, '');
    if (t !== seg && t !== '') {
      segments[i] = t;
      trimmed = true;
    }
  }
  const out: string[] = [];
  if (trimmed) out.push(segments.join('/'));
  // The last named segment: `/admin.json/` is routed as `/admin.json` too.
  const last = segments[segments.length - 1] === '' && segments.length > 2 ? segments.length - 2 : segments.length - 1;
  const lastSeg = segments[last] as string;
  const m = FORMAT_SUFFIX.exec(lastSeg);
  const base = m === null ? '' : lastSeg.slice(0, m.index).replace(TRAILING_DOTS, '');
  if (base !== '') {
    segments[last] = base;
    out.push(segments.join('/'));
  }
  return out;
}
