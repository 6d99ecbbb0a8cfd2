/**
 * Defence in depth for read-only roles: their upstream sessions run with
 * `default_transaction_read_only = on`, so a statement that would switch that off (or change
 * the upstream role) is denied even when a rule would allow its kind, e.g. `allow: [select, set]`.
 * https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-DEFAULT-TRANSACTION-READ-ONLY
 */
import type { SqlFacts } from '../pipeline/types.js';
import { isTrueSetting } from './sql/parser-safety.js';

/** Settings whose every change is refused; `RESET ALL` and `DISCARD ALL` are fine (see below). */
const GUARDED_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['role', 'SET/RESET ROLE would change the upstream role of a read-only session'],
  ['session_authorization', 'SET/RESET SESSION AUTHORIZATION would change the upstream role of a read-only session'],
  ['session_replication_role', 'changing session_replication_role would disable triggers and rules'],
]);

/**
 * Settings that hold the session read-only: setting them to anything but true is refused. RESET,
 * `TO DEFAULT`, `RESET ALL` and `DISCARD ALL` return them to the value the session started with,
 * which for a read-only session is Sluice's startup parameter `default_transaction_read_only=on`
 * (a client's startup value is the session default PostgreSQL resets to), so those stay allowed:
 * drivers reset pooled connections that way.
 */
const READ_ONLY_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['default_transaction_read_only', 'changing default_transaction_read_only would lift the read-only session'],
  ['transaction_read_only', 'changing transaction_read_only would lift the read-only transaction'],
]);

/** Why `facts` would undo read-only mode, or undefined when it would not. */
export function readOnlyViolation(facts: SqlFacts & { readonly transactionModes?: readonly string[]; readonly settingValues?: readonly string[] }): string | undefined {
  const readWrite = (facts.transactionModes ?? []).includes('read write') || (facts.transaction ?? '').includes('read write');
  if (facts.kind === 'set' && facts.setting !== undefined) {
    const why = GUARDED_SETTINGS.get(facts.setting);
    if (why !== undefined) return why;
    const values = facts.settingValues;
    const readOnly = READ_ONLY_SETTINGS.get(facts.setting);
    if (readOnly !== undefined && values !== undefined && !(values.length === 1 && isTrueSetting(values[0] as string))) return readOnly;
    if (readWrite) return `SET ${facts.setting.toUpperCase()} … READ WRITE would lift the read-only session`;
  }
  if (facts.kind === 'transaction' && readWrite) return 'a READ WRITE transaction would lift the read-only session';
  for (const fn of facts.functions) {
    const last = fn.slice(fn.lastIndexOf('.') + 1);
    if (last === 'set_config') return 'set_config() can change session settings, including read-only mode';
  }
  return undefined;
}
