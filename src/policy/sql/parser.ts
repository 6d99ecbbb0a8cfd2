/**
 * The one door to the real PostgreSQL parser (libpg-query, compiled to WASM). The module loads
 * asynchronously once; after that every parse is synchronous so the hot path never awaits.
 */
import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, parseSync } from 'libpg-query';

let ready: Promise<void> | undefined;
let loaded = false;

/** Load the parser. Idempotent; call once at startup before `extractSqlFacts`. */
export function initSqlParser(): Promise<void> {
  ready ??= loadModule().then(() => {
    loaded = true;
  });
  return ready;
}

export function isSqlParserReady(): boolean {
  return loaded;
}

export type ParseOutcome =
  | { readonly ok: true; readonly stmts: readonly unknown[] }
  | { readonly ok: false; readonly error: string };

/** Parse `sql` into raw statements. Never throws for bad input; throws only if not initialised. */
export function parseStatements(sql: string): ParseOutcome {
  if (!loaded) throw new Error('SQL parser not initialised: await initSqlParser() at startup');
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, error: message.split('\n')[0] ?? 'parse error' };
  }
  const stmts = (tree as { stmts?: unknown }).stmts;
  return { ok: true, stmts: Array.isArray(stmts) ? stmts : [] };
}

/**
 * PostgreSQL's query fingerprint (constants normalised away), the key of approval grant windows:
 * `DELETE FROM t WHERE id = 1` and `… id = 2` share one. Unparseable text falls back to its hash.
 */
export function fingerprintSql(sql: string): string {
  if (!loaded) throw new Error('SQL parser not initialised: await initSqlParser() at startup');
  try {
    return fingerprintSync(sql);
  } catch {
    return 'text:' + createHash('sha256').update(sql).digest('hex');
  }
}
