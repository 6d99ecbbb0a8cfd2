/**
 * SQL facts from the real PostgreSQL parse tree: what each statement is, which tables it reads
 * and writes, which functions it calls and everything it can do besides its headline kind.
 * No regular expression ever looks at SQL text here; only the parser does.
 *
 * Walks the whole tree (joins, subqueries, CTEs, set operations, function arguments), because a
 * write can hide anywhere a query can: a data-modifying WITH, `SELECT … INTO`, `FOR UPDATE`,
 * `EXPLAIN ANALYZE DELETE`, a volatile function in a WHERE clause.
 *
 * Cost (dev container, Node 20, shared 2-core box): 12–17 µs per simple statement
 * (`SELECT abalance FROM pgbench_accounts WHERE aid = 123`) uncached, of which ~9 µs is the WASM
 * parser and its JSON; ~2 µs from the LRU cache; ~55 µs for a three-way join with a subquery.
 * Informational only (test/policy/sql/facts.test.ts prints it); bench/ owns the numbers.
 */
import { asObject, listOf, type Obj } from './ast.js';
import { newJsonKeyUse, noteJsonFunction, noteJsonOperator, noteSubscripts } from './json-keys.js';
import type { SqlFacts, SqlKind } from '../../pipeline/types.js';
import { firstParenthesised, parseStatements } from './parser.js';
import { isSafeFunction } from './safe-functions.js';
import { statementKind } from './statement-kind.js';
import type { SqlVerb } from './verbs.js';

/** One statement's facts plus what the policy engine matches on. */
export interface StatementFacts extends SqlFacts {
  /** Every verb the statement can perform (its kind first, then hidden ones). Never empty. */
  readonly verbs: readonly SqlVerb[];
  /** Why the statement could not be analysed (parser message), for `unknown` statements. */
  readonly parseError?: string;
  /** Transaction modes asked for by BEGIN/START/SET TRANSACTION/SET SESSION CHARACTERISTICS. */
  readonly transactionModes?: readonly string[];
  /** The prepared statement PREPARE defines or DEALLOCATE removes (absent for DEALLOCATE ALL). */
  readonly preparedName?: string;
  /** The cursor (portal) DECLARE opens, FETCH/MOVE reads or CLOSE closes (absent for CLOSE ALL). */
  readonly cursorName?: string;
  /** Prepared statements the statement runs by name (EXECUTE, also under EXPLAIN ANALYZE or CREATE TABLE AS). */
  readonly executes?: readonly string[];
  /** COPY: its data format and the options that shape its rows (delimiter, null, quote, escape, header). */
  readonly copyFormat?: CopyFormat;
  /**
   * COPY … TO STDOUT: a SELECT with the same output columns (`SELECT cols FROM table`, or the
   * query of `COPY (query)`), so a connector can learn the columns to mask them.
   */
  readonly copySource?: string;
  /**
   * Column names used other than as a plain output column of the statement's own SELECT list: in
   * expressions, filters, ordering, grouping, subqueries, set operations and writes. Masking
   * follows a column only where the result still describes it, so a connector refuses the use of
   * a masked column here (`upper(password)` would leave unmasked).
   */
  readonly computedColumns?: readonly string[];
  /** A whole row used as a value (`t`, `t.*` in an expression, `SELECT t`), except as the argument of a JSON function. */
  readonly wholeRowValues?: boolean;
  /**
   * A column alias list (`AS t(a, b)`, `WITH x(a) AS`) renames columns that cannot be followed: a
   * table's, a join's, or a subquery's that selects `*`. A subquery or CTE whose columns are
   * listed reports each plain column it renames in `computedColumns` instead.
   */
  readonly renamedColumns?: boolean;
  /** `SELECT *` in a UNION/INTERSECT/EXCEPT branch: every column under the first branch's names, with no origin. */
  readonly starInSetOperation?: boolean;
  /**
   * The statement's result SELECT sorts, groups or deduplicates by columns that `*` expands to:
   * `ORDER BY 3` or `GROUP BY 3` where position 3 falls in or after a `*` (`positions`), or plain
   * `DISTINCT` over a `*` (`distinct`: every output column). Which table columns those are is known
   * only once the upstream describes the result.
   */
  readonly starOrdering?: { readonly positions: readonly number[]; readonly distinct: boolean };
  /** As starOrdering, where describing the statement would not show those columns: a subquery, a CTE, COPY (…), DECLARE, PREPARE. */
  readonly nestedStarOrdering?: boolean;
  /** A NATURAL JOIN neither side of which lists its columns (tables, CTEs, joins): which columns it compares is unknown. */
  readonly naturalJoinUnseen?: boolean;
  /**
   * Where every NATURAL JOIN of naturalJoinUnseen joins two named relations (`a NATURAL JOIN b`,
   * no alias list): the pairs, so a catalog that lists their columns can tell which they share.
   */
  readonly naturalJoinTables?: readonly (readonly [string, string])[];
  /** A whole row given to a JSON function as a column of the result (`SELECT row_to_json(c)`): masked by field name only. */
  readonly jsonRowOutput?: boolean;
  /** JSON keys the statement extracts by literal (`->>'password'`, `#>> '{db,password}'`, a JSON path's `.password`); json-keys.ts. */
  readonly jsonKeys?: readonly string[];
  /** A JSON key or path chosen at run time (`cfg->>$1`, `cfg->>col`, `$.*`, `.keyvalue()`). */
  readonly jsonDynamicKey?: boolean;
  /** A function that returns JSON values apart from their keys (`jsonb_each_text`). */
  readonly jsonUnwrap?: string;
  /**
   * `SET name TO value[, …]`: each value as written (`on`, `'SJIS'`, `1`). Absent for `RESET`,
   * `SET … TO DEFAULT` and `SET … FROM CURRENT`, which return to or keep a value already in force.
   */
  readonly settingValues?: readonly string[];
  /** `set_config(name, value, …)` calls: the setting (lower-cased) and value, `?` where either is not a constant. */
  readonly configCalls?: readonly ConfigCall[];
}

export interface ConfigCall {
  readonly name: string;
  readonly value: string;
}

export interface CopyFormat {
  readonly format: 'text' | 'csv' | 'binary';
  /** One character: tab for text, comma for csv. */
  readonly delimiter: string;
  /** The NULL marker: `\N` for text, the empty string for csv. */
  readonly null: string;
  /** csv only: the quote and escape characters (both `"` by default). */
  readonly quote: string;
  readonly escape: string;
  /** csv and text: the first row is a header line. */
  readonly header: boolean;
}

export interface SqlAnalysis {
  /** One entry per statement; a single `unknown` entry when the text does not parse; [] when empty. */
  readonly statements: readonly StatementFacts[];
  /** Each statement's own text, cut at the parser's statement boundaries (same order). */
  readonly texts: readonly string[];
  /** The parser's error message when the text does not parse. */
  readonly error?: string;
}

/**
 * Deepest parse tree analysed. A tree deeper than this (a 1000-term expression, say) is reported
 * as unanalysable and therefore denied, rather than risking the JavaScript stack.
 */
const MAX_DEPTH = 1500;

/** LRU of analyses keyed by SQL text: agents repeat the same statements. */
const CACHE_ENTRIES = 1024;
/** Longer texts are analysed every time rather than pinned in memory. */
const CACHE_MAX_TEXT = 8192;
const cache = new Map<string, SqlAnalysis>();

