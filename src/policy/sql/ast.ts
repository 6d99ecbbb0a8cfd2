/** Reading libpg-query's JSON parse tree, shared by the statement walk (facts.ts) and json-keys.ts. */

export type Obj = Record<string, unknown>;

/** `v` as a node object, or undefined for anything else (an array, a scalar, null). */
export function asObject(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

/** `v` as a list, or empty when it is not one (an absent field). */
export function listOf(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}
