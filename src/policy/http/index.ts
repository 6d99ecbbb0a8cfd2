/** HTTP request facts and rule vocabulary for the policy engine. */
export { compilePathPattern } from './path-pattern.js';
export type { PathPattern } from './path-pattern.js';
export { parseRequestTarget, parseQuery } from './request-target.js';
export type { RequestTarget } from './request-target.js';
export { httpFacts, httpAction, readJsonBody, METHOD_PARAMETER } from './facts.js';
export type { HttpFacts } from './facts.js';
export { HTTP_METHODS, HTTP_ALIASES, isHttpMethod, expandHttpRuleList } from './verbs.js';
export type { HttpMethod } from './verbs.js';
