/**
 * Column rules name table columns (`public.customers.ssn`), and a result names the relation each
 * column is read from (RowDescription's table OID): for a view, a materialized view, an
 * inheritance child or a partition that is the derived relation, not the table underneath. Left
 * there, `CREATE VIEW v AS SELECT password AS pw FROM customers` would show `pw` in clear to a
 * role whose rules mask `customers.password`, and `SELECT * FROM customers_2024` would bypass
 * every rule on the partitioned `customers`.
 *
 * RelationLineage maps derived relations back to the table columns they read, per connection,
 * from the upstream's own catalog and parser: a view's columns by PostgreSQL's Describe of its
 * definition (which names the table column behind each plain output column, through subqueries
 * and CTEs, and the inner view for views of views), a child's by its ancestors in `pg_inherits`.
 * A view whose definition computes on a masked column (`upper(password)`, a filter on it) is
 * judged by the same check a statement is (policy/sql/masked-columns.ts), and its computed columns
 * are replaced. Results use it through ColumnRef.origins; statements through protects(), so
 * `upper(pw)` on the view is refused as `upper(password)` on the table is.
 *
 * The catalog is read once per connection and again when a statement names a relation it has not
 * seen, after DDL through the gateway, and at most every RELOAD_AFTER_MS otherwise (a view a DBA
 * replaces out of band is seen within that time). Relations created in a transaction that has not
 * committed are invisible to the gateway's own connection until it commits.
 */
import type { ColumnRef, Masker } from '../../masking/index.js';
import { extractSqlFacts, maskedColumnViolation } from '../../policy/index.js';
import type { Described } from './describe.js';
import type { FieldDescription } from './rows.js';

/** How long a catalog snapshot is trusted before the next statement reloads it. */
export const RELOAD_AFTER_MS = 30_000;
/** Views of views nest; PostgreSQL's own limit is far above any real schema's. */
const MAX_DEPTH = 32;

/** One relation of the upstream database, as `pg_class` lists it. */
export interface CatalogRelation {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** `pg_class.relkind`: r table, p partitioned table, v view, m materialized view, f foreign table. */
  readonly kind: string;
  /** `pg_get_viewdef()` of a view or materialized view outside the system schemas. */
  readonly definition?: string;
  /** Every ancestor (`pg_inherits`, transitively), nearest first, for a child table or partition. */
  readonly ancestors?: readonly { readonly schema: string; readonly table: string }[];
}

/**
 * A user-defined type (OID 16384 and up): a composite's fields (every table's row type is one),
 * or the type an array or a domain wraps; other kinds (enums, extension types) with neither.
 */
export interface CatalogType {
  readonly oid: number;
  /** The relation behind a composite (a table's own, or a `CREATE TYPE … AS (…)`'s). */
  readonly relation?: { readonly schema: string; readonly name: string };
  readonly fields?: readonly { readonly name: string; readonly type: number }[];
  /** The element type of an array, the base type of a domain. */
  readonly inner?: number;
}

/** A column whose type is user-defined, by its relation's schema and name. */
export interface TypedColumn {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  readonly type: number;
}

/** OIDs below this are PostgreSQL's own (FirstNormalObjectId). */
export const FIRST_USER_OID = 16384;

/** What lineage needs from the upstream; the engine supplies it on its metadata connection. */
export interface LineageSource {
  /** Every relation of the database, with view definitions and ancestors. */
  catalog(): Promise<CatalogRelation[]>;
  /** User-defined types and the columns that have them. */
  types?(): Promise<{ readonly types: readonly CatalogType[]; readonly columns: readonly TypedColumn[] }>;
  /** Describe statements without running them (describe.ts). */
  describe(sqls: readonly string[]): Promise<Described[]>;
  /** The table columns described fields come from (schema, table and column names, by OID and attnum). */
  columns(fields: readonly FieldDescription[]): Promise<ColumnRef[]>;
  /** Forget cached column names: a reload may follow a rename. */
  forgetColumns(): void;
}

