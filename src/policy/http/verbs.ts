/**
 * What rule lists may name for HTTP connections: request methods (case-insensitive) and two
 * aliases. `read` is the safe methods of RFC 9110 §9.2.1 except TRACE, which echoes the request.
 */
import { SluiceError } from '../../errors.js';
import type { VerbList } from '../vocabulary.js';

export const HTTP_METHODS = ['get', 'head', 'options', 'post', 'put', 'patch', 'delete', 'trace', 'connect'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const HTTP_ALIASES: Readonly<Record<string, readonly HttpMethod[]>> = {
  read: ['get', 'head', 'options'],
  write: ['post', 'put', 'patch', 'delete'],
};

const METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

export function isHttpMethod(name: string): name is HttpMethod {
  return METHODS.has(name);
}

/** `strict`: the policy is for an HTTP connection, so a name that is no method is a typo. */
export function expandHttpRuleList(list: '*' | readonly string[], where: string, strict: boolean): VerbList {
  if (list === '*') return '*';
  const out = new Set<string>();
  list.forEach((entry, i) => {
    const name = entry.trim().toLowerCase();
    if (name === '*') {
      out.add('*');
      return;
    }
    const alias = Object.hasOwn(HTTP_ALIASES, name) ? HTTP_ALIASES[name] : undefined;
    if (alias !== undefined) {
      for (const m of alias) out.add(m);
      return;
    }
    if (isHttpMethod(name) || !strict) {
      out.add(name);
      return;
    }
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}[${i}]: unknown HTTP method "${entry}" (expected '*', read, write or one of ${HTTP_METHODS.join(', ')})`);
  });
  return out.has('*') ? '*' : out;
}
