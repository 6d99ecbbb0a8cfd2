/**
 * Masking follows a column only where a result describes it (PostgreSQL's RowDescription names
 * its table and column). A masked column computed on — `upper(password)`, a filter, a subquery, a
 * set operation, a write — would leave unmasked, as would a whole row turned into a value
 * (`t::text`) or renamed columns computed on. The PostgreSQL connector refuses such statements
 * (`masked-column-use`) while masking is on, and `sluice policy check` shows the same refusal; the
 * column as a plain output column stays allowed.
 */
import type { StatementFacts } from './facts.js';

/** Whether a column (by name, with the tables the statement reads and writes) is masked. */
export type ProtectsColumn = (column: string, tables: readonly string[]) => boolean;

type Facts = Pick<StatementFacts, 'tablesRead' | 'tablesWritten'> &
  Partial<
    Pick<
      StatementFacts,
      'computedColumns' | 'wholeRowValues' | 'renamedColumns' | 'starInSetOperation' | 'nestedStarOrdering' | 'naturalJoinUnseen' | 'jsonRowOutput' | 'jsonKeys' | 'jsonDynamicKey' | 'jsonUnwrap' | 'naturalJoinTables'
    >
  >;

/**
 * Whether a column rule names one of `tables` (`public.customers.email`, `billing.*.iban`): JSON
 * made of a whole row names its fields without their table, so such a rule cannot apply to it.
 */
export type HasTableRules = (tables: readonly string[]) => boolean;

/**
 * Catalogs that hold sample values of every analysed column: `pg_stats.most_common_vals` and
 * `histogram_bounds` list a masked column's most frequent values (`{hunter2}`) under the view's
 * own column names, where no column rule applies.
 */
const STATISTICS_VIEWS: ReadonlySet<string> = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data']);

/**
 * Why masking could not follow this statement's use of columns, or undefined. A result that sorts
 * or groups by columns of `*` (StatementFacts.starOrdering) is checked by starOrderingViolation
 * once the upstream has described it.
 */
/** The column names of a relation as a statement names it (a catalog's answer), or undefined when unknown. */
export type RelationColumns = (relation: string) => readonly string[] | undefined;

export function maskedColumnViolation(f: Facts, protectsColumn: ProtectsColumn, hasTableRules?: HasTableRules, relationColumns?: RelationColumns): string | undefined {
  const stats = f.tablesRead.find((t) => STATISTICS_VIEWS.has(t.slice(t.lastIndexOf('.') + 1)));
  if (stats !== undefined) return `${stats} holds sample values of table columns (most common values, histogram bounds), masked ones included, where masking cannot follow them`;
  const computed = f.computedColumns ?? [];
  const tables = computed.length === 0 ? [] : [...f.tablesRead, ...f.tablesWritten];
  const column = computed.find((name) => protectsColumn(name, tables));
  if (column !== undefined) {
    return `column "${column}" is masked, and it is used where masking cannot follow it (an expression, a filter, a subquery, a set operation or a write); select it as a plain column of the query, where it is masked`;
  }
  if (f.wholeRowValues === true) return 'a whole row used as a value carries every column past column masking; select the columns, or use row_to_json()';
  // JSON stored in a column is masked by its keys; a value extracted from under one leaves without it.
  const key = f.jsonKeys?.find((k) => protectsColumn(k, []));
  if (key !== undefined) {
    return `JSON field "${key}" is masked by its name, and extracting it (->, ->>, #>>, a subscript, jsonb_extract_path, a JSON path) returns its value without that name; select the JSON value whole, where it is masked`;
  }
  if (f.jsonDynamicKey === true) {
    return 'it extracts a JSON field chosen at run time (a parameter, a column, a wildcard path, .keyvalue()), which could be one masked by its name; name the fields with literal keys';
  }
  if (f.jsonUnwrap !== undefined) {
    return `${f.jsonUnwrap}() returns JSON values apart from the keys they are masked by; select the JSON value whole, or extract fields by literal keys`;
  }
  if (f.starInSetOperation === true) return "SELECT * in a UNION, INTERSECT or EXCEPT outputs every column under the first branch's names, where masking cannot follow them; list the columns";
  if (f.jsonRowOutput === true && hasTableRules?.(f.tablesRead) === true) {
    return `a whole row as JSON names its fields without their table, so the column rules for ${f.tablesRead.join(', ')} cannot apply to it; select the columns`;
  }
  if (f.naturalJoinUnseen === true) {
    const unseen = 'NATURAL JOIN compares every column its two sides share, which cannot be seen here and may be masked; name the join columns with USING (…) or ON';
    // With a catalog, the columns two named relations share are known: only a masked one refuses.
    if (f.naturalJoinTables === undefined || relationColumns === undefined) return unseen;
    for (const [l, r] of f.naturalJoinTables) {
      const left = relationColumns(l);
      const right = relationColumns(r);
      if (left === undefined || right === undefined) return unseen;
      const shared = left.find((name) => right.includes(name) && protectsColumn(name, [l, r]));
      if (shared !== undefined) return `column "${shared}" is masked, and NATURAL JOIN of ${l} and ${r} compares it, where masking cannot follow it; name the join columns with USING (…) or ON`;
    }
  }
  if (f.nestedStarOrdering === true) {
    return 'it sorts, groups or deduplicates by columns of * (by position, or DISTINCT) in a subquery, a CTE, COPY, DECLARE or PREPARE, whose columns cannot be described first and may be masked; list the columns';
  }
  if (f.renamedColumns === true && computed.length > 0) return 'a column alias list (AS t(a, b)) renames columns that the statement then computes on, where masking cannot follow them';
  return undefined;
}

/** A described result column: the table column it comes from, where the upstream says. */
export interface DescribedColumn {
  readonly column: string;
  /** `schema.table` or `table`, when the column comes from a table. */
  readonly table?: string;
}

/**
 * For a statement whose result sorts, groups or deduplicates by columns of `*`: the masked column
 * among them, as a refusal, or undefined. `columns` is the result as the upstream described it.
 */
export function starOrderingViolation(
  ordering: NonNullable<StatementFacts['starOrdering']>,
  columns: readonly DescribedColumn[],
  protectsColumn: ProtectsColumn,
): string | undefined {
  const positions = ordering.distinct ? columns.map((_, i) => i + 1) : ordering.positions;
  for (const p of positions) {
    const col = columns[p - 1];
    if (col === undefined || !protectsColumn(col.column, col.table !== undefined ? [col.table] : [])) continue;
    const how = ordering.distinct && !ordering.positions.includes(p) ? 'SELECT DISTINCT deduplicates by' : `position ${p} sorts or groups by`;
    return `${how} column "${col.column}", which is masked, where masking cannot follow it; list the columns and leave the masked one out of ORDER BY, GROUP BY and DISTINCT`;
  }
  return undefined;
}