interface ViewColumn {
  readonly name: string;
  /** The relation and column the view selects as a plain column, or undefined when it computes it. */
  readonly from?: { readonly oid: number; readonly attnum: number; readonly ref: ColumnRef };
}

interface Derived {
  readonly rel: CatalogRelation;
  /** A view's columns in attnum order; undefined for a child table. */
  readonly columns?: readonly ViewColumn[];
  /** Why the view's columns cannot be followed at all (it could not be described). */
  readonly opaque?: string;
}

/** Per oid of a derived relation's column: its origins and whether it derives from a masked column. */
interface Resolved {
  readonly origins: readonly ColumnRef[];
  readonly derivedFromMasked: boolean;
}

export class RelationLineage {
  readonly #source: LineageSource;
  readonly #masker: Masker;
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  readonly #required: boolean;
  /** `schema.name` and `name` of every relation in the last snapshot. */
  #names = new Set<string>();
  /**
   * The schemas holding a relation of each name. Rules name a schema (`billing.accounts.iban`)
   * while statements usually do not, and which schema an unqualified name means depends on a
   * search_path the session, its role or a function may have changed: a statement's unqualified
   * name is checked against the rules of every schema that has it.
   */
  #schemas = new Map<string, string[]>();
  #oids = new Set<number>();
  #derived = new Map<number, Derived>();
  /** Derived relations by `schema.name` and `name`. */
  #byName = new Map<string, Derived[]>();
  /** Descriptions by oid, kept across reloads while the definition is the same. */
  #described = new Map<number, { readonly definition: string; readonly result: Described; readonly refs: ColumnRef[] }>();
  #resolved = new Map<string, Resolved>();
  #types = new Map<number, CatalogType>();
  /** Columns of a composite type (or an array or domain of one), by relation (`schema.name` and `name`) then column. */
  #typedColumns = new Map<string, Map<string, number>>();
  #typeProtected = new Map<number, boolean>();
  /** Column names of every relation with a row type, by `schema.name` and by `name` (every schema's, merged). */
  #relationColumns = new Map<string, string[]>();
  #viewReasons = new Map<number, string | null>();
  #loadedAt = -Infinity;
  #stale = true;
  /** Bumped by invalidate(): a load that began before it does not count as fresh. */
  #generation = 0;
  /** The last load failed and was tolerated (not `required`). */
  #degraded = false;
  #loading: Promise<void> | undefined;
  /** Names and OIDs still unknown after a reload, and when: not reloaded for again until the snapshot expires. */
  #missed = new Map<string | number, number>();

  /**
   * `required`: a catalog that cannot be read refuses statements (the connection has column
   * rules); otherwise it is logged and the last snapshot, possibly empty, keeps answering.
   */
  constructor(source: LineageSource, masker: Masker, log: (line: string) => void, options: { readonly required: boolean; readonly now?: () => number }) {
    this.#required = options.required;
    this.#source = source;
    this.#masker = masker;
    this.#log = log;
    this.#now = options.now ?? Date.now;
  }

  /** Reload before the next use (after DDL through the gateway). */
  invalidate(): void {
    this.#generation += 1;
    this.#stale = true;
  }

