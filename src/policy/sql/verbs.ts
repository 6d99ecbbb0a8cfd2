/**
 * Effective verbs: what a statement can actually do, as opposed to the one kind its top node
 * has. `WITH d AS (DELETE …) SELECT …` is kind `select` with verbs {select, delete};
 * `SELECT nextval('s')` has verbs {select, side-effect}. Policy rules are matched on verbs, so an
 * allow-list of reads can never let a write through under a read's kind.
 */
import { SQL_KINDS, type SqlKind } from '../../pipeline/types.js';

export const SQL_VERBS = [
  ...SQL_KINDS,
  /** SHOW: reads one setting (reported as kind `utility`). */
  'show',
  /** Calls a function outside the read-only allow-list, or COPY to/from a server file or program. */
  'side-effect',
] as const;

export type SqlVerb = SqlKind | 'show' | 'side-effect';

const VERB_SET: ReadonlySet<string> = new Set(SQL_VERBS);

export function isSqlVerb(value: string): value is SqlVerb {
  return VERB_SET.has(value);
}
