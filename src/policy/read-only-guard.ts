/**
 * Defence in depth for read-only roles: their upstream sessions run with
 * `default_transaction_read_only = on`, so a statement that would switch that off (or change
 * the upstream role) is denied even when a rule would allow its kind, e.g. `allow: [select, set]`.
 * https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-DEFAULT-TRANSACTION-READ-ONLY
 */
import type { SqlFacts } from '../pipeline/types.js';

const GUARDED_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['default_transaction_read_only', 'changing default_transaction_read_only would lift the read-only session'],
  ['transaction_read_only', 'changing transaction_read_only would lift the read-only transaction'],
  ['all', 'RESET ALL would reset the read-only session settings'],
  ['role', 'SET/RESET ROLE would change the upstream role of a read-only session'],
  ['session_authorization', 'SET/RESET SESSION AUTHORIZATION would change the upstream role of a read-only session'],
  ['session_replication_role', 'changing session_replication_role would disable triggers and rules'],
]);

/** Why `facts` would undo read-only mode, or undefined when it would not. */
export function readOnlyViolation(facts: SqlFacts & { readonly transactionModes?: readonly string[] }): string | undefined {
  const readWrite = (facts.transactionModes ?? []).includes('read write') || (facts.transaction ?? '').includes('read write');
  if (facts.kind === 'set' && facts.setting !== undefined) {
    const why = GUARDED_SETTINGS.get(facts.setting);
    if (why !== undefined) return why;
    if (readWrite) return `SET ${facts.setting.toUpperCase()} … READ WRITE would lift the read-only session`;
  }
  if (facts.statement === 'DiscardStmt' && facts.setting === 'all') return 'DISCARD ALL would reset the read-only session settings';
  if (facts.kind === 'transaction' && readWrite) return 'a READ WRITE transaction would lift the read-only session';
  for (const fn of facts.functions) {
    const last = fn.slice(fn.lastIndexOf('.') + 1);
    if (last === 'set_config') return 'set_config() can change session settings, including read-only mode';
  }
  return undefined;
}