  /**
   * Undefined when the snapshot can answer for `tables` (names as a statement gives them) and
   * `fields` (a result's columns: the relations and user-defined types they name); else a promise
   * of a fresh one.
   */
  ready(tables: readonly string[] = [], fields: readonly Pick<FieldDescription, 'tableOid' | 'typeOid'>[] = []): Promise<void> | undefined {
    if (tables.length === 0 && !fields.some((f) => f.tableOid !== 0 || f.typeOid >= FIRST_USER_OID)) return undefined;
    if (this.#stale) return this.#fresh();
    // An expired snapshot keeps answering while the next loads: no statement waits for a refresh.
    if (this.#loading === undefined && this.#now() - this.#loadedAt > RELOAD_AFTER_MS) {
      this.#reload().catch((err: unknown) => this.#log(`postgres: could not refresh views and child tables (${(err as Error).message}); keeping the last snapshot`));
    }
    // After a failed, tolerated load only the expiry above tries again.
    if (this.#degraded) return undefined;
    let unknown: Array<string | number> | undefined;
    for (const t of tables) if (!this.#names.has(t) && !this.#missedSince(t)) (unknown ??= []).push(t);
    for (const { tableOid: o, typeOid: t } of fields) {
      if (o !== 0 && !this.#oids.has(o) && !this.#missedSince(o)) (unknown ??= []).push(o);
      if (t >= FIRST_USER_OID && !this.#types.has(t) && !this.#missedSince(-t)) (unknown ??= []).push(-t);
    }
    return unknown === undefined ? undefined : this.#refreshFor(unknown);
  }

  /** Load until a snapshot taken after the last invalidate() is in. */
  async #fresh(): Promise<void> {
    for (let i = 0; this.#stale && i < 4; i++) await (this.#loading ?? this.#reload());
    if (this.#stale) throw new Error('the catalog kept changing while it was read');
  }

  /** A snapshot that may name `unknown` (read after they were first seen); those it does not are not reloaded for again until it expires. */
  async #refreshFor(unknown: readonly (string | number)[]): Promise<void> {
    const inFlight = this.#loading;
    await (inFlight ?? this.#reload());
    // A load already running may have read the catalog before the relation existed.
    if (inFlight !== undefined && unknown.some((u) => !this.#knows(u))) await (this.#loading ?? this.#reload());
    const at = this.#now();
    if (this.#missed.size > 4096) this.#missed.clear();
    for (const u of unknown) if (!this.#knows(u)) this.#missed.set(u, at);
  }

  /** A name, a relation OID, or a type OID as its negative. */
  #knows(u: string | number): boolean {
    return typeof u === 'string' ? this.#names.has(u) : u < 0 ? this.#types.has(-u) : this.#oids.has(u);
  }

  /**
   * Whether `column`, read from one of `tables` (as a statement names them), derives from a
   * protected column: a view column selecting one, a computed view column in a view that computes
   * on one, or a child's column whose ancestor's is. The column's own name is the masker's to judge.
   */
  protects(column: string, tables: readonly string[]): boolean {
    for (const t of tables) {
      // An unqualified name may be any schema's table, whatever search_path says now.
      const schemas = t.includes('.') ? undefined : this.#schemas.get(t);
      if (schemas !== undefined) for (const s of schemas) if (s !== 'public' && this.#masker.protectsColumn(column, [`${s}.${t}`])) return true;
      // A column of a composite type with a masked field: `(c).password`, `c::text`.
      const typed = this.#typedColumns.get(t)?.get(column);
      if (typed !== undefined && this.#isTypeProtected(typed, 0)) return true;
      for (const d of this.#byName.get(t) ?? []) {
        if (d.columns === undefined) {
          if (this.#masker.protectsColumn(column, qualifiedAncestors(d.rel))) return true;
          continue;
        }
        const i = d.columns.findIndex((c) => c.name === column);
        if (i >= 0 && this.#viewColumnProtected(d, i + 1)) return true;
        if (i < 0 && d.opaque !== undefined) return true;
      }
    }
    return false;
  }

  /**
   * Whether a whole row of one of `tables` as JSON would carry a protected column under a field
   * name no rule reaches: a view with any column derived from a masked one, or a child whose
   * ancestors have table rules.
   */
  hasProtectedColumns(tables: readonly string[]): boolean {
    for (const t of tables) {
      const schemas = t.includes('.') ? undefined : this.#schemas.get(t);
      if (schemas !== undefined && schemas.some((s) => s !== 'public' && this.#masker.hasTableRules([`${s}.${t}`]))) return true;
      const typed = this.#typedColumns.get(t);
      if (typed !== undefined && [...typed.values()].some((type) => this.#isTypeProtected(type, 0))) return true;
      for (const d of this.#byName.get(t) ?? []) {
        if (d.columns === undefined) {
          if (this.#masker.hasTableRules(qualifiedAncestors(d.rel))) return true;
        } else if (d.opaque !== undefined || d.columns.some((_, i) => this.#viewColumnProtected(d, i + 1))) return true;
      }
    }
    return false;
  }

  /**
   * The column names of a relation as a statement names it, or undefined when the snapshot has
   * none (a CTE, a temporary table made since). An unqualified name merges every schema's.
   */
  columnsOf(relation: string): readonly string[] | undefined {
    return this.#relationColumns.get(relation);
  }

  /** `refs` (the result's columns, by the names its relations give) with origins where a relation is derived. */
  enrich(fields: readonly FieldDescription[], refs: ColumnRef[]): ColumnRef[] {
    let out: ColumnRef[] | undefined;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (f.typeOid >= FIRST_USER_OID && this.#isTypeProtected(f.typeOid, 0)) {
        // A composite value (`(admin,hunter2)`) carries its fields without their names: replaced whole.
        out ??= refs.slice();
        out[i] = { ...refs[i]!, derivedFromMasked: true };
        continue;
      }
      if (f.tableOid === 0 || !this.#derived.has(f.tableOid)) continue;
      const r = this.#resolve(f.tableOid, f.attnum, refs[i]!.column, 0);
      if (r.origins.length === 0 && !r.derivedFromMasked) continue;
      out ??= refs.slice();
      out[i] = { ...refs[i]!, ...(r.origins.length > 0 ? { origins: r.origins } : {}), ...(r.derivedFromMasked ? { derivedFromMasked: true } : {}) };
    }
    return out ?? refs;
  }

  #missedSince(key: string | number): boolean {
    const at = this.#missed.get(key);
    return at !== undefined && at >= this.#loadedAt;
  }

  #reload(): Promise<void> {
    const loading = this.#load().catch((err: unknown) => {
      if (this.#required) throw err;
      // No column rules: what a failed load loses is secret-like names renamed by a view; the
      // detectors still run on every value, so the session goes on with the last snapshot.
      this.#log(`postgres: views and child tables could not be read (${(err as Error).message}); masking by the names results give`);
      this.#stale = false;
      this.#degraded = true;
      this.#loadedAt = this.#now();
    }).finally(() => {
      this.#loading = undefined;
    });
    this.#loading = loading;
    return loading;
  }

  async #load(): Promise<void> {
    const started = this.#now();
    const generation = this.#generation;
    this.#source.forgetColumns();
    const relations = await this.#source.catalog();
    const typeInfo = this.#source.types === undefined ? undefined : await this.#source.types();
    const names = new Set<string>();
    const oids = new Set<number>();
    const derived: CatalogRelation[] = [];
    const schemas = new Map<string, string[]>();
    for (const r of relations) {
      names.add(`${r.schema}.${r.name}`).add(r.name);
      const list = schemas.get(r.name);
      if (list === undefined) schemas.set(r.name, [r.schema]);
      else list.push(r.schema);
      oids.add(r.oid);
      if (r.definition !== undefined || (r.ancestors !== undefined && r.ancestors.length > 0)) derived.push(r);
    }
    // Describe the views whose definition is new or changed, all on one connection.
    const toDescribe = derived.filter((r) => r.definition !== undefined && this.#described.get(r.oid)?.definition !== r.definition);
    const described = await this.#source.describe(toDescribe.map((r) => stripSemicolon(r.definition!)));
    const fields: FieldDescription[] = [];
    for (const d of described) if ('fields' in d) for (const f of d.fields) if (f.tableOid !== 0) fields.push(f);
    const refs = fields.length === 0 ? [] : await this.#source.columns(fields);
    const refByKey = new Map<string, ColumnRef>();
    fields.forEach((f, i) => refByKey.set(`${f.tableOid}:${f.attnum}`, refs[i]!));
    const keep = new Map<number, { readonly definition: string; readonly result: Described; readonly refs: ColumnRef[] }>();
    for (const r of derived) {
      const old = this.#described.get(r.oid);
      if (r.definition !== undefined && old?.definition === r.definition) keep.set(r.oid, old);
    }
    toDescribe.forEach((r, i) => {
      const result = described[i]!;
      const colRefs = 'fields' in result ? result.fields.map((f) => refByKey.get(`${f.tableOid}:${f.attnum}`) ?? { column: f.name }) : [];
      keep.set(r.oid, { definition: r.definition!, result, refs: colRefs });
    });
    this.#described = keep;
    const byOid = new Map<number, Derived>();
    const byName = new Map<string, Derived[]>();
    for (const r of derived) {
      let d: Derived;
      if (r.definition === undefined) d = { rel: r };
      else {
        const desc = keep.get(r.oid)!;
        if ('error' in desc.result) d = { rel: r, columns: [], opaque: `the upstream could not describe view ${r.schema}.${r.name}: ${desc.result.error}` };
        else {
          d = {
            rel: r,
            columns: desc.result.fields.map((f, i) => ({
              name: f.name,
              ...(f.tableOid !== 0 ? { from: { oid: f.tableOid, attnum: f.attnum, ref: desc.refs[i]! } } : {}),
            })),
          };
        }
      }
      byOid.set(r.oid, d);
      for (const n of [`${r.schema}.${r.name}`, r.name]) {
        const list = byName.get(n);
        if (list === undefined) byName.set(n, [d]);
        else list.push(d);
      }
    }
    const types = new Map<number, CatalogType>();
    for (const t of typeInfo?.types ?? []) types.set(t.oid, t);
    const typedColumns = new Map<string, Map<string, number>>();
    for (const c of typeInfo?.columns ?? []) {
      if (!isCompositeLike(types, c.type)) continue;
      for (const n of [`${c.schema}.${c.table}`, c.table]) {
        let m = typedColumns.get(n);
        if (m === undefined) typedColumns.set(n, (m = new Map()));
        m.set(c.column, c.type);
      }
    }
    const relationColumns = new Map<string, string[]>();
    for (const t of types.values()) {
      if (t.relation === undefined || t.fields === undefined) continue;
      const names = t.fields.map((f) => f.name);
      relationColumns.set(`${t.relation.schema}.${t.relation.name}`, names);
      const bare = relationColumns.get(t.relation.name);
      relationColumns.set(t.relation.name, bare === undefined ? names : [...new Set([...bare, ...names])]);
    }
    this.#relationColumns = relationColumns;
    this.#types = types;
    this.#typedColumns = typedColumns;
    this.#typeProtected = new Map();
    this.#names = names;
    this.#schemas = schemas;
    this.#oids = oids;
    this.#derived = byOid;
    this.#byName = byName;
    this.#resolved = new Map();
    this.#viewReasons = new Map();
    this.#stale = this.#generation !== generation;
    this.#degraded = false;
    this.#loadedAt = started;
    const opaque = [...byOid.values()].filter((d) => d.opaque !== undefined);
    for (const d of opaque.slice(0, 3)) this.#log(`postgres: ${d.opaque}; its columns are treated as masked`);
  }

  /** A column of a derived relation: the table columns behind it, nearest first. */
  #resolve(oid: number, attnum: number, column: string, depth: number): Resolved {
    const key = `${oid}:${attnum}`;
    const hit = this.#resolved.get(key);
    if (hit !== undefined) return hit;
    const d = this.#derived.get(oid);
    let r: Resolved = { origins: [], derivedFromMasked: false };
    if (d !== undefined && depth < MAX_DEPTH) {
      if (d.columns === undefined) {
        r = { origins: (d.rel.ancestors ?? []).map((a) => ({ schema: a.schema, table: a.table, column })), derivedFromMasked: false };
      } else if (d.opaque !== undefined) {
        r = { origins: [], derivedFromMasked: true };
      } else {
        const c = d.columns[attnum - 1];
        if (c?.from !== undefined) {
          const inner = this.#resolve(c.from.oid, c.from.attnum, c.from.ref.column, depth + 1);
          r = { origins: [c.from.ref, ...inner.origins], derivedFromMasked: inner.derivedFromMasked };
        } else {
          r = { origins: [], derivedFromMasked: c === undefined || this.#viewReason(d) !== undefined };
        }
      }
    } else if (depth >= MAX_DEPTH) {
      r = { origins: [], derivedFromMasked: true };
    }
    this.#resolved.set(key, r);
    return r;
  }

  /** Whether a value of this type carries a masked field: a composite's, through arrays, domains and nesting. */
  #isTypeProtected(oid: number, depth: number): boolean {
    const known = this.#typeProtected.get(oid);
    if (known !== undefined) return known;
    const t = this.#types.get(oid);
    if (t === undefined) return false;
    // Set first: a type cannot contain itself, but a broken catalog must not recurse forever.
    this.#typeProtected.set(oid, depth >= MAX_DEPTH);
    let hit = depth >= MAX_DEPTH;
    if (!hit && t.inner !== undefined && t.inner >= FIRST_USER_OID) hit = this.#isTypeProtected(t.inner, depth + 1);
    if (!hit && t.fields !== undefined) {
      const rel = t.relation === undefined ? [] : [`${t.relation.schema}.${t.relation.name}`];
      hit = t.fields.some(
        (f) => this.#masker.protectsColumn(f.name, rel) || (rel.length > 0 && this.protects(f.name, rel)) || (f.type >= FIRST_USER_OID && this.#isTypeProtected(f.type, depth + 1)),
      );
    }
    this.#typeProtected.set(oid, hit);
    return hit;
  }

  #viewColumnProtected(d: Derived, attnum: number): boolean {
    const r = this.#resolve(d.rel.oid, attnum, d.columns?.[attnum - 1]?.name ?? '', 0);
    if (r.derivedFromMasked) return true;
    return r.origins.some((o) => this.#masker.protectsColumn(o.column, o.table === undefined ? [] : [o.schema !== undefined ? `${o.schema}.${o.table}` : o.table]));
  }

  /** Why masking cannot follow the view's definition (policy/sql/masked-columns.ts), or undefined. */
  #viewReason(d: Derived): string | undefined {
    const known = this.#viewReasons.get(d.rel.oid);
    if (known !== undefined) return known ?? undefined;
    // Set first: a view cannot reference itself, but a broken catalog must not recurse forever.
    this.#viewReasons.set(d.rel.oid, 'its definition could not be checked');
    let reason: string | undefined;
    try {
      const protects = (column: string, tables: readonly string[]): boolean => this.#masker.protectsColumn(column, tables) || this.protects(column, tables);
      const hasRules = (tables: readonly string[]): boolean => this.#masker.hasTableRules(tables) || this.hasProtectedColumns(tables);
      for (const f of extractSqlFacts(stripSemicolon(d.rel.definition ?? ''))) {
        reason = maskedColumnViolation(f, protects, hasRules, (rel) => this.columnsOf(rel));
        if (reason !== undefined) break;
      }
    } catch (err) {
      reason = `its definition could not be parsed (${(err as Error).message})`;
    }
    this.#viewReasons.set(d.rel.oid, reason ?? null);
    return reason;
  }
}

/** A composite, or an array or domain of one (however nested). */
function isCompositeLike(types: ReadonlyMap<number, CatalogType>, oid: number): boolean {
  for (let t = types.get(oid), i = 0; t !== undefined && i < MAX_DEPTH; t = t.inner !== undefined ? types.get(t.inner) : undefined, i++) {
    if (t.fields !== undefined) return true;
  }
  return false;
}

function qualifiedAncestors(rel: CatalogRelation): string[] {
  return (rel.ancestors ?? []).map((a) => `${a.schema}.${a.table}`);
}

function stripSemicolon(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}
