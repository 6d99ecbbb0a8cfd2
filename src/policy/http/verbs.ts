/**
 * What rule lists may name for HTTP connections: request methods (case-insensitive), `websocket`
 * (a WebSocket upgrade, decided as its method and as `websocket`) and two aliases. `read` is the
 * safe methods of RFC 9110 §9.2.1 except TRACE, which echoes the request; neither alias opens a
 * WebSocket.
 */
import { expandVerbList, type VerbList, type VerbVocabulary } from '../vocabulary.js';

export const HTTP_METHODS = ['get', 'head', 'options', 'post', 'put', 'patch', 'delete', 'trace', 'connect', 'websocket'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const HTTP_ALIASES: Readonly<Record<string, readonly HttpMethod[]>> = {
  read: ['get', 'head', 'options'],
  write: ['post', 'put', 'patch', 'delete'],
};

const METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

export function isHttpMethod(name: string): name is HttpMethod {
  return METHODS.has(name);
}

const HTTP_VOCABULARY: VerbVocabulary = {
  noun: 'HTTP method',
  aliases: HTTP_ALIASES,
  isVerb: isHttpMethod,
  expected: `'*', read, write or one of ${HTTP_METHODS.join(', ')}`,
};

/** `strict`: the policy is for an HTTP connection, so a name that is no method is a typo. */
export function expandHttpRuleList(list: '*' | readonly string[], where: string, strict: boolean): VerbList {
  return expandVerbList(list, where, strict, HTTP_VOCABULARY);
}
