/**
 * Sluice decides on SQL as libpg-query parses it: UTF-8 text with `standard_conforming_strings`
 * on. The server parses with the session's own settings, so a session that changes either would
 * read the same bytes differently, and a statement Sluice saw as one harmless SELECT could run a
 * DELETE:
 *
 * - `standard_conforming_strings = off` makes `\` an escape in ordinary literals:
 *   `SELECT 'x\''; DELETE FROM t; --'` is one literal to the parser, a SELECT and a DELETE to the server;
 * - a client encoding whose multi-byte characters can contain ASCII bytes (SJIS, BIG5, GBK, UHC,
 *   GB18030, JOHAB: PostgreSQL's client-only encodings) hides a `\` inside a character:
 *   `E'<0x95 0x5C>' ; DELETE …` (CVE-2006-2314 is the same class of bug).
 *
 * Every server-side encoding is ASCII-safe (no byte below 0x80 inside a multi-byte character), so
 * quotes, backslashes and semicolons are where the parser sees them. These checks hold for every
 * role, before any rule; the PostgreSQL connector also refuses such a client encoding at startup
 * and ends a session whose server reports either setting changed anyway (ParameterStatus).
 * https://www.postgresql.org/docs/current/multibyte.html#MULTIBYTE-CHARSET-SUPPORTED
 */
import type { SqlFacts } from '../../pipeline/types.js';

/**
 * Client encodings whose bytes below 0x80 are always ASCII (PostgreSQL's server encodings), by
 * PostgreSQL's own names and aliases, normalised as it does (lower case, letters and digits only).
 */
const ASCII_SAFE_ENCODINGS: ReadonlySet<string> = new Set([
  'utf8', 'unicode', 'sqlascii', 'muleinternal',
  'euccn', 'eucjp', 'eucjis2004', 'euckr', 'euctw',
  'latin1', 'latin2', 'latin3', 'latin4', 'latin5', 'latin6', 'latin7', 'latin8', 'latin9', 'latin10',
  'iso88591', 'iso88592', 'iso88593', 'iso88594', 'iso88595', 'iso88596', 'iso88597', 'iso88598', 'iso88599',
  'iso885910', 'iso885913', 'iso885914', 'iso885915', 'iso885916',
  'koi8', 'koi8r', 'koi8u', 'alt', 'win', 'abc', 'tcvn', 'tcvn5712', 'vscii',
  'win866', 'win874', 'win1250', 'win1251', 'win1252', 'win1253', 'win1254', 'win1255', 'win1256', 'win1257', 'win1258',
  'windows866', 'windows874', 'windows1250', 'windows1251', 'windows1252', 'windows1253', 'windows1254',
  'windows1255', 'windows1256', 'windows1257', 'windows1258',
]);

/** Settings that change how the server reads statement text. */
const LEXICAL_SETTINGS: ReadonlySet<string> = new Set(['standard_conforming_strings', 'client_encoding']);

/** True for a client encoding name (any spelling PostgreSQL accepts) whose multi-byte characters never contain ASCII bytes. */
export function isAsciiSafeEncoding(name: string): boolean {
  return ASCII_SAFE_ENCODINGS.has(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

/** PostgreSQL's boolean spellings for true: `on`, `1`, and prefixes of `true` and `yes`. */
export function isTrueSetting(value: string): boolean {
  const v = value.trim().toLowerCase();
  return v === 'on' || v === '1' || (v.length > 0 && ('true'.startsWith(v) || 'yes'.startsWith(v)));
}

/**
 * Why a server-reported setting (startup or ParameterStatus) means statements would no longer be
 * parsed as Sluice parses them; undefined when it is safe.
 */
export function unsafeServerSetting(name: string, value: string): string | undefined {
  const n = name.toLowerCase();
  if (n === 'standard_conforming_strings' && !isTrueSetting(value)) {
    return `the server reports standard_conforming_strings = ${value}; Sluice parses SQL with it on`;
  }
  if (n === 'client_encoding' && !isAsciiSafeEncoding(value)) {
    return `the server reports client_encoding = ${value}, an encoding whose characters can contain ASCII bytes; use UTF8`;
  }
  return undefined;
}

type Facts = SqlFacts & { readonly settingValues?: readonly string[]; readonly configNames?: readonly string[] };

/** Why `facts` would make the server parse later statements differently from Sluice, or undefined. */
export function parserSafetyViolation(facts: Facts): string | undefined {
  if (facts.kind === 'set' && facts.setting !== undefined && facts.settingValues !== undefined) {
    const values = facts.settingValues;
    if (facts.setting === 'standard_conforming_strings' && !(values.length === 1 && isTrueSetting(values[0] as string))) {
      return 'standard_conforming_strings must stay on: with it off the server would read backslashes in string literals differently from Sluice';
    }
    if (facts.setting === 'client_encoding' && !(values.length === 1 && isAsciiSafeEncoding(values[0] as string))) {
      return `client encoding ${values.join(', ')} can hide quote or backslash bytes inside characters; use UTF8 or another server encoding`;
    }
  }
  for (const name of facts.configNames ?? []) {
    if (name === '?') return 'set_config() with a setting name that is not a constant could change how the server reads statements';
    if (LEXICAL_SETTINGS.has(name)) return `set_config('${name}', …) would change how the server reads statements; Sluice parses them with the session's settings fixed`;
  }
  for (const table of facts.tablesWritten) {
    if (table === 'pg_settings' || table === 'pg_catalog.pg_settings') return 'writing pg_settings changes session settings, including how the server reads statements';
  }
  return undefined;
}
