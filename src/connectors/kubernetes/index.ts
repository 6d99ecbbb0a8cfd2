/** The Kubernetes API engine. */
export { createKubernetesEngine } from './engine.js';
export { maskKubernetesValue, LAST_APPLIED, SECRET_MARK, SECRET_MARK_B64 } from './secrets.js';
export type { K8sMaskOptions } from './secrets.js';
export { narrowAccept } from './accept.js';
export { statusBody } from './status.js';
export { isArchiveExec } from './stream-proxy.js';
