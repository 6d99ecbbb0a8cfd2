/**
 * Sluice decides on SQL as libpg-query parses it: UTF-8 text with `standard_conforming_strings`
 * on. The server parses with the session's own settings, so a session that changes either would
 * read the same bytes differently, and a statement Sluice saw as one harmless SELECT could run a
 * DELETE:
 *
 * - `standard_conforming_strings = off` makes `\` an escape in ordinary literals:
 *   `SELECT 'x\''; DELETE FROM t; --'` is one literal to the parser, a SELECT and a DELETE to the server;
 * - a client encoding whose multi-byte characters can contain ASCII bytes (SJIS, BIG5, GBK, UHC,
 *   GB18030, JOHAB) hides a `\` inside a character: `E'<0x95 0x5C>' ; DELETE …`
 *   (CVE-2006-2314 is the same class of bug);
 * - any other encoding that is not UTF-8 (LATIN1, WIN1252, EUC_JP, …) changes dollar-quote tags:
 *   decoded as UTF-8, the LATIN1 bytes of `$ä$` and `$å$` both become `$\uFFFD$`, so Sluice closes
 *   a `$ä$` string at `$å$` while the server reads on, past a `;` Sluice saw inside a literal;
 * - a search_path that names pg_catalog after another schema lets that schema's `lower()` or
 *   `count()` shadow the built-in, and the read-only function list trusts unqualified built-in
 *   names (PostgreSQL searches pg_catalog first unless the path lists it later).
 *
 * So the only client encodings served are UTF8, and SQL_ASCII over a UTF8 database (the server
 * then checks that the bytes are valid UTF-8: what `psql` sends in the C locale). These checks
 * hold for every role, before any rule; the PostgreSQL connector also refuses other encodings at
 * startup and ends a session whose server reports either setting changed anyway (ParameterStatus).
 * https://www.postgresql.org/docs/current/multibyte.html#MULTIBYTE-AUTOMATIC-CONVERSION
 */
import type { SqlFacts } from '../../pipeline/types.js';
import type { ConfigCall } from './facts.js';

/** An encoding name as PostgreSQL compares them: lower case, letters and digits only (`UTF-8` = `utf8`). */
function normaliseEncoding(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

const UTF8_NAMES: ReadonlySet<string> = new Set(['utf8', 'unicode']);

/** Every encoding name and alias PostgreSQL accepts, normalised (src/common/encnames.c). */
const ENCODING_NAMES: ReadonlySet<string> = new Set([
  'abc', 'alt', 'big5', 'euccn', 'eucjis2004', 'eucjp', 'euckr', 'euctw', 'gb18030', 'gbk', 'iso88591',
  'iso885910', 'iso885913', 'iso885914', 'iso885915', 'iso885916', 'iso88592', 'iso88593', 'iso88594',
  'iso88595', 'iso88596', 'iso88597', 'iso88598', 'iso88599', 'johab', 'koi8', 'koi8r', 'koi8u', 'latin1',
  'latin10', 'latin2', 'latin3', 'latin4', 'latin5', 'latin6', 'latin7', 'latin8', 'latin9', 'mskanji',
  'muleinternal', 'shiftjis', 'shiftjis2004', 'sjis', 'sqlascii', 'tcvn', 'tcvn5712', 'uhc', 'unicode', 'utf8',
  'vscii', 'win', 'win1250', 'win1251', 'win1252', 'win1253', 'win1254', 'win1255', 'win1256', 'win1257',
  'win1258', 'win866', 'win874', 'win932', 'win936', 'win949', 'win950', 'windows1250', 'windows1251',
  'windows1252', 'windows1253', 'windows1254', 'windows1255', 'windows1256', 'windows1257', 'windows1258',
  'windows866', 'windows874', 'windows932', 'windows936', 'windows949', 'windows950',
]);

/**
 * Whether a search_path lists pg_catalog after another schema. `names` are schema names as SET
 * gives them (one per argument); a string is split as PostgreSQL splits the setting's text
 * (commas, double-quoted names kept as written, others lower-cased).
 */
export function shadowsCatalog(path: readonly string[] | string): boolean {
  const names = typeof path === 'string' ? splitIdentifiers(path) : path;
  return names.indexOf('pg_catalog') > 0;
}

function splitIdentifiers(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= text.length) {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    let name = '';
    if (text[i] === '"') {
      i++;
      while (i < text.length) {
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += text[i];
        i++;
      }
      while (i < text.length && text[i] !== ',') i++;
    } else {
      const end = text.indexOf(',', i);
      name = text.slice(i, end < 0 ? text.length : end).trim().toLowerCase();
      i = end < 0 ? text.length : end;
    }
    out.push(name);
    i++; // the comma
  }
  return out;
}

/**
 * Whether `set_config(name, value)` could make the server read SQL differently: by its name when
 * that is a constant, else by its value, which would have to turn standard_conforming_strings
 * off (a false boolean), name another client encoding or put a schema before pg_catalog.
 * pg_dump, for one, picks its setting by a query
 * (`set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE …`).
 */
