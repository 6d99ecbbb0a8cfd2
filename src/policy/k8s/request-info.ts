/**
 * Kubernetes request attributes, derived exactly as the API server derives them for authorization:
 * a port of `RequestInfoFactory.NewRequestInfo` (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go,
 * https://github.com/kubernetes/apiserver/blob/master/pkg/endpoints/request/requestinfo.go).
 *
 * - `/api/<version>/…` is the core group (`apiGroup` ''); `/apis/<group>/<version>/…` named groups.
 * - Paths with fewer parts, or outside `/api` and `/apis`, are non-resource requests whose verb is
 *   the lower-cased HTTP method (`/version`, `/openapi/v2`, `/api`, `/apis/apps/v1` discovery).
 * - `/namespaces/<ns>/<resource>/…` sets the namespace; `namespaces/<ns>/status|finalize` are
 *   subresources of the namespace itself.
 * - GET without a name is `list`, or `watch` when `?watch=` parses as true (or fails to parse as a
 *   bool — the server's fallback); DELETE without a name is `deletecollection`.
 * - A `fieldSelector` that pins `metadata.name` names the object of a list/watch.
 * - The deprecated `/watch/` and `/proxy/` path prefixes set the verb.
 */

export interface K8sRequestInfo {
  readonly isResourceRequest: boolean;
  /** The decoded request path (`/api/v1/namespaces/default/pods`). */
  readonly path: string;
  /** Lower-case verb: get, list, watch, create, update, patch, delete, deletecollection, proxy; or the HTTP method for non-resource requests. */
  readonly verb: string;
  /** `api` or `apis` ('' for non-resource requests). */
  readonly apiPrefix: string;
  /** '' for the core group. */
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
  /** Path parts from the resource on (`pods`, `web-0`, `log`). */
  readonly parts: readonly string[];
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

/** strconv.ParseBool: the spellings Go accepts. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** fields.Selector.RequiresExactMatch("metadata.name") over a selector string (`a=b,c==d`). */
function exactName(selector: string): string | undefined {
  for (const term of selector.split(',')) {
    const m = /^\s*metadata\.name\s*(==|=)\s*(.*?)\s*$/.exec(term);
    if (m !== null && !term.includes('!=')) return unescapeSelectorValue(m[2] as string);
  }
  return undefined;
}

function unescapeSelectorValue(v: string): string {
  return v.replace(/\\([\\,=])/g, '$1');
}

/** path.IsValidPathSegmentName: not `.`/`..`, no `/` or `%`. */
function isValidPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/**
 * `path` is the decoded path; `query` the decoded parameters (every value). The method is the
 * HTTP method as sent.
 */
export function parseRequestInfo(method: string, path: string, query: Readonly<Record<string, readonly string[]>>): K8sRequestInfo {
  const base = { isResourceRequest: false, path, verb: method.toLowerCase(), apiPrefix: '', apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '', parts: [] as string[] };
  let parts = splitPath(path);
  if (parts.length < 3) return base;
  const apiPrefix = parts[0] as string;
  if (!API_PREFIXES.has(apiPrefix)) return base;
  parts = parts.slice(1);
  let apiGroup = '';
  if (!GROUPLESS_API_PREFIXES.has(apiPrefix)) {
    if (parts.length < 3) return { ...base, apiPrefix };
    apiGroup = parts[0] as string;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0] as string;
  parts = parts.slice(1);

  let verb: string;
  if (SPECIAL_VERBS.has(parts[0] as string)) {
    if (parts.length < 2) {
      // The server answers this with an error; deciding it as the bare verb keeps it non-matching for resource rules.
      return { ...base, isResourceRequest: true, apiPrefix, apiGroup, apiVersion, verb: parts[0] as string };
    }
    verb = parts[0] as string;
    parts = parts.slice(1);
  } else {
    switch (method.toUpperCase()) {
      case 'POST':
        verb = 'create';
        break;
      case 'GET':
      case 'HEAD':
        verb = 'get';
        break;
      case 'PUT':
        verb = 'update';
        break;
      case 'PATCH':
        verb = 'patch';
        break;
      case 'DELETE':
        verb = 'delete';
        break;
      default:
        verb = '';
    }
  }

  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1] as string;
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] as string)) parts = parts.slice(2);
    }
  }

  let resource = '';
  let name = '';
  let subresource = '';
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb)) subresource = parts[2] as string;
  if (parts.length >= 2) name = parts[1] as string;
  if (parts.length >= 1) resource = parts[0] as string;

  if (name === '' && verb === 'get') {
    const watchValues = query.watch ?? [];
    let watch = false;
    let parseFailed = false;
    if (watchValues.length > 0) {
      const b = parseGoBool(watchValues[0] as string);
      if (b === undefined) parseFailed = true;
      else watch = b;
    }
    // ParameterCodec.DecodeParameters fails on any malformed list option; mirror the ones it types.
    for (const key of ['limit', 'timeoutSeconds']) {
      const v = query[key]?.[0];
      if (v !== undefined && !/^-?\d+$/.test(v)) parseFailed = true;
    }
    for (const key of ['allowWatchBookmarks', 'sendInitialEvents']) {
      const v = query[key]?.[0];
      if (v !== undefined && parseGoBool(v) === undefined) parseFailed = true;
    }
    if (parseFailed && watchValues.length > 0) {
      // The server resets the options and only keeps "watch unless false/0".
      const v = (watchValues[0] as string).toLowerCase();
      watch = v !== 'false' && v !== '0';
    } else if (parseFailed) {
      watch = false;
    }
    verb = watch ? 'watch' : 'list';
    const selector = query.fieldSelector?.[0];
    if (!parseFailed && selector !== undefined) {
      const n = exactName(selector);
      if (n !== undefined && isValidPathSegmentName(n)) name = n;
    }
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';

  return { isResourceRequest: true, path, verb, apiPrefix, apiGroup, apiVersion, namespace, resource, subresource, name, parts };
}
