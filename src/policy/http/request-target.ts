/**
 * Parse the request target an agent sent into the path the policy decides on and the bytes that
 * are forwarded. The two must mean the same thing to Sluice and to the upstream, so anything an
 * upstream might resolve differently from the policy is refused instead of guessed at:
 * dot segments (`/a/../admin`, also percent-encoded), encoded `/` or `\` (`%2F`, `%5C`),
 * empty segments (`//`, which some servers merge), path parameters (`/admin;x`, which Java
 * servers strip: `/allowed/..;/admin` is `/admin` to Tomcat), dots written as other characters
 * that Unicode normalisation turns into `.` (`．．`), backslashes, control characters (also
 * percent-encoded), bad percent-encoding, and those escapes encoded twice (`%252e%252e`, which an
 * upstream or a framework behind it that decodes again would read as `..`). RFC 3986 §5.2.4 (remove_dot_segments) is exactly
 * what a lenient upstream would apply after the policy had looked.
 */
import { SluiceError } from '../../errors.js';

export interface RequestTarget {
  /** Decoded path, for policy and audit (`/v1/orders/42`). */
  readonly path: string;
  /** The path exactly as received, forwarded upstream. */
  readonly rawPath: string;
  /** The query string without `?`, as received ('' when absent). */
  readonly rawQuery: string;
  /** Decoded query parameters, every value in order. */
  readonly query: Readonly<Record<string, readonly string[]>>;
}

const FORBIDDEN_ESCAPES = /%(?:2f|5c|00)/i;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f\\]/;
// eslint-disable-next-line no-control-regex
const CONTROL_DECODED = /[\u0000-\u001f\u007f]/;
const MAX_TARGET = 16 * 1024;

function bad(message: string): never {
  throw new SluiceError('SLUICE_BAD_REQUEST', message);
}

/** `target` is the path and query (what follows the host), e.g. `/v1/orders?limit=5`. */
export function parseRequestTarget(target: string): RequestTarget {
  if (target.length > MAX_TARGET) bad(`request target is longer than ${MAX_TARGET} characters`);
  if (!target.startsWith('/')) bad('request target must start with "/"');
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q + 1);
  const hash = rawQuery.indexOf('#');
  if (hash >= 0 || rawPath.includes('#')) bad('request target must not contain a fragment');
  if (CONTROL.test(rawPath)) bad('request path contains a control character or a backslash');
  if (FORBIDDEN_ESCAPES.test(rawPath)) bad('request path contains an encoded "/", "\\" or NUL, which upstreams decode differently');
  const segments = rawPath.slice(1).split('/');
  const decoded: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string;
    if (seg === '' && i < segments.length - 1) bad('request path contains an empty segment ("//")');
    let d: string;
    try {
      d = decodeURIComponent(seg);
    } catch {
      bad('request path contains invalid percent-encoding');
    }
    if (d === '.' || d === '..') bad('request path contains a "." or ".." segment');
    if (d.includes('%') && decodesToSeparator(d)) bad('request path contains a doubly percent-encoded ".", "..", "/", "\\" or ";", which an upstream that decodes again resolves differently');
    if (d.includes(';')) bad('request path contains ";", a path parameter some servers strip before routing (/admin;x is /admin to them)');
    if (CONTROL_DECODED.test(d)) bad('request path contains a percent-encoded control character');
    const n = d.normalize('NFKC');
    if (n !== d && (n === '.' || n === '..' || n.includes('/') || n.includes('\\'))) bad('request path contains a segment that Unicode normalisation turns into a dot segment or a separator');
    decoded.push(d);
  }
  return { path: `/${decoded.join('/')}`, rawPath, rawQuery, query: parseQuery(rawQuery) };
}

/** Whether decoding `segment` once more yields a dot segment, a separator, a path parameter or NUL. */
function decodesToSeparator(segment: string): boolean {
  let again: string;
  try {
    again = decodeURIComponent(segment);
  } catch {
    return false;
  }
  return again === '.' || again === '..' || /[/\\;\u0000]/.test(again);
}

export function parseQuery(rawQuery: string): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  if (rawQuery === '') return out;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeForm(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeForm(part.slice(eq + 1));
    (out[k] ??= []).push(v);
  }
  return out;
}

function decodeForm(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    bad('query string contains invalid percent-encoding');
  }
}