function unsafeConfigCall(name: string, value: string): string | undefined {
  const shown = clip(value);
  if (name === 'standard_conforming_strings' && !isTrueSetting(value)) return `set_config('${name}', '${shown}') would turn off standard_conforming_strings`;
  if (name === 'client_encoding' && !UTF8_NAMES.has(normaliseEncoding(value))) return `set_config('${name}', '${shown}') would change the client encoding`;
  if (name === 'search_path' && (value === '?' || shadowsCatalog(value))) return `set_config('${name}', '${shown}') could put a schema before pg_catalog`;
  if (name !== '?') return undefined;
  if (value === '?' || isFalseSetting(value) || (ENCODING_NAMES.has(normaliseEncoding(value)) && !UTF8_NAMES.has(normaliseEncoding(value))) || shadowsCatalog(value)) {
    return 'set_config() with a setting name that is not a constant, and a value that could turn off standard_conforming_strings, change the client encoding or put a schema before pg_catalog';
  }
  return undefined;
}

/**
 * True for a client encoding (any spelling PostgreSQL accepts) under which the server reads a
 * statement's bytes as Sluice does: UTF8, or SQL_ASCII when the database is UTF8 (pass its
 * `server_encoding`; without it SQL_ASCII is accepted provisionally, as at startup, and checked
 * again once the server has reported its encoding).
 */
export function isSupportedClientEncoding(name: string, serverEncoding?: string): boolean {
  const n = normaliseEncoding(name);
  if (UTF8_NAMES.has(n)) return true;
  return n === 'sqlascii' && (serverEncoding === undefined || UTF8_NAMES.has(normaliseEncoding(serverEncoding)));
}

/** A client's value as a refusal quotes it: at most 64 characters. */
export function clip(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}

/** PostgreSQL's boolean spellings for true: `on`, `1`, and prefixes of `true` and `yes`. */
export function isTrueSetting(value: string): boolean {
  const v = value.trim().toLowerCase();
  return v === 'on' || v === '1' || (v.length > 0 && ('true'.startsWith(v) || 'yes'.startsWith(v)));
}

/** PostgreSQL's boolean spellings for false: `off` (and `of`), `0`, and prefixes of `false` and `no`. */
function isFalseSetting(value: string): boolean {
  const v = value.trim().toLowerCase();
  return v === 'off' || v === 'of' || v === '0' || (v.length > 0 && ('false'.startsWith(v) || 'no'.startsWith(v)));
}

/**
 * Why a server-reported setting (startup or ParameterStatus) means statements would no longer be
 * parsed as Sluice parses them; undefined when it is safe. `serverEncoding` is the database's.
 */
export function unsafeServerSetting(name: string, value: string, serverEncoding: string): string | undefined {
  const n = name.toLowerCase();
  if (n === 'standard_conforming_strings' && !isTrueSetting(value)) {
    return `the server reports standard_conforming_strings = ${value}; Sluice parses SQL with it on`;
  }
  if (n === 'client_encoding' && !isSupportedClientEncoding(value, serverEncoding)) {
    return `the server reports client_encoding = ${value} (database encoding ${serverEncoding}); Sluice reads statements as UTF-8, so use UTF8`;
  }
  // Reported by servers that report search_path (PostgreSQL 18 and later); earlier ones do not.
  if (n === 'search_path' && shadowsCatalog(value)) {
    return `the server reports search_path = ${value}, which lists pg_catalog after another schema; Sluice trusts built-in function names`;
  }
  return undefined;
}

type Facts = SqlFacts & { readonly settingValues?: readonly string[]; readonly configCalls?: readonly ConfigCall[] };

/** Why `facts` would make the server parse later statements differently from Sluice, or undefined. */
export function parserSafetyViolation(facts: Facts): string | undefined {
  if (facts.kind === 'set' && facts.setting !== undefined && facts.settingValues !== undefined) {
    const values = facts.settingValues;
    if (facts.setting === 'standard_conforming_strings' && !(values.length === 1 && isTrueSetting(values[0] as string))) {
      return 'standard_conforming_strings must stay on: with it off the server would read backslashes in string literals differently from Sluice';
    }
    if (facts.setting === 'search_path' && shadowsCatalog(values)) {
      return 'a search_path that lists pg_catalog after another schema lets that schema shadow built-in functions Sluice trusts by name; list pg_catalog first, or leave it out (PostgreSQL then searches it first)';
    }
    if (facts.setting === 'client_encoding' && !(values.length === 1 && UTF8_NAMES.has(normaliseEncoding(values[0] as string)))) {
      return `client encoding ${clip(values.join(', '))} would make the server read statement bytes differently from Sluice, which reads them as UTF-8; use UTF8`;
    }
  }
  for (const call of facts.configCalls ?? []) {
    const why = unsafeConfigCall(call.name, call.value);
    if (why !== undefined) return `${why}; Sluice parses statements with the session's settings fixed`;
  }
  for (const table of facts.tablesWritten) {
    if (table === 'pg_settings' || table === 'pg_catalog.pg_settings') return 'writing pg_settings changes session settings, including how the server reads statements';
  }
  return undefined;
}
