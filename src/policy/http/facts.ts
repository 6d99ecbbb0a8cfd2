/**
 * Request facts of one HTTP request, as CEL sees them under `http.`: `http.method` (upper case),
 * `http.methodOverrides` (methods the request asks the upstream to take instead, see below),
 * `http.path` (decoded), `http.query` (first value of each parameter), `http.queryAll` (every
 * value), `http.headers` (lower-cased names) and `http.host`. Credentials never become facts:
 * `authorization`, `proxy-authorization`, `cookie` and Sluice's own `x-sluice-*` headers are left out.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Action } from '../../pipeline/types.js';
import type { RequestTarget } from './request-target.js';

export interface HttpFacts {
  readonly method: string;
  /**
   * Methods named by a method override (`X-HTTP-Method-Override: DELETE`, `X-HTTP-Method`,
   * `X-Method-Override`, a `_method` query or form parameter), upper case, without the method
   * itself. Many frameworks (Express's method-override, Rails, Laravel, Symfony, ASP.NET, Google
   * APIs) run the overriding method, so a request is decided as every one of its methods: an
   * allow rule must list them all, a deny or review rule any.
   */
  readonly methodOverrides: readonly string[];
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly queryAll: Readonly<Record<string, readonly string[]>>;
  readonly headers: Readonly<Record<string, string>>;
  readonly host: string;
}

const HIDDEN_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'host']);

/** Headers that ask a server to take another method than the request line's. */
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;
/** The form and query parameter Rails, Laravel and Symfony read as the method. */
export const METHOD_PARAMETER = '_method';

/**
 * `formMethods`: `_method` values of a form body (`application/x-www-form-urlencoded`), which the
 * connector reads before deciding a request that has one.
 */
export function httpFacts(method: string, target: RequestTarget, headers: IncomingHttpHeaders, formMethods: readonly string[] = []): HttpFacts {
  const query: Record<string, string> = {};
  for (const [k, vs] of Object.entries(target.query)) query[k] = vs[0] ?? '';
  const shown: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HIDDEN_HEADERS.has(k) || k.startsWith('x-sluice-')) continue;
    shown[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const upper = method.toUpperCase();
  const overrides = new Set<string>();
  const add = (value: string): void => {
    for (const m of value.split(',')) {
      const v = m.trim().toUpperCase();
      if (v !== '' && v !== upper) overrides.add(v);
    }
  };
  for (const h of OVERRIDE_HEADERS) {
    const v = headers[h];
    if (typeof v === 'string') add(v);
    else if (Array.isArray(v)) v.forEach(add);
  }
  for (const v of target.query[METHOD_PARAMETER] ?? []) add(v);
  formMethods.forEach(add);
  return { method: upper, methodOverrides: [...overrides], path: target.path, query, queryAll: { ...target.query }, headers: shown, host: headers.host ?? '' };
}

/** The Action the HTTP connector hands to `decide`. */
export function httpAction(connection: string, facts: HttpFacts, rawQuery: string): Action {
  return {
    connection,
    kind: 'http',
    verb: facts.method,
    objects: [facts.path],
    // A reviewer, the audit log and the approval binding see the override too.
    text: `${facts.method} ${facts.path}${rawQuery === '' ? '' : `?${rawQuery}`}${facts.methodOverrides.length > 0 ? ` (method override: ${facts.methodOverrides.join(', ')})` : ''}`,
    http: facts as unknown as Readonly<Record<string, unknown>>,
  };
}
