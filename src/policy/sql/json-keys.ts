/**
 * A JSON value stored in a column is masked by its keys: `{"password": "hunter2"}` leaves as
 * `{"password": "[REDACTED:password]"}`. Extracting a field (`cfg->>'password'`, `cfg #>>
 * '{db,password}'`, `cfg['password']`, `jsonb_extract_path_text`, a JSON path) returns the bare
 * value under a column name masking cannot tie to the key, and `jsonb_each_text` returns keys and
 * values as separate columns. This module reads which keys a statement extracts, so the masked-column
 * check (masked-columns.ts) can refuse the ones masked by name and the ones chosen at run time.
 */

import { asObject, listOf, type Obj } from './ast.js';

/** What a statement's JSON extraction names. */
export interface JsonKeyUse {
  /** Keys (and path elements) named by literals. */
  readonly keys: Set<string>;
  /** A key, path or jsonpath chosen at run time (a parameter, a column, a wildcard, `.keyvalue()`). */
  dynamic: boolean;
  /** A function that returns JSON values apart from their keys (`jsonb_each_text`), if any. */
  unwrap: string | undefined;
}

/** `->`, `->>` take a key or an index; `#>`, `#>>` a path (a text array). */
const EXTRACT_OPERATORS: ReadonlySet<string> = new Set(['->', '->>', '#>', '#>>']);
/** Containment: a literal JSON document on either side names keys as a probe (`cfg @> '{"password": "hunter2"}'`). */
const CONTAINMENT_OPERATORS: ReadonlySet<string> = new Set(['@>', '<@']);
/** `jsonb @? jsonpath`, `jsonb @@ jsonpath` (also tsvector @@ tsquery: only a `$` path counts). */
const PATH_OPERATORS: ReadonlySet<string> = new Set(['@?', '@@']);
const EXTRACT_FUNCTIONS: ReadonlySet<string> = new Set(['json_extract_path', 'json_extract_path_text', 'jsonb_extract_path', 'jsonb_extract_path_text']);
const PATH_FUNCTIONS: ReadonlySet<string> = new Set([
  'jsonb_path_query',
  'jsonb_path_query_array',
  'jsonb_path_query_first',
  'jsonb_path_exists',
  'jsonb_path_match',
  'jsonb_path_query_tz',
  'jsonb_path_query_array_tz',
  'jsonb_path_query_first_tz',
  'jsonb_path_exists_tz',
  'jsonb_path_match_tz',
]);
/** Functions whose output carries JSON values without the keys they were under. */
const UNWRAP_FUNCTIONS: ReadonlySet<string> = new Set(['json_each', 'json_each_text', 'jsonb_each', 'jsonb_each_text', 'json_to_tsvector', 'jsonb_to_tsvector']);

export function newJsonKeyUse(): JsonKeyUse {
  return { keys: new Set(), dynamic: false, unwrap: undefined };
}

/** An operator expression (`A_Expr`): JSON extraction, containment or a JSON path. */
export function noteJsonOperator(expr: Obj, use: JsonKeyUse): void {
  if (expr.kind !== 'AEXPR_OP') return;
  const name = listOf(expr.name);
  const op = asObject(asObject(name[name.length - 1])?.String)?.sval;
  if (typeof op !== 'string') return;
  if (EXTRACT_OPERATORS.has(op)) {
    const right = unwrapCast(expr.rexpr);
    const k = asObject(right?.A_Const);
    if (k !== undefined) {
      const s = asObject(k.sval)?.sval;
      // An integer is an array index; a string is a key, or for #> / #>> a path.
      if (typeof s === 'string') for (const key of op.startsWith('#') ? arrayLiteral(s) : [s]) use.keys.add(key);
      return;
    }
    const elements = asObject(right?.A_ArrayExpr)?.elements;
    if (op.startsWith('#') && Array.isArray(elements)) {
      for (const e of elements) {
        const s = constString(e);
        if (s !== undefined) use.keys.add(s);
        else if (asObject(unwrapCast(e)?.A_Const)?.ival === undefined) use.dynamic = true;
      }
      return;
    }
    use.dynamic = true;
    return;
  }
  if (CONTAINMENT_OPERATORS.has(op)) {
    for (const side of [expr.lexpr, expr.rexpr]) {
      const s = constString(side);
      if (s !== undefined) jsonDocumentKeys(s, use);
    }
    return;
  }
  if (PATH_OPERATORS.has(op)) {
    const s = constString(expr.rexpr);
    if (s !== undefined) {
      if (s.includes('$')) jsonPathKeys(s, use);
    } else if (op === '@?') use.dynamic = true;
  }
}

