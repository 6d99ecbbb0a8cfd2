/**
 * Parse-tree statement node → SQL kind. Anything the table does not name is `unknown`, which the
 * policy engine always denies: a statement type added by a future PostgreSQL release is refused
 * until someone classifies it here.
 */
import type { SqlKind } from '../../pipeline/types.js';

const EXPLICIT: ReadonlyMap<string, SqlKind> = new Map(Object.entries({
  SelectStmt: 'select',
  // Cursors only ever run a SELECT (PostgreSQL rejects data-modifying WITH in DECLARE).
  DeclareCursorStmt: 'select',
  FetchStmt: 'select',
  ClosePortalStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  CopyStmt: 'copy',
  CallStmt: 'call',
  DoStmt: 'do',
  VariableSetStmt: 'set',
  ConstraintsSetStmt: 'set',
  // DISCARD resets session state, like RESET (DISCARD ALL includes RESET ALL).
  DiscardStmt: 'set',
  VariableShowStmt: 'utility',
  TransactionStmt: 'transaction',
  ExplainStmt: 'explain',
  PrepareStmt: 'prepare',
  DeallocateStmt: 'prepare',
  ExecuteStmt: 'execute',
  ListenStmt: 'listen',
  UnlistenStmt: 'listen',
  NotifyStmt: 'listen',
  LockStmt: 'lock',
  VacuumStmt: 'utility',
  ClusterStmt: 'utility',
  ReindexStmt: 'utility',
  CheckPointStmt: 'utility',
  LoadStmt: 'utility',
  GrantStmt: 'dcl',
  GrantRoleStmt: 'dcl',
  AlterDefaultPrivilegesStmt: 'dcl',
  CreateRoleStmt: 'dcl',
  AlterRoleStmt: 'dcl',
  AlterRoleSetStmt: 'dcl',
  DropRoleStmt: 'dcl',
  ReassignOwnedStmt: 'dcl',
  DropOwnedStmt: 'dcl',
  CreateUserMappingStmt: 'dcl',
  AlterUserMappingStmt: 'dcl',
  DropUserMappingStmt: 'dcl',
  TruncateStmt: 'ddl',
  CommentStmt: 'ddl',
  SecLabelStmt: 'ddl',
  RenameStmt: 'ddl',
  IndexStmt: 'ddl',
  ViewStmt: 'ddl',
  RuleStmt: 'ddl',
  DefineStmt: 'ddl',
  CompositeTypeStmt: 'ddl',
  RefreshMatViewStmt: 'ddl',
  ImportForeignSchemaStmt: 'ddl',
  CreatedbStmt: 'ddl',
  DropdbStmt: 'ddl',
} satisfies Record<string, SqlKind>));

/** CREATE …, ALTER …, DROP … statements not named above are schema changes. */
const DDL_PREFIXES = ['Create', 'Alter', 'Drop'] as const;

export function statementKind(node: string): SqlKind {
  const kind = EXPLICIT.get(node);
  if (kind !== undefined) return kind;
  if (node.endsWith('Stmt') && DDL_PREFIXES.some((p) => node.startsWith(p))) return 'ddl';
  return 'unknown';
}
