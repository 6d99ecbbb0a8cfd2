/**
 * Facts of one Kubernetes request as CEL sees them under `k8s.`: `verb`, `apiGroup`, `apiVersion`,
 * `resource`, `subresource`, `namespace`, `name`, `path`, `isResourceRequest`, `verbs` (the
 * effective verbs, see verbs.ts), `patchType` for a patch, and `object` (the body of a create,
 * update or patch, only on connections whose rules use it).
 */
import { parse as parseYaml } from 'yaml';
import { SluiceError } from '../../errors.js';
import type { Action } from '../../pipeline/types.js';
import { readJsonBody } from '../http/facts.js';
import type { K8sRequestInfo } from './request-info.js';
import { effectiveK8sVerbs } from './verbs.js';

export interface K8sFacts extends K8sRequestInfo {
  readonly verbs: readonly string[];
  /** A PATCH's kind by its Content-Type: `json` (RFC 6902 operations), `merge`, `strategic`, `apply` (server-side apply); else absent. */
  readonly patchType?: string;
  /**
   * The request body of a create, update or patch (a manifest, or the patch document), read before
   * deciding on connections whose rules name `k8s.object`: admission-style rules such as "no
   * privileged containers".
   */
  readonly object?: unknown;
}

const PATCH_TYPES: Readonly<Record<string, string>> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

/** The patch kind a PATCH's Content-Type names (PATCH_TYPES, else `other`); undefined for other methods or no type. */
export function k8sPatchType(method: string, contentType: string | undefined): string | undefined {
  if (method !== 'PATCH' || contentType === undefined) return undefined;
  return PATCH_TYPES[contentType.split(';')[0]!.trim().toLowerCase()] ?? 'other';
}

/**
 * The body of a Kubernetes write as `k8s.object`: JSON (any `…json` type), or YAML for server-side
 * apply, read as the API server would. Anything else (protobuf, CBOR), and JSON or YAML that
 * parsers could read differently (a repeated key, a body that does not parse), is refused: where
 * rules read the object, a body they cannot see must not pass.
 */
export function readK8sObject(body: Buffer, contentType: string | undefined): { readonly value?: unknown; readonly error?: SluiceError } {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const refuse = (why: string): { error: SluiceError } => ({ error: new SluiceError('SLUICE_BAD_REQUEST', `the request body ${why}; this connection's rules read the object, so send it as JSON (or YAML for server-side apply)`) });
  if (type === 'application/apply-patch+yaml') {
    let value: unknown;
    try {
      // YAML 1.1, as the API server's go-yaml reads it (`privileged: yes` is true there).
      value = parseYaml(body.toString('utf8'), { version: '1.1', uniqueKeys: true, maxAliasCount: 0 });
    } catch (err) {
      return refuse(`is YAML Sluice cannot read (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
    }
    return value !== null && typeof value === 'object' ? { value } : refuse('is not a YAML object');
  }
  if (type !== 'application/json' && !type.endsWith('+json')) return refuse(`is ${type === '' ? 'of no declared type' : type}`);
  const json = readJsonBody(body);
  if (json.error !== undefined) return json;
  return json.value !== undefined ? json : refuse('is not a JSON object or array');
}

export function k8sFacts(info: K8sRequestInfo, body?: { readonly patchType?: string; readonly object?: unknown }): K8sFacts {
  return { ...info, verbs: effectiveK8sVerbs(info), ...(body?.patchType !== undefined ? { patchType: body.patchType } : {}), ...(body?.object !== undefined ? { object: body.object } : {}) };
}

/** `resource[/subresource]` qualified by group, e.g. `apps/deployments`, `pods/log`. */
export function k8sResourceLabel(info: K8sRequestInfo): string {
  const res = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  return info.apiGroup === '' ? res : `${info.apiGroup}/${res}`;
}

/** The object an audit record names: `pods/web-0 -n default`, or the URL for non-resource requests. */
export function k8sObject(info: K8sRequestInfo): string {
  if (!info.isResourceRequest) return info.path;
  const ns = info.namespace === '' ? '' : `namespaces/${info.namespace}/`;
  return `${ns}${k8sResourceLabel(info)}${info.name === '' ? '' : `/${info.name}`}`;
}

export function k8sAction(connection: string, info: K8sRequestInfo, text: string, body?: { readonly patchType?: string; readonly object?: unknown }): Action {
  const facts = k8sFacts(info, body);
  return {
    connection,
    kind: 'k8s',
    verb: info.verb,
    objects: [k8sObject(info)],
    text,
    k8s: facts as unknown as Readonly<Record<string, unknown>>,
  };
}
