/**
 * What a rule list (`allow: […]`, `deny: […]`, `review: […]`) may name for SQL connections:
 * every SQL kind except `unknown`, the extra verbs `show` and `side-effect`, the aliases below,
 * and `'*'` (every verb). Names are case-insensitive.
 */
import { SluiceError } from '../errors.js';
import { isSqlVerb, type SqlVerb } from './sql/verbs.js';

export const RULE_ALIASES: Readonly<Record<string, readonly SqlVerb[]>> = {
  /** Reading data and plans: SELECT (and cursors), EXPLAIN without ANALYZE of a write, SHOW. */
  read: ['select', 'explain', 'show'],
  /** Changing rows. COPY FROM also needs `copy`; TRUNCATE is `ddl` plus `delete`. */
  write: ['insert', 'update', 'delete', 'merge'],
};

/**
 * Verbs that cannot change data or undo a read-only session by themselves. A role whose allow and
 * review rules name only these is read-only (`isReadOnly`), so its upstream session can be
 * pinned read-only too. `set` and `transaction` stay here because the read-only guard denies the
 * forms of them that would lift read-only mode; `prepare` because a PREPAREd body adds its own
 * verbs.
 */
export const READ_ONLY_VERBS: ReadonlySet<string> = new Set<SqlVerb>(['select', 'explain', 'show', 'set', 'transaction', 'prepare']);

export type VerbList = '*' | ReadonlySet<string>;

/**
 * Expand a rule list. `strictSql`: names must be SQL verbs or aliases (the policy is for a
 * PostgreSQL connection); otherwise unknown names are kept lower-cased for other protocols.
 */
export function expandRuleList(list: '*' | readonly string[], where: string, strictSql: boolean): VerbList {
  if (list === '*') return '*';
  const out = new Set<string>();
  list.forEach((entry, i) => {
    const name = entry.trim().toLowerCase();
    if (name === '*') {
      out.add('*');
      return;
    }
    if (name === 'unknown') {
      throw new SluiceError(
        'SLUICE_CONFIG_INVALID',
        `${where}[${i}]: "unknown" cannot be named: statements that do not parse or are not recognised are always denied`,
      );
    }
    const alias = RULE_ALIASES[name];
    if (alias !== undefined && Object.hasOwn(RULE_ALIASES, name)) {
      for (const v of alias) out.add(v);
      return;
    }
    if (isSqlVerb(name) || !strictSql) {
      out.add(name);
      return;
    }
    throw new SluiceError(
      'SLUICE_CONFIG_INVALID',
      `${where}[${i}]: unknown SQL kind "${entry}" (expected '*', read, write, show, side-effect or one of select, insert, update, delete, merge, ddl, dcl, copy, call, do, set, transaction, explain, prepare, execute, listen, lock, utility)`,
    );
  });
  return out.has('*') ? '*' : out;
}
