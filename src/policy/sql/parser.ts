/**
 * The one door to the real PostgreSQL parser (libpg-query, compiled to WASM). The module loads
 * asynchronously once; after that every parse is synchronous so the hot path never awaits.
 */
import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, parseSync, scanSync } from 'libpg-query';

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

/**
 * The text inside the first parenthesised group of `sql` (`COPY (SELECT …) TO …` → `SELECT …`),
 * found with PostgreSQL's own lexer so parentheses in strings, quoted names and comments do not
 * count. Undefined when there is none or the scan fails.
 */
export function firstParenthesised(sql: string): string | undefined {
  if (!loaded) throw new Error('SQL parser not initialised: await initSqlParser() at startup');
  let tokens: readonly { start: number; end: number; text: string }[];
  try {
    tokens = (scanSync(sql) as { tokens: { start: number; end: number; text: string }[] }).tokens;
  } catch {
    return undefined;
  }
  // Token offsets are bytes into the UTF-8 text.
  const bytes = Buffer.from(sql, 'utf8');
  let depth = 0;
  let open = -1;
  for (const t of tokens) {
    if (t.text === '(') {
      if (depth === 0) open = t.end;
      depth++;
    } else if (t.text === ')' && depth > 0) {
      depth--;
      if (depth === 0) return bytes.subarray(open, t.start).toString('utf8').trim();
    }
  }
  return undefined;
}