const EMPTY_SET: ReadonlySet<string> = new Set();
const EMPTY: SqlAnalysis = Object.freeze({ statements: Object.freeze([]), texts: Object.freeze([]) });

/** Facts for every statement in `sql`. Sync; never throws for any input once the parser is loaded. */
export function extractSqlFacts(sql: string): StatementFacts[] {
  return [...analyzeSql(sql).statements];
}

/** Like `extractSqlFacts`, with statement texts and the parser's error message. Results are frozen and cached. */
export function analyzeSql(sql: string): SqlAnalysis {
  const hit = cache.get(sql);
  if (hit !== undefined) {
    // Refresh recency: Map iteration order is insertion order.
    cache.delete(sql);
    cache.set(sql, hit);
    return hit;
  }
  const analysis = analyzeUncached(sql);
  if (sql.length <= CACHE_MAX_TEXT) {
    if (cache.size >= CACHE_ENTRIES) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    cache.set(sql, analysis);
  }
  return analysis;
}

/** Drop cached analyses (tests). */
export function clearSqlCache(): void {
  cache.clear();
}

function analyzeUncached(sql: string): SqlAnalysis {
  // libpg-query refuses an empty string; PostgreSQL answers it with EmptyQueryResponse.
  if (sql.length === 0) return EMPTY;
  // The parser takes a C string: a NUL would end the text early and hide what follows it.
  if (sql.includes('\0')) return failed(sql, 'SQL text contains a NUL character');
  // Lone UTF-16 surrogates have no UTF-8 form; the parser and the server would disagree on bytes.
  if (hasLoneSurrogate(sql)) return failed(sql, 'SQL text is not valid Unicode');
  const parsed = parseStatements(sql);
  if (!parsed.ok) return failed(sql, parsed.error);
  if (parsed.stmts.length === 0) return EMPTY;
  const statements: StatementFacts[] = [];
  const texts = statementTexts(sql, parsed.stmts);
  try {
    for (let i = 0; i < parsed.stmts.length; i++) statements.push(factsForRaw(parsed.stmts[i], texts[i] ?? sql));
  } catch (err) {
    const why = err instanceof TooDeep || err instanceof RangeError ? 'statement is nested too deeply to analyse' : 'statement could not be analysed';
    return failed(sql, why);
  }
  return Object.freeze({ statements: Object.freeze(statements), texts: Object.freeze(texts) });
}

function failed(sql: string, error: string): SqlAnalysis {
  const facts: StatementFacts = freezeFacts({
    kind: 'unknown',
    statement: 'ParseError',
    tablesRead: [],
    tablesWritten: [],
    functions: [],
    hasWhere: false,
    sideEffects: true,
    sideEffectReasons: ['statement could not be parsed'],
    dynamic: true,
    verbs: ['unknown'],
    parseError: error,
  });
  return Object.freeze({ statements: Object.freeze([facts]), texts: Object.freeze([sql]), error });
}

function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return true;
    const next = s.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
    i++;
  }
  return false;
}

/** libpg_query reports statement boundaries in UTF-8 bytes (`stmt_location`, `stmt_len`; 0 = to the end). */
function statementTexts(sql: string, stmts: readonly unknown[]): string[] {
  if (stmts.length === 1) return [sql.trim()];
  const bytes = Buffer.from(sql, 'utf8');
  return stmts.map((raw) => {
    const r = asObject(raw);
    const start = typeof r?.stmt_location === 'number' ? r.stmt_location : 0;
    const len = typeof r?.stmt_len === 'number' && r.stmt_len > 0 ? r.stmt_len : bytes.length - start;
    return bytes.subarray(start, start + len).toString('utf8').trim();
  });
}

// ---------------------------------------------------------------------------------------------
// The walk

class TooDeep extends Error {}

/** Where in the tree we are: which CTE names shadow tables, whether RangeVars are written, whether nested statements run. */
interface Scope {
  readonly ctes: ReadonlySet<string>;
  readonly write: boolean;
  /** False under a plain EXPLAIN: the explained statement is planned, not run. */
  readonly executed: boolean;
  /** Set under CREATE TABLE AS: its SELECT is not the statement's result, its rows go into a table. */
  readonly notResult?: true;
}

class Collector {
  readonly read = new Set<string>();
  readonly written = new Set<string>();
  readonly functions = new Set<string>();
  readonly verbs = new Set<SqlVerb>();
  readonly reasons: string[] = [];
  readonly executes = new Set<string>();
  readonly configCalls: ConfigCall[] = [];
  /** Column names used in computed positions (see StatementFacts.computedColumns). */
  readonly computed = new Set<string>();
  /** One-part column references (which may name a whole row) and relation names/aliases in scope. */
  readonly singles = new Set<string>();
  readonly relations = new Set<string>();
  starInExpression = false;
  starInSetOperation = false;
  /** JSON function calls that are direct columns of the result (noteJsonOutput). */
  readonly jsonOutputs = new Set<Obj>();
  jsonRowOutput = false;
  /** JSON keys extracted, keys chosen at run time, key/value unwrapping (json-keys.ts). */
  readonly json = newJsonKeyUse();
  /** Positions the result SELECT sorts or groups by that fall in `*` (see StatementFacts.starOrdering). */
  readonly starPositions = new Set<number>();
  starDistinct = false;
  nestedStarOrdering = false;
  naturalJoinUnseen = false;
  /** The relation pairs of unseen NATURAL JOINs; undefined once one side of one is not a named relation. */
  naturalJoinTables: Array<readonly [string, string]> | undefined = [];
  renamed = false;
  dynamic = false;

  effect(verb: SqlVerb, reason: string): void {
    this.verbs.add(verb);
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }
}

/** Kinds whose own RangeVars are targets (written) rather than sources. */
const TARGET_KINDS: ReadonlySet<SqlKind> = new Set(['ddl', 'dcl', 'lock', 'utility']);
const DML_KINDS: ReadonlySet<SqlKind> = new Set(['insert', 'update', 'delete', 'merge']);

/** Relation kinds whose DROP names tables (DropStmt lists names, not RangeVars). */
const DROP_RELATION_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_INDEX',
  'OBJECT_SEQUENCE',
  'OBJECT_FOREIGN_TABLE',
]);

const TRANSACTION_VERBS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'start transaction',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release savepoint',
  TRANS_STMT_ROLLBACK_TO: 'rollback to savepoint',
  TRANS_STMT_PREPARE: 'prepare transaction',
  TRANS_STMT_COMMIT_PREPARED: 'commit prepared',
  TRANS_STMT_ROLLBACK_PREPARED: 'rollback prepared',
};

interface TopExtras {
  hasWhere?: boolean;
  setting?: string;
  settingValues?: readonly string[];
  copyDirection?: 'to' | 'from';
  copyFileOrProgram?: boolean;
  transaction?: string;
  transactionModes?: readonly string[];
  preparedName?: string;
  cursorName?: string;
  copyFormat?: CopyFormat;
  /** COPY (query) TO: its source is the query's text, cut from the statement text after the walk. */
  copyQuery?: boolean;
  copySource?: string;
}

