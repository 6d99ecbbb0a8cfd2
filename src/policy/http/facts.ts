/**
 * Request facts of one HTTP request, as CEL sees them under `http.`: `http.method` (upper case),
 * `http.methodOverrides` (methods the request asks the upstream to take instead, see below),
 * `http.path` (decoded), `http.query` (first value of each parameter), `http.queryAll` (every
 * value), `http.headers` (lower-cased names), `http.host`, `http.upgrade` (`websocket` for a
 * WebSocket upgrade, else ''), and `http.json` (the request body read
 * as JSON, only on connections whose rules use it). Credentials never become facts:
 * `authorization`, `proxy-authorization`, `cookie` and Sluice's own `x-sluice-*` headers are left out.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import { SluiceError } from '../../errors.js';
import { hasDuplicateKey } from '../../masking/json-splice.js';
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
  /**
   * The protocol the request asks to switch to (`Connection: upgrade` with `Upgrade: websocket`),
   * lower case; '' for an ordinary request. A WebSocket upgrade is decided as its method and as
   * `websocket`, so an allow rule must name `websocket` (or `*`): `read` does not open a two-way
   * channel.
   */
  readonly upgrade: string;
  /**
   * The request body as JSON (a JSON-RPC call, an MCP `tools/call`, a GraphQL request), read
   * before deciding on connections whose rules name `http.json`; absent when there is no body or
   * it is not JSON.
   */
  readonly json?: unknown;
}

const HIDDEN_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'host']);

/** The most calls of a JSON-RPC batch body (each decided on its own) when rules read `http.json`. */
const MAX_BATCH_CALLS = 100;

/**
 * A request body as JSON, for `http.json`. Read whatever its Content-Type says (JSON-RPC servers
 * often ignore it): a body that starts like JSON (`{` or `[`, after whitespace and a byte-order
 * mark) must parse, as UTF-8 and without a repeated key, since upstream parsers disagree on such
 * a key's value; otherwise the request is refused (400). Other bodies have no `http.json`.
 */
export function readJsonBody(body: Buffer): { readonly value?: unknown; readonly error?: SluiceError } {
  let start = 0;
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) start = 3;
  while (start < body.length && (body[start] === 0x20 || body[start] === 0x09 || body[start] === 0x0a || body[start] === 0x0d)) start++;
  if (body[start] !== 0x7b && body[start] !== 0x5b) return {};
  const refuse = (why: string): { error: SluiceError } => ({ error: new SluiceError('SLUICE_BAD_REQUEST', `the request body looks like JSON but ${why}; this connection's rules read it, so it must be JSON that every parser reads alike`) });
  if (!isUtf8(body)) return refuse('is not UTF-8');
  const text = body.toString('utf8', start);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return refuse(`does not parse (${err instanceof Error ? err.message : String(err)})`);
  }
  if (hasDuplicateKey(text, value)) return refuse('repeats a key in an object');
  // Each call of a JSON-RPC batch is decided on its own (policy/engine.ts): bounded.
  if (isJsonRpcBatch(value) && value.length > MAX_BATCH_CALLS) return refuse(`is a JSON-RPC batch of ${value.length} calls, more than the ${MAX_BATCH_CALLS} decided one by one`);
  return { value };
}

/** An array of JSON-RPC calls: objects that each name a `method`. */
export function isJsonRpcBatch(json: unknown): json is readonly unknown[] {
  return Array.isArray(json) && json.length > 0 && json.every((c) => c !== null && typeof c === 'object' && !Array.isArray(c) && typeof (c as { method?: unknown }).method === 'string');
}

/** Headers that ask a server to take another method than the request line's. */
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;
/** The form and query parameter Rails, Laravel and Symfony read as the method. */
export const METHOD_PARAMETER = '_method';

/**
 * `formMethods`: `_method` values of a form body (`application/x-www-form-urlencoded`), which the
 * connector reads before deciding a request that has one.
 */
export function httpFacts(method: string, target: RequestTarget, headers: IncomingHttpHeaders, formMethods: readonly string[] = [], json?: unknown): HttpFacts {
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
  return { method: upper, methodOverrides: [...overrides], path: target.path, query, queryAll: { ...target.query }, headers: shown, host: headers.host ?? '', upgrade: upgradeOf(headers), ...(json !== undefined ? { json } : {}) };
}

/** The protocol named by `Upgrade` when `Connection` lists `upgrade` (as Node routes such a request), lower case. */
function upgradeOf(headers: IncomingHttpHeaders): string {
  const connection = headers.connection;
  const upgrade = headers.upgrade;
  if (connection === undefined || upgrade === undefined) return '';
  if (!String(connection).split(',').some((t) => t.trim().toLowerCase() === 'upgrade')) return '';
  return (String(upgrade).split(',')[0] ?? '').trim().toLowerCase();
}

/**
 * What a JSON-RPC body asks for, for the command text a reviewer and the audit log see: each
 * call's method and, for MCP's `tools/call`, `prompts/get` and `resources/read`, the tool, prompt
 * or resource it names (`tools/call delete_file`). Empty when the body is not JSON-RPC.
 */
function jsonRpcSummary(json: unknown): string {
  const calls = Array.isArray(json) ? json : [json];
  const parts: string[] = [];
  for (const call of calls.slice(0, 8)) {
    if (call === null || typeof call !== 'object' || Array.isArray(call)) continue;
    const { method, params } = call as { method?: unknown; params?: unknown };
    if (typeof method !== 'string') continue;
    const p = params !== null && typeof params === 'object' ? (params as { name?: unknown; uri?: unknown }) : {};
    const target = typeof p.name === 'string' ? p.name : typeof p.uri === 'string' ? p.uri : '';
    parts.push(`${method}${target === '' ? '' : ` ${target}`}`.slice(0, 120));
  }
  if (calls.length > 8 && parts.length > 0) parts.push(`… ${calls.length - 8} more`);
  return parts.join('; ');
}

function rpcText(json: unknown): string {
  if (json === undefined) return '';
  const summary = jsonRpcSummary(json);
  return summary === '' ? '' : ` (jsonrpc: ${summary})`;
}

/** The Action the HTTP connector hands to `decide`. */
export function httpAction(connection: string, facts: HttpFacts, rawQuery: string): Action {
  return {
    connection,
    kind: 'http',
    verb: facts.method,
    objects: [facts.path],
    // A reviewer, the audit log and the approval binding see the override and the JSON-RPC call too.
    text: `${facts.method} ${facts.path}${rawQuery === '' ? '' : `?${rawQuery}`}${facts.upgrade !== '' ? ` (upgrade: ${facts.upgrade})` : ''}${facts.methodOverrides.length > 0 ? ` (method override: ${facts.methodOverrides.join(', ')})` : ''}${rpcText(facts.json)}`,
    http: facts as unknown as Readonly<Record<string, unknown>>,
  };
}
