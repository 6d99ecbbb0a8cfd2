/**
 * The small vocabulary every connector speaks to the shared pipeline. Nothing here knows a wire
 * protocol: connectors turn their bytes into an `Action`, the pipeline answers with a `Decision`.
 */

/** A verified caller. Built only by the identity stage from a token that passed verification. */
export interface Identity {
  readonly issuer: string;
  readonly subject: string;
  /** All verified claims of the token (untrusted shapes, so `unknown` values). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Roles granted by the claim→role mapping. */
  readonly roles: readonly string[];
  /** The AI model acting, when the token says so (`sluice_model` / `model` claim). */
  readonly model?: string;
  /** The human or workload that sponsors the agent, when known. */
  readonly sponsor?: string;
  /** Token expiry, seconds since epoch. */
  readonly expiresAt: number;
  /** Token id (`jti`) if present. */
  readonly tokenId?: string;
}

export type ActionKind = 'sql' | 'http' | 'k8s' | 'mcp';

/** Statement kinds the SQL parser reports. `unknown` never matches an allow-list of reads. */
export const SQL_KINDS = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'ddl',
  'dcl',
  'copy',
  'call',
  'do',
  'set',
  'transaction',
  'explain',
  'prepare',
  'execute',
  'listen',
  'lock',
  'utility',
  'unknown',
] as const;
export type SqlKind = (typeof SQL_KINDS)[number];

/** Facts about one SQL statement, derived from the real PostgreSQL parse tree. */
export interface SqlFacts {
  readonly kind: SqlKind;
  /** The parse-tree node name, e.g. `SelectStmt`, `CreateStmt`. */
  readonly statement: string;
  /** Tables read (schema-qualified when written so), lower-cased as PostgreSQL folds them. */
  readonly tablesRead: readonly string[];
  /** Tables written (insert/update/delete/merge targets, DDL targets, COPY FROM targets). */
  readonly tablesWritten: readonly string[];
  /** Functions called anywhere in the statement (lower-cased, schema-qualified when written so). */
  readonly functions: readonly string[];
  /** For update/delete/select: whether a WHERE clause is present. */
  readonly hasWhere: boolean;
  /** True when the statement may change state (data-modifying CTEs, SELECT INTO, FOR UPDATE, unsafe functions, …). */
  readonly sideEffects: boolean;
  /** Why `sideEffects` is true, for explanations. */
  readonly sideEffectReasons: readonly string[];
  /** True for statements whose effect can't be known statically (DO blocks, EXECUTE of dynamic SQL, unparseable text). */
  readonly dynamic: boolean;
  /** For SET/RESET: the parameter name (lower-cased). */
  readonly setting?: string;
  /** For COPY: direction. */
  readonly copyDirection?: 'to' | 'from';
  /** For COPY: whether it reads or writes a server-side file or program. */
  readonly copyFileOrProgram?: boolean;
  /** For transaction statements: BEGIN/COMMIT/ROLLBACK/… with options such as `read write`. */
  readonly transaction?: string;
}

/** What an agent asks for, normalised. */
export interface Action {
  readonly connection: string;
  readonly kind: ActionKind;
  /** A short verb: SQL kind, HTTP method, Kubernetes verb. */
  readonly verb: string;
  /** Objects touched: tables, paths, resources. */
  readonly objects: readonly string[];
  /** The command text as received (masked before it is recorded). */
  readonly text: string;
  /** Protocol facts; for SQL, one statement's facts. */
  readonly sql?: SqlFacts;
  readonly http?: Readonly<Record<string, unknown>>;
  readonly k8s?: Readonly<Record<string, unknown>>;
}

export type Effect = 'allow' | 'deny' | 'review';

export interface Decision {
  readonly effect: Effect;
  /** Stable rule name (`<role>/<connection>#<n>` unless the rule is named); `default-deny` when nothing matched. */
  readonly rule: string;
  readonly reason: string;
  /** Rule-level options carried to later stages (approval settings, mask profile). */
  readonly maskProfile?: string;
  readonly approval?: Readonly<Record<string, unknown>>;
}
