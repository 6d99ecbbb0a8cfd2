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
  Partial<Pick<StatementFacts, 'computedColumns' | 'wholeRowValues' | 'renamedColumns' | 'starInSetOperation'>>;

/**
 * Catalogs that hold sample values of every analysed column: `pg_stats.most_common_vals` and
 * `histogram_bounds` list a masked column's most frequent values (`{hunter2}`) under the view's
 * own column names, where no column rule applies.
 */
const STATISTICS_VIEWS: ReadonlySet<string> = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data']);

/** Why masking could not follow this statement's use of columns, or undefined. */
export function maskedColumnViolation(f: Facts, protectsColumn: ProtectsColumn): string | undefined {
  const stats = f.tablesRead.find((t) => STATISTICS_VIEWS.has(t.slice(t.lastIndexOf('.') + 1)));
  if (stats !== undefined) return `${stats} holds sample values of table columns (most common values, histogram bounds), masked ones included, where masking cannot follow them`;
  const computed = f.computedColumns ?? [];
  const tables = computed.length === 0 ? [] : [...f.tablesRead, ...f.tablesWritten];
  const column = computed.find((name) => protectsColumn(name, tables));
  if (column !== undefined) {
    return `column "${column}" is masked, and it is used where masking cannot follow it (an expression, a filter, a subquery, a set operation or a write); select it as a plain column of the query, where it is masked`;
  }
  if (f.wholeRowValues === true) return 'a whole row used as a value carries every column past column masking; select the columns, or use row_to_json()';
  if (f.starInSetOperation === true) return "SELECT * in a UNION, INTERSECT or EXCEPT outputs every column under the first branch's names, where masking cannot follow them; list the columns";
  if (f.renamedColumns === true && computed.length > 0) return 'a column alias list (AS t(a, b)) renames columns that the statement then computes on, where masking cannot follow them';
  return undefined;
}