function factsForRaw(raw: unknown, text: string): StatementFacts {
  const stmt = asObject(asObject(raw)?.stmt);
  const type = stmt === undefined ? undefined : Object.keys(stmt)[0];
  const body = type === undefined ? undefined : asObject(stmt?.[type]);
  if (type === undefined || body === undefined) {
    return freezeFacts({
      kind: 'unknown',
      statement: 'Unknown',
      tablesRead: [],
      tablesWritten: [],
      functions: [],
      hasWhere: false,
      sideEffects: true,
      sideEffectReasons: ['unrecognised parse tree'],
      dynamic: true,
      verbs: ['unknown'],
    });
  }
  const kind = statementKind(type);
  const c = new Collector();
  c.verbs.add(type === 'VariableShowStmt' ? 'show' : kind);
  const extras: TopExtras = {};
  const scope: Scope = { ctes: EMPTY_SET, write: TARGET_KINDS.has(kind), executed: true };
  visitStatement(type, body, scope, c, 0, extras);
  const verbs = [...c.verbs];
  const copySource = extras.copyQuery === true ? firstParenthesised(text) : extras.copySource;
  // A sort over `*` is checked by describing the statement, which shows the columns only of a
  // SELECT: COPY (…), DECLARE and PREPARE describe as no rows, so theirs count as nested. EXPLAIN
  // shows a plan, not the rows in their order.
  let starOrdering = c.starPositions.size > 0 || c.starDistinct;
  if (starOrdering && type !== 'SelectStmt') {
    starOrdering = false;
    if (type !== 'ExplainStmt') c.nestedStarOrdering = true;
  }
  return freezeFacts({
    kind,
    statement: type,
    tablesRead: [...c.read],
    tablesWritten: [...c.written],
    functions: [...c.functions],
    hasWhere: extras.hasWhere ?? false,
    sideEffects: c.reasons.length > 0,
    sideEffectReasons: c.reasons,
    dynamic: c.dynamic,
    verbs,
    ...(extras.setting !== undefined ? { setting: extras.setting } : {}),
    ...(extras.settingValues !== undefined ? { settingValues: Object.freeze(extras.settingValues) } : {}),
    ...(c.configCalls.length > 0 ? { configCalls: Object.freeze(c.configCalls) } : {}),
    ...(extras.copyDirection !== undefined ? { copyDirection: extras.copyDirection } : {}),
    ...(extras.copyFileOrProgram !== undefined ? { copyFileOrProgram: extras.copyFileOrProgram } : {}),
    ...(extras.transaction !== undefined ? { transaction: extras.transaction } : {}),
    ...(extras.transactionModes !== undefined ? { transactionModes: extras.transactionModes } : {}),
    ...(extras.preparedName !== undefined ? { preparedName: extras.preparedName } : {}),
    ...(extras.cursorName !== undefined ? { cursorName: extras.cursorName } : {}),
    ...(c.executes.size > 0 ? { executes: Object.freeze([...c.executes]) } : {}),
    ...(extras.copyFormat !== undefined ? { copyFormat: Object.freeze(extras.copyFormat) } : {}),
    ...(copySource !== undefined ? { copySource } : {}),
    ...(c.computed.size > 0 ? { computedColumns: Object.freeze([...c.computed]) } : {}),
    ...(c.starInExpression || [...c.singles].some((n) => c.relations.has(n)) ? { wholeRowValues: true } : {}),
    ...(c.renamed ? { renamedColumns: true } : {}),
    ...(starOrdering ? { starOrdering: Object.freeze({ positions: Object.freeze([...c.starPositions]), distinct: c.starDistinct }) } : {}),
    ...(c.nestedStarOrdering ? { nestedStarOrdering: true } : {}),
    ...(c.naturalJoinUnseen ? { naturalJoinUnseen: true } : {}),
    ...(c.naturalJoinUnseen && c.naturalJoinTables !== undefined && c.naturalJoinTables.length > 0 ? { naturalJoinTables: Object.freeze(c.naturalJoinTables) } : {}),
    ...(c.jsonRowOutput ? { jsonRowOutput: true } : {}),
    ...(c.json.keys.size > 0 ? { jsonKeys: Object.freeze([...c.json.keys]) } : {}),
    ...(c.json.dynamic ? { jsonDynamicKey: true } : {}),
    ...(c.json.unwrap !== undefined ? { jsonUnwrap: c.json.unwrap } : {}),
    ...(c.starInSetOperation ? { starInSetOperation: true } : {}),
  });
}

function freezeFacts(f: StatementFacts): StatementFacts {
  Object.freeze(f.tablesRead);
  Object.freeze(f.tablesWritten);
  Object.freeze(f.functions);
  Object.freeze(f.sideEffectReasons);
  Object.freeze(f.verbs);
  if (f.transactionModes !== undefined) Object.freeze(f.transactionModes);
  return Object.freeze(f);
}

/** A statement node, at the top or nested (EXPLAIN/PREPARE/COPY/CREATE TABLE AS/DECLARE targets). */
function visitStatement(type: string, body: Obj, scope: Scope, c: Collector, depth: number, x: TopExtras): void {
  switch (type) {
    case 'SelectStmt':
      x.hasWhere = body.whereClause !== undefined;
      visitSelect(body, scope, c, depth, scope.notResult === true ? 'nested' : 'result');
      return;
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      x.hasWhere = body.whereClause !== undefined;
      visitDml(body, scope, c, depth);
      return;
    case 'ExplainStmt': {
      const analyze = explainAnalyzes(body.options);
      visitInner(body.query, { ...scope, write: false, executed: scope.executed && analyze }, c, depth, 'EXPLAIN ANALYZE runs');
      return;
    }
    case 'PrepareStmt':
      if (typeof body.name === 'string') x.preparedName = body.name;
      // Preparing runs nothing yet, but EXECUTE later runs exactly this: judge it now.
      visitInner(body.query, { ...scope, write: false }, c, depth, 'PREPARE defines');
      return;
    case 'DeallocateStmt':
      if (typeof body.name === 'string') x.preparedName = body.name;
      return;
    case 'DeclareCursorStmt':
      if (typeof body.portalname === 'string') x.cursorName = body.portalname;
      visitInner(body.query, { ...scope, write: false }, c, depth, 'DECLARE runs');
      return;
    case 'FetchStmt':
    case 'ClosePortalStmt':
      if (typeof body.portalname === 'string') x.cursorName = body.portalname;
      return;
    case 'CreateTableAsStmt':
      visit(body.into, { ...scope, write: true }, c, depth + 1);
      visitInner(body.query, { ...scope, write: false, notResult: true }, c, depth, 'CREATE TABLE AS runs');
      return;
    case 'CopyStmt':
      visitCopy(body, scope, c, depth, x);
      return;
    case 'ExecuteStmt':
      markExecute(body, scope, c, depth);
      return;
    case 'DoStmt':
      c.dynamic = true;
      c.effect('do', 'DO runs an anonymous procedural code block');
      return;
    case 'CallStmt': {
      const call = asObject(body.funccall);
      const name = call === undefined ? '?' : functionName(call.funcname).join('.');
      c.functions.add(name);
      c.effect('call', `CALL runs procedure ${name}`);
      // The procedure itself is the `call` verb; its arguments are ordinary expressions.
      visit(call?.args, scope, c, depth + 1);
      return;
    }
    case 'VariableSetStmt':
      visitSet(body, c, x);
      visit(body.args, scope, c, depth + 1);
      return;
    case 'VariableShowStmt':
      x.setting = typeof body.name === 'string' ? body.name.toLowerCase() : '';
      return;
    case 'DiscardStmt':
      x.setting = typeof body.target === 'string' ? body.target.replace(/^DISCARD_/, '').toLowerCase() : 'all';
      return;
    case 'TransactionStmt': {
      const modes = transactionModes(body.options);
      const verb = typeof body.kind === 'string' ? TRANSACTION_VERBS[body.kind] ?? body.kind.toLowerCase() : 'transaction';
      x.transaction = [verb, ...modes, ...(body.chain === true ? ['and chain'] : [])].join(' ');
      if (modes.length > 0) x.transactionModes = modes;
      return;
    }
    case 'RenameStmt':
      // A renamed column leaves the column rules that name it: count it as used (masked-column-use).
      if (body.renameType === 'OBJECT_COLUMN' && typeof body.subname === 'string') c.computed.add(body.subname);
      visit(body, scope, c, depth + 1);
      return;
    case 'TruncateStmt':
      c.effect('delete', 'TRUNCATE deletes every row');
      visit(body.relations, { ...scope, write: true }, c, depth + 1);
      return;
    case 'DropStmt':
      if (typeof body.removeType === 'string' && DROP_RELATION_TYPES.has(body.removeType) && Array.isArray(body.objects)) {
        for (const o of body.objects) {
          const parts = functionName(asObject(asObject(o)?.List)?.items);
          if (parts.length > 0) c.written.add(parts.join('.'));
        }
      }
      visit(body, scope, c, depth + 1);
      return;
    default:
      visit(body, scope, c, depth + 1);
  }
}

