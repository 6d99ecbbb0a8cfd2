/**
 * Facts of one Kubernetes request as CEL sees them under `k8s.`: `verb`, `apiGroup`, `apiVersion`,
 * `resource`, `subresource`, `namespace`, `name`, `path`, `isResourceRequest`, and `verbs` (the
 * effective verbs, see verbs.ts).
 */
import type { Action } from '../../pipeline/types.js';
import type { K8sRequestInfo } from './request-info.js';
import { effectiveK8sVerbs } from './verbs.js';

export interface K8sFacts extends K8sRequestInfo {
  readonly verbs: readonly string[];
}

export function k8sFacts(info: K8sRequestInfo): K8sFacts {
  return { ...info, verbs: effectiveK8sVerbs(info) };
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

export function k8sAction(connection: string, info: K8sRequestInfo, text: string): Action {
  const facts = k8sFacts(info);
  return {
    connection,
    kind: 'k8s',
    verb: info.verb,
    objects: [k8sObject(info)],
    text,
    k8s: facts as unknown as Readonly<Record<string, unknown>>,
  };
}
