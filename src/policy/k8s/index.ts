/** Kubernetes request attributes (as the API server derives them) and rule vocabulary. */
export { parseRequestInfo } from './request-info.js';
export type { K8sRequestInfo } from './request-info.js';
export { effectiveK8sVerbs, expandK8sRuleList, K8S_VERBS, K8S_ALIASES } from './verbs.js';
export { k8sFacts, k8sAction, k8sObject, k8sPatchType, k8sResourceLabel, readK8sObject } from './facts.js';
export type { K8sFacts } from './facts.js';