/** A function call by its last name part, lower case, and its arguments. */
export function noteJsonFunction(name: string, args: readonly unknown[], use: JsonKeyUse): void {
  if (UNWRAP_FUNCTIONS.has(name)) {
    use.unwrap ??= name;
    return;
  }
  if (EXTRACT_FUNCTIONS.has(name)) {
    for (const a of args.slice(1)) {
      const s = constString(a);
      if (s !== undefined) use.keys.add(s);
      else use.dynamic = true;
    }
    return;
  }
  if (PATH_FUNCTIONS.has(name)) {
    const s = constString(args[1]);
    if (s !== undefined) jsonPathKeys(s, use);
    else use.dynamic = true;
  }
}

/** Subscripts (`cfg['db']['password']`, PostgreSQL 14+): a string constant is a key; an index or an expression is not read as one. */
export function noteSubscripts(indirection: unknown, use: JsonKeyUse): void {
  for (const i of listOf(indirection)) {
    const idx = asObject(asObject(i)?.A_Indices);
    if (idx === undefined) continue;
    const s = constString(idx.uidx);
    if (s !== undefined) use.keys.add(s);
  }
}

/**
 * Keys a jsonpath names: `.key`, `."quoted key"`, in filters too (`? (@.password == "x")`).
 * A wildcard member (`.*`, `.**`) or `.keyvalue()` reaches keys not named, so counts as dynamic.
 */
export function jsonPathKeys(path: string, use: JsonKeyUse): void {
  const re = /\.\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_$][\w$]*)\s*(\()?|(\*\*?))/g;
  for (let m = re.exec(path); m !== null; m = re.exec(path)) {
    if (m[4] !== undefined) use.dynamic = true;
    else if (m[1] !== undefined) use.keys.add(m[1].replace(/\\(.)/g, '$1'));
    else if (m[3] !== undefined) {
      // A method: `.keyvalue()` turns every member into {key, value}, apart from each other.
      if (m[2]!.toLowerCase() === 'keyvalue') use.dynamic = true;
    } else use.keys.add(m[2]!);
  }
}

/** Keys of a literal JSON document, at any depth; text that is not JSON names none. */
function jsonDocumentKeys(text: string, use: JsonKeyUse): void {
  const t = text.trimStart();
  if (!t.startsWith('{') && !t.startsWith('[')) return;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return;
  }
  const walk = (v: unknown, depth: number): void => {
    if (depth > 64 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    else
      for (const [k, x] of Object.entries(v)) {
        use.keys.add(k);
        walk(x, depth + 1);
      }
  };
  walk(doc, 0);
}

/** The elements of a PostgreSQL array literal (`{db,password}`, `{"a b",c}`). */
export function arrayLiteral(s: string): string[] {
  const t = s.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) return [s];
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 1; i < t.length - 1; i++) {
    const ch = t[i]!;
    if (quoted) {
      if (ch === '\\' && i + 1 < t.length - 1) cur += t[++i];
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') {
      out.push(wasQuoted ? cur : cur.trim());
      cur = '';
      wasQuoted = false;
    } else cur += ch;
  }
  out.push(wasQuoted ? cur : cur.trim());
  return out;
}

/** A string constant, under any casts (`'password'`, `'{a,b}'::text[]`), or undefined. */
function constString(node: unknown): string | undefined {
  const s = asObject(asObject(unwrapCast(node)?.A_Const)?.sval)?.sval;
  return typeof s === 'string' ? s : undefined;
}

function unwrapCast(node: unknown): Obj | undefined {
  let n = asObject(node);
  for (let i = 0; i < 8 && n?.TypeCast !== undefined; i++) n = asObject(asObject(n.TypeCast)?.arg);
  return n;
}
