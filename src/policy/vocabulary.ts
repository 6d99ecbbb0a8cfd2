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

/** What a protocol's rule lists may name: its verbs, its aliases, and how to say what was expected. */
export interface VerbVocabulary {
  /** e.g. `SQL kind`, `HTTP method`, used in errors. */
  readonly noun: string;
  readonly aliases: Readonly<Record<string, readonly string[]>>;
  readonly isVerb: (name: string) => boolean;
  /** The tail of the error: `'*', read, write or one of …`. */
  readonly expected: string;
  /** Names that are verbs but may never be listed (throws with the reason). */
  readonly forbid?: (name: string) => string | undefined;
}

/**
 * Expand a rule list with a protocol's vocabulary. `strict`: the policy is for a connection of
 * that protocol, so a name outside it is a typo (SLUICE_CONFIG_INVALID naming the entry);
 * otherwise unknown names are kept lower-cased for other protocols.
 */
export function expandVerbList(list: '*' | readonly string[], where: string, strict: boolean, vocab: VerbVocabulary): VerbList {
  if (list === '*') return '*';
  const out = new Set<string>();
  list.forEach((entry, i) => {
    const name = entry.trim().toLowerCase();
    if (name === '*') {
      out.add('*');
      return;
    }
    const forbidden = vocab.forbid?.(name);
    if (forbidden !== undefined) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}[${i}]: ${forbidden}`);
    const alias = Object.hasOwn(vocab.aliases, name) ? vocab.aliases[name] : undefined;
    if (alias !== undefined) {
      for (const v of alias) out.add(v);
      return;
    }
    if (vocab.isVerb(name) || !strict) {
      out.add(name);
      return;
    }
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}[${i}]: unknown ${vocab.noun} "${entry}" (expected ${vocab.expected})`);
  });
  return out.has('*') ? '*' : out;
}

const SQL_VOCABULARY: VerbVocabulary = {
  noun: 'SQL kind',
  aliases: RULE_ALIASES,
  isVerb: isSqlVerb,
  expected: "'*', read, write, show, side-effect or one of select, insert, update, delete, merge, ddl, dcl, copy, call, do, set, transaction, explain, prepare, execute, listen, lock, utility",
  forbid: (name) => (name === 'unknown' ? '"unknown" cannot be named: statements that do not parse or are not recognised are always denied' : undefined),
};

/**
 * Expand a rule list. `strictSql`: names must be SQL verbs or aliases (the policy is for a
 * PostgreSQL connection); otherwise unknown names are kept lower-cased for other protocols.
 */
export function expandRuleList(list: '*' | readonly string[], where: string, strictSql: boolean): VerbList {
  return expandVerbList(list, where, strictSql, SQL_VOCABULARY);
}