/** A statement wrapped as `{ SelectStmt: {…} }` under EXPLAIN, PREPARE, COPY, CREATE TABLE AS, DECLARE. */
function visitInner(wrapper: unknown, scope: Scope, c: Collector, depth: number, what: string): void {
  const w = asObject(wrapper);
  if (w === undefined) return;
  for (const type of Object.keys(w)) {
    const body = asObject(w[type]);
    if (body === undefined) continue;
    const kind = statementKind(type);
    if (scope.executed) {
      if (DML_KINDS.has(kind) || kind === 'ddl') c.effect(kind, `${what} ${statementLabel(type)}`);
      else c.verbs.add(kind);
    }
    visitStatement(type, body, scope, c, depth + 1, {});
  }
}

function statementLabel(type: string): string {
  return type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

function markExecute(body: Obj, scope: Scope, c: Collector, depth: number): void {
  const name = typeof body.name === 'string' ? body.name : '?';
  if (typeof body.name === 'string') c.executes.add(body.name);
  c.dynamic = true;
  c.effect('execute', `EXECUTE ${name} runs a prepared statement whose text is not in this command`);
  visit(body.params, scope, c, depth + 1);
}

/**
 * How a SELECT's own target list reaches the client, for masking (which follows a column only
 * where a result still names its table and column):
 * - `result`: the statement's result: plain columns keep their description;
 * - `relay`: a subquery in FROM or a CTE: plain columns reach the outer query with their origin
 *   and their name (an alias would rename them, so an aliased column counts as computed);
 * - `setop`: a UNION/INTERSECT/EXCEPT branch: the output takes the first branch's names and no
 *   origin, so every column is computed, and `*` would carry every column unnamed;
 * - `nested`: anything else (a scalar or EXISTS subquery, INSERT … SELECT, SELECT INTO): computed.
 */
type SelectMode = 'result' | 'relay' | 'setop' | 'nested';

/** A subquery in FROM or a CTE body: a SELECT there relays its columns; anything else is visited as usual. */
function visitRelayed(node: unknown, scope: Scope, c: Collector, depth: number): void {
  const select = asObject(asObject(node)?.SelectStmt);
  if (select !== undefined) visitSelect(select, scope, c, depth + 1, 'relay');
  else visit(node, scope, c, depth);
}

function visitSelect(body: Obj, scope: Scope, c: Collector, depth: number, mode: SelectMode = 'nested'): void {
  if (body.intoClause !== undefined && mode === 'result') mode = 'nested';
  let s = scope.write ? { ...scope, write: false } : scope;
  if (body.withClause !== undefined) s = visitWith(body.withClause, s, c, depth);
  /** Per output position, the column a plain target selects (undefined for an expression or `*`). */
  const outputs: (string | undefined)[] = [];
  /** Output names (aliases) of plain targets, to the column they select. */
  const aliases = new Map<string, string>();
  /** Indexes into `outputs` of `*` targets (each expands to columns known only upstream). */
  const stars: number[] = [];
  /** Positions (1-based) and output names of JSON made of whole rows (noteJsonOutput). */
  const jsonAt = new Set<number>();
  const jsonAliases = new Set<string>();
  if (Array.isArray(body.targetList)) {
    for (const t of body.targetList) {
      const rt = asObject(asObject(t)?.ResTarget);
      const ref = asObject(asObject(rt?.val)?.ColumnRef);
      outputs.push(undefined);
      if (ref === undefined) {
        if (mode === 'result' && noteJsonOutput(rt?.val, c)) {
          jsonAt.add(outputs.length);
          if (typeof rt?.name === 'string') jsonAliases.add(rt.name);
        }
        visit(t, s, c, depth + 1);
        continue;
      }
      const fields = Array.isArray(ref.fields) ? ref.fields : [];
      const last = asObject(fields[fields.length - 1]);
      if (last?.A_Star !== undefined) {
        if (mode === 'setop') c.starInSetOperation = true;
        stars.push(outputs.length - 1);
        continue;
      }
      const name = asObject(last?.String)?.sval;
      if (typeof name !== 'string') continue;
      outputs[outputs.length - 1] = name;
      if (typeof rt?.name === 'string') aliases.set(rt.name, name);
      // A one-part name may be a whole row (`SELECT t FROM t`).
      if (fields.length === 1) c.singles.add(name);
      if (mode === 'result') continue;
      if (mode === 'relay' && (rt?.name === undefined || rt.name === name)) continue;
      c.computed.add(name);
    }
  }
  // ORDER BY, GROUP BY and DISTINCT ON may name an output column by position (`ORDER BY 2`) or by
  // its alias (`ORDER BY p`): sorting or grouping by a masked column that way is still an oracle.
  // Plain DISTINCT groups by every output column. Where a position falls in `*`, the column is
  // known only from the upstream's description of the result (StatementFacts.starOrdering).
  const firstStar = stars.length > 0 ? (stars[0] as number) : Number.POSITIVE_INFINITY;
  const overStar = (position: number): void => {
    if (mode === 'result') c.starPositions.add(position);
    else c.nestedStarOrdering = true;
  };
  // Sorting or grouping by JSON made of a whole row sorts by its masked fields: as a whole row.
  const distinct = listOf(body.distinctClause);
  if (distinct.length === 1 && Object.keys(asObject(distinct[0]) ?? {}).length === 0) {
    for (const column of outputs) if (column !== undefined) c.computed.add(column);
    if (jsonAt.size > 0) c.starInExpression = true;
    if (stars.length > 0) {
      if (mode === 'result') c.starDistinct = true;
      else c.nestedStarOrdering = true;
    }
  }
  for (const item of [...listOf(body.sortClause), ...listOf(body.groupClause), ...distinct]) {
    const node = asObject(asObject(item)?.SortBy)?.node ?? item;
    const position = asObject(asObject(asObject(node)?.A_Const)?.ival);
    if (position !== undefined) {
      const p = typeof position.ival === 'number' ? position.ival : 0;
      if (jsonAt.has(p)) c.starInExpression = true;
      if (p - 1 >= firstStar) {
        overStar(p);
        continue;
      }
      const column = outputs[p - 1];
      if (column !== undefined) c.computed.add(column);
      continue;
    }
    const fields = asObject(asObject(node)?.ColumnRef)?.fields;
    const alias = Array.isArray(fields) && fields.length === 1 ? asObject(asObject(fields[0])?.String)?.sval : undefined;
    if (typeof alias === 'string' && jsonAliases.has(alias)) c.starInExpression = true;
    const column = typeof alias === 'string' ? aliases.get(alias) : undefined;
    if (column !== undefined) c.computed.add(column);
  }
  visitFields(body, s, c, depth + 1, 'withClause', 'targetList');
}

/** A column reference in a computed position (see StatementFacts.computedColumns). */
function columnRef(ref: Obj, c: Collector, jsonArgument: boolean): void {
  const fields = Array.isArray(ref.fields) ? ref.fields : [];
  const last = asObject(fields[fields.length - 1]);
  const name = asObject(last?.String)?.sval;
  if (typeof name === 'string') {
    c.computed.add(name);
    if (fields.length === 1 && !jsonArgument) c.singles.add(name);
  } else if (last?.A_Star !== undefined && !jsonArgument) {
    c.starInExpression = true;
  }
}

/** Functions whose output names every field of a row, so masking by field name still applies to a whole row given to them. */
const JSON_ROW_FUNCTIONS: ReadonlySet<string> = new Set(['row_to_json', 'to_json', 'to_jsonb', 'json_agg', 'jsonb_agg']);
/** Casts that keep JSON as JSON text, which the masker still reads by field name. */
const JSON_TEXT_TYPES: ReadonlySet<string> = new Set(['json', 'jsonb', 'text', 'varchar']);

/**
 * A whole row given to a JSON function is masked by field name only where the JSON is itself a
 * column of the result (`SELECT row_to_json(c)`, or cast to text): computed on anywhere else
 * (`to_jsonb(c)->>'password'`, a filter, a sort, a subquery's column, json_each_text), it would
 * carry the masked values out as plain text. Only such direct outputs are exempt.
 */
function noteJsonOutput(value: unknown, c: Collector): boolean {
  let v = asObject(value);
  const cast = asObject(v?.TypeCast);
  if (cast !== undefined) {
    const type = functionName(asObject(cast.typeName)?.names).pop();
    if (type === undefined || !JSON_TEXT_TYPES.has(type)) return false;
    v = asObject(cast.arg);
  }
  const call = asObject(v?.FuncCall);
  if (call === undefined || !JSON_ROW_FUNCTIONS.has((functionName(call.funcname).pop() ?? '').toLowerCase())) return false;
  c.jsonOutputs.add(call);
  return true;
}

/**
 * A join compares columns: `USING (password)` compares the named ones, and NATURAL JOIN every
 * column the two sides share. Where a side lists its columns (a subquery or VALUES), the shared
 * ones are among them; where neither does (tables, CTEs, functions, joins), they are unknown.
 */
function noteJoin(join: Obj, c: Collector, scope: Scope): void {
  for (const name of listOf(join.usingClause)) {
    const column = asObject(asObject(name)?.String)?.sval;
    if (typeof column === 'string') c.computed.add(column);
  }
  if (join.isNatural !== true) return;
  const left = sideColumns(join.larg);
  const right = sideColumns(join.rarg);
  if (left === undefined && right === undefined) {
    c.naturalJoinUnseen = true;
    // A CTE's name is not a table's, whatever the catalog holds under it.
    const l = relationName(join.larg, scope);
    const r = relationName(join.rarg, scope);
    if (l !== undefined && r !== undefined) c.naturalJoinTables?.push([l, r]);
    else c.naturalJoinTables = undefined;
    return;
  }
  for (const column of left ?? right ?? []) if (left === undefined || right === undefined || right.includes(column)) c.computed.add(column);
}

/** A join side that is a named relation without a column alias list (`customers`, `s.t AS x`), as the statement names it. */
function relationName(side: unknown, scope: Scope): string | undefined {
  const rv = asObject(asObject(side)?.RangeVar);
  if (rv === undefined || typeof rv.relname !== 'string' || rv.catalogname !== undefined) return undefined;
  if (rv.schemaname === undefined && scope.ctes.has(rv.relname)) return undefined;
  if (listOf(asObject(rv.alias)?.colnames).length > 0) return undefined;
  return typeof rv.schemaname === 'string' ? `${rv.schemaname}.${rv.relname}` : rv.relname;
}

/** The column names a join side outputs, where the side lists them; undefined for a table, a CTE, a function, a join or `*`. */
function sideColumns(side: unknown): readonly string[] | undefined {
  const node = asObject(side);
  // A function's columns are unknown: an alias list may name only the first of them.
  const sub = asObject(node?.RangeSubselect);
  const select = asObject(asObject(sub?.subquery)?.SelectStmt);
  if (sub === undefined || select === undefined || select.larg !== undefined) return undefined;
  const names: (string | undefined)[] = [];
  const values = listOf(select.valuesLists);
  if (values.length > 0) {
    const width = listOf(asObject(asObject(values[0])?.List)?.items).length;
    for (let i = 0; i < width; i++) names.push(`column${i + 1}`);
  }
  for (const t of listOf(select.targetList)) {
    const rt = asObject(asObject(t)?.ResTarget);
    const fields = listOf(asObject(asObject(rt?.val)?.ColumnRef)?.fields);
    const last = asObject(fields[fields.length - 1]);
    if (last?.A_Star !== undefined) return undefined;
    const name = typeof rt?.name === 'string' ? rt.name : asObject(last?.String)?.sval;
    // An expression's output name is made up by PostgreSQL: known only if the alias list names it.
    names.push(typeof name === 'string' ? name : undefined);
  }
  // An alias list renames the first columns by position.
  listOf(asObject(sub.alias)?.colnames).forEach((n, i) => {
    const name = asObject(asObject(n)?.String)?.sval;
    if (typeof name === 'string') names[i] = name;
  });
  if (names.length === 0 || names.some((n) => n === undefined)) return undefined;
  return names as string[];
}

/** A relation alias; `source` is the SELECT of a subquery it names (undefined for a table or a join). */
function noteAlias(alias: unknown, c: Collector, source?: Obj): void {
  const a = asObject(alias);
  if (a === undefined) return;
  if (typeof a.aliasname === 'string') c.relations.add(a.aliasname);
  noteColumnAliases(a.colnames, source, c);
}

/**
 * A column alias list renames its source's columns by position. Where the source is a SELECT
 * listing its columns, each plain column renamed counts as computed under its own name (as
 * `password AS x` in a subquery does). Where the positions cannot be followed — a table's or a
 * join's columns, or a list with `*` — the statement is marked as renaming columns. A set
 * operation's columns and a VALUES list's are computed already, so renaming them changes nothing.
 */
function noteColumnAliases(colnames: unknown, source: Obj | undefined, c: Collector): void {
  if (!Array.isArray(colnames) || colnames.length === 0) return;
  if (source === undefined) {
    c.renamed = true;
    return;
  }
  if (source.larg !== undefined || source.valuesLists !== undefined) return;
  const targets = Array.isArray(source.targetList) ? source.targetList : [];
  for (let i = 0; i < targets.length && i < colnames.length; i++) {
    const rt = asObject(asObject(targets[i])?.ResTarget);
    const fields = asObject(asObject(rt?.val)?.ColumnRef)?.fields;
    if (!Array.isArray(fields)) continue;
    const last = asObject(fields[fields.length - 1]);
    if (last?.A_Star !== undefined) {
      c.renamed = true;
      return;
    }
    const name = asObject(last?.String)?.sval;
    const alias = asObject(asObject(colnames[i])?.String)?.sval;
    if (typeof name === 'string' && alias !== name) c.computed.add(name);
  }
}

function visitDml(body: Obj, scope: Scope, c: Collector, depth: number): void {
  let s = scope.write ? { ...scope, write: false } : scope;
  if (body.withClause !== undefined) s = visitWith(body.withClause, s, c, depth);
  visit(body.relation, { ...s, write: true }, c, depth + 1);
  if (s.executed) dmlSubVerbs(body, c);
  // The parser's tree puts the list under returningClause.exprs (older trees: returningList).
  const returning = asObject(body.returningClause);
  visitReturning(returning?.exprs ?? body.returningList, s, c, depth + 1);
  const { returningList: _list, returningClause: _clause, ...rest } = body;
  visitFields(rest, s, c, depth + 1, 'withClause', 'relation');
}

/**
 * RETURNING lists columns as a SELECT list does, and PostgreSQL's RowDescription names their
 * table and column (through a CTE too), so masking follows a plain column or `*` there: only a
 * renamed column, an expression or a whole row is a use masking cannot follow.
 */
function visitReturning(list: unknown, scope: Scope, c: Collector, depth: number): void {
  for (const t of listOf(list)) {
    const rt = asObject(asObject(t)?.ResTarget);
    const fields = listOf(asObject(asObject(rt?.val)?.ColumnRef)?.fields);
    if (fields.length === 0) {
      visit(t, scope, c, depth + 1);
      continue;
    }
    const last = asObject(fields[fields.length - 1]);
    if (last?.A_Star !== undefined) continue;
    const name = asObject(last?.String)?.sval;
    if (typeof name !== 'string') continue;
    // A one-part name may be a whole row (`RETURNING t`).
    if (fields.length === 1) c.singles.add(name);
    if (typeof rt?.name === 'string' && rt.name !== name) c.computed.add(name);
  }
}

const MERGE_COMMANDS: Readonly<Record<string, SqlVerb>> = { CMD_INSERT: 'insert', CMD_UPDATE: 'update', CMD_DELETE: 'delete' };

/** An upsert updates and a MERGE inserts, updates or deletes: a `deny: [delete]` rule must see it. */
function dmlSubVerbs(body: Obj, c: Collector): void {
  if (asObject(body.onConflictClause)?.action === 'ONCONFLICT_UPDATE') {
    c.effect('update', 'INSERT … ON CONFLICT DO UPDATE updates existing rows');
  }
  if (Array.isArray(body.mergeWhenClauses)) {
    for (const w of body.mergeWhenClauses) {
      const cmd = asObject(asObject(w)?.MergeWhenClause)?.commandType;
      const verb = typeof cmd === 'string' ? MERGE_COMMANDS[cmd] : undefined;
      if (verb !== undefined) c.effect(verb, `MERGE … THEN ${verb.toUpperCase()}`);
    }
  }
}

/**
 * CTE names shadow tables only where PostgreSQL makes them visible: later siblings and the main
 * query, or every member of a RECURSIVE list. A same-named real table elsewhere stays a table.
 */
function visitWith(withClause: unknown, scope: Scope, c: Collector, depth: number): Scope {
  const w = asObject(withClause);
  const ctes = Array.isArray(w?.ctes) ? w.ctes : [];
  const names: string[] = [];
  for (const cte of ctes) {
    const name = asObject(asObject(cte)?.CommonTableExpr)?.ctename;
    if (typeof name === 'string') names.push(name);
  }
  const all = new Set([...scope.ctes, ...names]);
  const recursive = w?.recursive === true;
  const visible = new Set(scope.ctes);
  for (const cte of ctes) {
    const body = asObject(asObject(cte)?.CommonTableExpr);
    if (body === undefined) continue;
    noteColumnAliases(body.aliascolnames, asObject(asObject(body.ctequery)?.SelectStmt), c);
    const cteScope: Scope = { ...scope, ctes: recursive ? all : new Set(visible) };
    visitRelayed(body.ctequery, cteScope, c, depth + 2);
    if (typeof body.ctename === 'string') visible.add(body.ctename);
  }
  return { ...scope, ctes: all };
}

function visitCopy(body: Obj, scope: Scope, c: Collector, depth: number, x: TopExtras): void {
  const from = body.is_from === true;
  x.copyDirection = from ? 'from' : 'to';
  const program = body.is_program === true;
  const file = typeof body.filename === 'string';
  x.copyFileOrProgram = program || file;
  x.copyFormat = copyFormat(body.options);
  if (!from && !program && !file) {
    const rel = asObject(body.relation);
    if (body.query !== undefined) x.copyQuery = true;
    else if (rel !== undefined && typeof rel.relname === 'string') {
      const cols = Array.isArray(body.attlist) ? body.attlist.map((a) => asObject(asObject(a)?.String)?.sval).filter((n): n is string => typeof n === 'string') : [];
      const table = (typeof rel.schemaname === 'string' ? `${quoteIdent(rel.schemaname)}.` : '') + quoteIdent(rel.relname);
      x.copySource = `SELECT ${cols.length > 0 ? cols.map(quoteIdent).join(', ') : '*'} FROM ${table}`;
    }
  }
  if (body.relation !== undefined) {
    c.verbs.add(from ? 'insert' : 'select');
    visit(body.relation, { ...scope, write: from }, c, depth + 1);
  }
  if (body.query !== undefined) visitInner(body.query, { ...scope, write: false }, c, depth, 'COPY runs');
  if (program) c.effect('side-effect', `COPY ${from ? 'FROM' : 'TO'} PROGRAM runs a shell command on the database server`);
  else if (file) c.effect('side-effect', `COPY ${from ? 'FROM' : 'TO'} a file on the database server`);
  visit(body.whereClause, { ...scope, write: false }, c, depth + 1);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** COPY's options as PostgreSQL reads them (legacy `CSV`, `BINARY`, `HEADER` arrive as the same options). */
function copyFormat(options: unknown): CopyFormat {
  const opts = new Map<string, unknown>();
  if (Array.isArray(options)) {
    for (const o of options) {
      const d = asObject(asObject(o)?.DefElem);
      if (typeof d?.defname === 'string') opts.set(d.defname.toLowerCase(), d.arg);
    }
  }
  const str = (name: string): string | undefined => {
    const v = asObject(asObject(opts.get(name))?.String)?.sval;
    return typeof v === 'string' ? v : undefined;
  };
  const f = str('format')?.toLowerCase();
  const format = f === 'csv' ? 'csv' : f === 'binary' ? 'binary' : 'text';
  const quote = str('quote') ?? '"';
  return {
    format,
    delimiter: str('delimiter') ?? (format === 'csv' ? ',' : '\t'),
    null: str('null') ?? (format === 'csv' ? '' : '\\N'),
    quote,
    escape: str('escape') ?? quote,
    header: opts.has('header') && !isFalseOption(opts.get('header')),
  };
}

function visitSet(body: Obj, c: Collector, x: TopExtras): void {
  if (body.kind === 'VAR_RESET_ALL') {
    x.setting = 'all';
    return;
  }
  // GUC names are case-insensitive in PostgreSQL, even when quoted.
  const name = typeof body.name === 'string' ? body.name.toLowerCase() : '';
  x.setting = name;
  if (body.kind === 'VAR_SET_VALUE') x.settingValues = Array.isArray(body.args) ? body.args.map(constText) : [];
  if (body.kind === 'VAR_SET_MULTI') {
    const modes = transactionModes(body.args);
    if (modes.length > 0) x.transactionModes = modes;
  }
  if (name === 'role' || name === 'session_authorization') {
    c.effect('dcl', `SET ${name === 'role' ? 'ROLE' : 'SESSION AUTHORIZATION'} changes the privileges of the upstream session`);
  }
}

/** EXPLAIN's ANALYZE option: absent → false; `analyze`, `analyze true/on/1` → true; anything odd → true (fail closed). */
function explainAnalyzes(options: unknown): boolean {
  if (!Array.isArray(options)) return false;
  let analyze = false;
  for (const o of options) {
    const d = asObject(asObject(o)?.DefElem);
    if (d?.defname !== 'analyze') continue;
    analyze = !isFalseOption(d.arg);
  }
  return analyze;
}

function isFalseOption(arg: unknown): boolean {
  const a = asObject(arg);
  if (a === undefined) return false;
  const s = asObject(a.String)?.sval;
  if (typeof s === 'string') return s.toLowerCase() === 'false' || s.toLowerCase() === 'off';
  const i = asObject(a.Integer);
  if (i !== undefined) return i.ival === undefined || i.ival === 0;
  const b = asObject(a.Boolean);
  if (b !== undefined) return b.boolval !== true;
  return false;
}

/** BEGIN/START/SET TRANSACTION options → `isolation level …`, `read only`/`read write`, `deferrable`. */
function transactionModes(options: unknown): string[] {
  if (!Array.isArray(options)) return [];
  const out: string[] = [];
  for (const o of options) {
    const d = asObject(asObject(o)?.DefElem);
    if (d === undefined || typeof d.defname !== 'string') continue;
    const k = asObject(asObject(d.arg)?.A_Const);
    switch (d.defname) {
      case 'transaction_isolation': {
        const level = asObject(k?.sval)?.sval;
        out.push(`isolation level ${typeof level === 'string' ? level : '?'}`);
        break;
      }
      case 'transaction_read_only':
        // Anything but an explicit 1 is treated as READ WRITE: fail closed for read-only roles.
        out.push(constInt(k) === 1 ? 'read only' : 'read write');
        break;
      case 'transaction_deferrable':
        out.push(constInt(k) === 1 ? 'deferrable' : 'not deferrable');
        break;
      default:
        out.push(d.defname);
    }
  }
  return out;
}

/** A SET argument as written: `off`, `SJIS`, `1`, `1.5`; `?` for anything but a constant. */
function constText(arg: unknown): string {
  const k = asObject(asObject(arg)?.A_Const);
  if (k === undefined) return '?';
  const sval = asObject(k.sval)?.sval;
  if (typeof sval === 'string') return sval;
  const ival = asObject(k.ival);
  if (ival !== undefined) return String(typeof ival.ival === 'number' ? ival.ival : 0);
  const fval = asObject(k.fval)?.fval;
  if (typeof fval === 'string') return fval;
  const boolval = asObject(k.boolval);
  if (boolval !== undefined) return boolval.boolval === true ? 'true' : 'false';
  return '?';
}

function constInt(k: Obj | undefined): number | undefined {
  if (k === undefined) return undefined;
  const ival = asObject(k.ival);
  if (ival !== undefined) return typeof ival.ival === 'number' ? ival.ival : 0;
  const boolval = asObject(k.boolval);
  if (boolval !== undefined) return boolval.boolval === true ? 1 : 0;
  return undefined;
}

/** A name list of `String` nodes (`pg_catalog.count`, `s.t`); a non-string part yields `?`. */
function functionName(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((n) => {
    const s = asObject(asObject(n)?.String)?.sval;
    return typeof s === 'string' ? s : '?';
  });
}

function visit(node: unknown, scope: Scope, c: Collector, depth: number): void {
  if (node === null || typeof node !== 'object') return;
  if (depth > MAX_DEPTH) throw new TooDeep();
  if (Array.isArray(node)) {
    for (const n of node) visit(n, scope, c, depth + 1);
    return;
  }
  const obj = node as Obj;
  if (typeof obj.relname === 'string') {
    addRelation(obj, scope, c);
    return;
  }
  visitFields(obj, scope, c, depth, undefined, undefined);
}

function visitFields(obj: Obj, scope: Scope, c: Collector, depth: number, skipA: string | undefined, skipB: string | undefined): void {
  if (depth > MAX_DEPTH) throw new TooDeep();
  for (const key in obj) {
    const child = obj[key];
    if (child === null || typeof child !== 'object' || key === skipA || key === skipB) continue;
    switch (key) {
      case 'FuncCall':
        visitFuncCall(child as Obj, scope, c, depth);
        break;
      case 'SelectStmt':
        visitSelect(child as Obj, scope, c, depth + 1);
        break;
      case 'larg':
      case 'rarg':
        visitSelect(child as Obj, scope, c, depth + 1, 'setop');
        break;
      case 'subquery':
        // A subquery in FROM (RangeSubselect); a sublink's query is `subselect` and stays nested.
        visitRelayed(child, scope, c, depth + 1);
        break;
      case 'ColumnRef':
        columnRef(child as Obj, c, false);
        break;
      case 'alias':
        // A function's alias names its output column too (`generate_series(1, 3) g`): not a row.
        if (obj.functions === undefined && obj.docexpr === undefined) noteAlias(child, c, asObject(asObject(obj.subquery)?.SelectStmt));
        break;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const kind = statementKind(key);
        if (scope.executed) c.effect(kind, `data-modifying ${statementLabel(key)} inside the statement`);
        visitDml(child as Obj, scope, c, depth + 1);
        break;
      }
      case 'ExecuteStmt':
        markExecute(child as Obj, scope, c, depth + 1);
        break;
      case 'intoClause':
        c.effect('ddl', 'SELECT … INTO creates a table');
        visit(child, { ...scope, write: true }, c, depth + 1);
        break;
      case 'lockingClause':
        c.effect('lock', 'SELECT … FOR UPDATE/SHARE locks rows');
        visit(child, scope, c, depth + 1);
        break;
      case 'JoinExpr':
        noteJoin(child as Obj, c, scope);
        visit(child, scope, c, depth + 1);
        break;
      case 'A_Expr':
        if (OPERATOR_EXPR_KINDS.has(String((child as Obj).kind))) noteOperator((child as Obj).name, c);
        noteJsonOperator(child as Obj, c.json);
        visit(child, scope, c, depth + 1);
        break;
      case 'A_Indirection':
        noteSubscripts((child as Obj).indirection, c.json);
        visit(child, scope, c, depth + 1);
        break;
      case 'SubLink':
        noteOperator((child as Obj).operName, c);
        visit(child, scope, c, depth + 1);
        break;
      case 'SortBy':
        noteOperator((child as Obj).useOp, c);
        visit(child, scope, c, depth + 1);
        break;
      case 'RangeTableSample': {
        const method = functionName((child as Obj).method);
        const name = `tablesample:${method.join('.')}`;
        c.functions.add(name);
        if (!isSafeFunction([name])) c.effect('side-effect', `TABLESAMPLE ${method.join('.')} is not a built-in sampling method`);
        visit(child, scope, c, depth + 1);
        break;
      }
      default:
        visit(child, scope, c, depth + 1);
    }
  }
}

function visitFuncCall(call: Obj, scope: Scope, c: Collector, depth: number): void {
  const parts = functionName(call.funcname);
  const name = parts.join('.');
  c.functions.add(name);
  if (!isSafeFunction(parts)) c.effect('side-effect', `calls ${name}(), which is not on the read-only function list`);
  const last = (parts[parts.length - 1] ?? '').toLowerCase();
  noteJsonFunction(last, Array.isArray(call.args) ? call.args : [], c.json);
  if (last === 'set_config') {
    const args = Array.isArray(call.args) ? call.args : [];
    const setting = constText(args[0]);
    const config = Object.freeze({ name: setting === '?' ? '?' : setting.trim().toLowerCase(), value: constText(args[1]) });
    c.configCalls.push(config);
    // As SET ROLE: the upstream session would act with another role's privileges. A setting chosen
    // at run time counts too, unless its value is a constant (pg_dump's `set_config(name, 'view,
    // foreign-table', false) FROM pg_settings WHERE …`).
    if (config.name === 'role' || config.name === 'session_authorization' || (config.name === '?' && config.value === '?')) {
      c.effect('dcl', `set_config(${config.name === '?' ? 'a setting chosen at run time' : `'${config.name}'`}) can change the privileges of the upstream session`);
    }
  }
  if (JSON_ROW_FUNCTIONS.has(last) && Array.isArray(call.args) && c.jsonOutputs.has(call)) {
    for (const arg of call.args) {
      const ref = asObject(asObject(arg)?.ColumnRef);
      if (ref !== undefined) {
        columnRef(ref, c, true);
        const fields = listOf(ref.fields);
        if (fields.length === 1 || asObject(fields[fields.length - 1])?.A_Star !== undefined) c.jsonRowOutput = true;
      }
      else visit(arg, scope, c, depth + 1);
    }
    visitFields(call, scope, c, depth + 1, 'funcname', 'args');
    return;
  }
  visitFields(call, scope, c, depth + 1, 'funcname', undefined);
}

/** A_Expr kinds that name an operator (BETWEEN's name is its keyword; its comparisons are `<=`/`>=`). */
const OPERATOR_EXPR_KINDS: ReadonlySet<string> = new Set([
  'AEXPR_OP',
  'AEXPR_OP_ANY',
  'AEXPR_OP_ALL',
  'AEXPR_DISTINCT',
  'AEXPR_NOT_DISTINCT',
  'AEXPR_NULLIF',
  'AEXPR_IN',
  'AEXPR_LIKE',
  'AEXPR_ILIKE',
  'AEXPR_SIMILAR',
]);

/**
 * Operator names PostgreSQL 15 defines (`pg_operator` in `pg_catalog`; `!=` parses as `<>`), and
 * those of the extensions agents query most: the contrib modules Debian's postgresql package
 * ships (pg_trgm, hstore, ltree, cube, earthdistance, intarray, seg), pgvector and PostGIS. Like the
 * read-only function list, this trusts names: see noteOperator.
 */
const KNOWN_OPERATORS: ReadonlySet<string> = new Set([
  // PostgreSQL
  '!!', '!~', '!~*', '!~~', '!~~*', '##', '#', '#-', '#>', '#>>', '%', '&&', '&', '&<', '&<|', '&>', '*', '*<', '*<=', '*<>', '*=',
  '*>', '*>=', '+', '-', '->', '->>', '-|-', '/', '<', '<->', '<<', '<<=', '<<|', '<=', '<>', '<@', '<^', '=', '>', '>=', '>>', '>>=',
  '>^', '?#', '?&', '?', '?-', '?-|', '?|', '?||', '@', '@-@', '@>', '@?', '@@', '@@@', '^', '^@', '|&>', '|', '|/', '|>>', '||', '||/',
  '~', '~*', '~<=~', '~<~', '~=', '~>=~', '~>~', '~~', '~~*',
  // pgvector
  '<#>', '<=>', '<+>', '<~>', '<%>',
  // pg_trgm
  '<%', '%>', '<<%', '%>>', '<<->', '<->>', '<<<->', '<->>>',
  // hstore, ltree, cube, earthdistance
  '#=', '%%', '%#', '^@>', '^<@', '^~', '^?', '?@>', '?<@', '?~', '?@', '~>', '<@>',
  // PostGIS
  '&&&', '<<->>', '<<#>>', '|=|', '&/&',
]);

/**
 * An operator is a function. One named outside pg_catalog (`OPERATOR(public.+)`), or with a name
 * neither PostgreSQL nor a common extension defines (`a === b`), runs its owner's code, so it
 * counts as a function off the read-only list (`sql.functions` lists it as `operator ===`). A known
 * name can still resolve to a user's operator where no built-in matches the argument types, as a
 * function name can (CVE-2018-1058, docs/postgres.md).
 */
function noteOperator(name: unknown, c: Collector): void {
  const parts = functionName(name);
  if (parts.length === 0) return;
  const op = parts[parts.length - 1] as string;
  const schema = parts.length > 1 ? (parts[0] as string).toLowerCase() : undefined;
  if ((schema === undefined || schema === 'pg_catalog') && KNOWN_OPERATORS.has(op)) return;
  const label = `operator ${parts.join('.')}`;
  c.functions.add(label);
  c.effect('side-effect', `uses ${label}, which is not an operator of PostgreSQL or a common extension: it runs its owner's function`);
}

function addRelation(rv: Obj, scope: Scope, c: Collector): void {
  const rel = rv.relname as string;
  const schema = typeof rv.schemaname === 'string' ? rv.schemaname : undefined;
  const catalog = typeof rv.catalogname === 'string' ? rv.catalogname : undefined;
  c.relations.add(rel);
  noteAlias(rv.alias, c);
  if (schema === undefined && catalog === undefined && scope.ctes.has(rel)) return;
  const name = catalog !== undefined ? `${catalog}.${schema ?? ''}.${rel}` : schema !== undefined ? `${schema}.${rel}` : rel;
  (scope.write ? c.written : c.read).add(name);
}
