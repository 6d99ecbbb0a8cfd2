/**
 * What rule lists may name for Kubernetes connections: the API server's verbs, the HTTP-method
 * verbs of non-resource URLs, and two aliases.
 */
import { expandVerbList, type VerbList, type VerbVocabulary } from '../vocabulary.js';
import type { K8sRequestInfo } from './request-info.js';

export const K8S_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy', 'head', 'post', 'put', 'options'] as const;

export const K8S_ALIASES: Readonly<Record<string, readonly string[]>> = {
  read: ['get', 'list', 'watch', 'head', 'options'],
  write: ['create', 'update', 'patch', 'delete', 'deletecollection', 'post', 'put'],
};

const VERBS: ReadonlySet<string> = new Set(K8S_VERBS);

/**
 * Pod subresources that open a stream into a container. Over WebSocket they arrive as GET (verb
 * `get`), which would let `allow: [get]` run commands; the API server closes that gap with a second
 * `create` check (KEP-4006, AuthorizePodWebsocketUpgradeCreatePermission), and so does Sluice.
 */
const STREAMING_POD_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/** The verbs a request needs a rule for: RequestInfo's verb, plus `create` for pod exec/attach/portforward. */
export function effectiveK8sVerbs(info: K8sRequestInfo): readonly string[] {
  if (info.isResourceRequest && info.apiGroup === '' && info.resource === 'pods' && STREAMING_POD_SUBRESOURCES.has(info.subresource) && info.verb !== 'create') {
    return [info.verb, 'create'];
  }
  return [info.verb];
}

const K8S_VOCABULARY: VerbVocabulary = {
  noun: 'Kubernetes verb',
  aliases: K8S_ALIASES,
  isVerb: (name) => VERBS.has(name),
  expected: `'*', read, write or one of ${K8S_VERBS.join(', ')}`,
};

export function expandK8sRuleList(list: '*' | readonly string[], where: string, strict: boolean): VerbList {
  return expandVerbList(list, where, strict, K8S_VOCABULARY);
}
