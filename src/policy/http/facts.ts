/**
 * Request facts of one HTTP request, as CEL sees them under `http.`: `http.method` (upper case),
 * `http.path` (decoded), `http.query` (first value of each parameter), `http.queryAll` (every
 * value), `http.headers` (lower-cased names) and `http.host`. Credentials never become facts:
 * `authorization`, `proxy-authorization`, `cookie` and Sluice's own `x-sluice-*` headers are left out.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Action } from '../../pipeline/types.js';
import type { RequestTarget } from './request-target.js';

export interface HttpFacts {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly queryAll: Readonly<Record<string, readonly string[]>>;
  readonly headers: Readonly<Record<string, string>>;
  readonly host: string;
}

const HIDDEN_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'host']);

export function httpFacts(method: string, target: RequestTarget, headers: IncomingHttpHeaders): HttpFacts {
  const query: Record<string, string> = {};
  for (const [k, vs] of Object.entries(target.query)) query[k] = vs[0] ?? '';
  const shown: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HIDDEN_HEADERS.has(k) || k.startsWith('x-sluice-')) continue;
    shown[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return { method: method.toUpperCase(), path: target.path, query, queryAll: { ...target.query }, headers: shown, host: headers.host ?? '' };
}

/** The Action the HTTP connector hands to `decide`. */
export function httpAction(connection: string, facts: HttpFacts, rawQuery: string): Action {
  return {
    connection,
    kind: 'http',
    verb: facts.method,
    objects: [facts.path],
    text: `${facts.method} ${facts.path}${rawQuery === '' ? '' : `?${rawQuery}`}`,
    http: facts as unknown as Readonly<Record<string, unknown>>,
  };
}
