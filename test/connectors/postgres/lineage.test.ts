/**
 * RelationLineage with a scripted catalog: what a derived relation's columns map to, when the
 * catalog is read again, and that a load racing DDL never counts as fresh. The end-to-end
 * behaviour with a real PostgreSQL is test/e2e/postgres-lineage.test.ts.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker, type ColumnRef } from '../../../src/masking/index.js';
import { initSqlParser } from '../../../src/policy/index.js';
import { RELOAD_AFTER_MS, RelationLineage, type CatalogRelation, type LineageSource } from '../../../src/connectors/postgres/lineage.js';
import type { Described } from '../../../src/connectors/postgres/describe.js';
import type { FieldDescription } from '../../../src/connectors/postgres/rows.js';

const CUSTOMERS = 100;
const field = (name: string, tableOid = 0, attnum = 0): FieldDescription => ({ name, tableOid, attnum, typeOid: 25, format: 0 });
const COLUMNS: Record<string, ColumnRef> = {
  '100:1': { schema: 'public', table: 'customers', column: 'id' },
  '100:2': { schema: 'public', table: 'customers', column: 'name' },
  '100:3': { schema: 'public', table: 'customers', column: 'password' },
  '200:1': { schema: 'public', table: 'v', column: 'id' },
  '200:2': { schema: 'public', table: 'v', column: 'pw' },
};

/** A catalog the test edits between loads; describes answer from `views`. */
class FakeSource implements LineageSource {
  relations: CatalogRelation[] = [{ oid: CUSTOMERS, schema: 'public', name: 'customers', kind: 'r' }];
  views = new Map<string, Described>();
  loads = 0;
  describes = 0;
  gate: Promise<void> | undefined;
  async catalog(): Promise<CatalogRelation[]> {
    this.loads += 1;
    const snapshot = this.relations.slice();
    if (this.gate !== undefined) await this.gate;
    return snapshot;
  }
  async describe(sqls: readonly string[]): Promise<Described[]> {
    this.describes += sqls.length;
    return sqls.map((s) => this.views.get(s) ?? { error: `relation in "${s}" does not exist` });
  }
  async columns(fields: readonly FieldDescription[]): Promise<ColumnRef[]> {
    return fields.map((f) => COLUMNS[`${f.tableOid}:${f.attnum}`] ?? { column: f.name });
  }
  forgetColumns(): void {}
}

const masker = createMasker({ columns: { 'public.customers.password': 'redact' }, detectors: ['default'] });

function viewOf(source: FakeSource, oid: number, name: string, definition: string, described: Described): void {
  source.relations.push({ oid, schema: 'public', name, kind: 'v', definition });
  source.views.set(definition, described);
}

describe('RelationLineage', () => {
  before(() => initSqlParser());

  it("maps a view's plain columns to the table columns they select, through a view of a view", async () => {
    const src = new FakeSource();
    viewOf(src, 200, 'v', 'SELECT id, password AS pw FROM customers', { fields: [field('id', CUSTOMERS, 1), field('pw', CUSTOMERS, 3)] });
    viewOf(src, 300, 'vv', 'SELECT pw AS k FROM v', { fields: [field('k', 200, 2)] });
    const l = new RelationLineage(src, masker, () => undefined, { required: true });
    await l.ready(['customers']);
    const refs = l.enrich([field('k', 300, 1)], [{ schema: 'public', table: 'vv', column: 'k' }]);
    assert.deepEqual(
      refs[0]?.origins?.map((o) => `${o.table}.${o.column}`),
      ['v.pw', 'customers.password'],
    );
    assert.equal(masker.planColumns(refs).maskValue(0, 'hunter2'), '[REDACTED]');
    assert.equal(l.protects('k', ['vv']), true);
    assert.equal(l.protects('k', ['public.vv']), true);
    assert.equal(l.protects('id', ['v']), false);
    assert.equal(l.protects('pw', ['customers']), false, 'a base table is the masker’s own business');
  });

  it('replaces the computed columns of a view that computes on a masked column, and only those', async () => {
    const src = new FakeSource();
    viewOf(src, 200, 'up', 'SELECT id, upper(password) AS u, upper(name) AS n FROM customers', { fields: [field('id', CUSTOMERS, 1), field('u'), field('n')] });
    viewOf(src, 201, 'names', 'SELECT id, upper(name) AS n FROM customers', { fields: [field('id', CUSTOMERS, 1), field('n')] });
    const l = new RelationLineage(src, masker, () => undefined, { required: true });
    await l.ready(['customers']);
    const up = l.enrich([field('id', 200, 1), field('u', 200, 2), field('n', 200, 3)], [{ column: 'id' }, { column: 'u' }, { column: 'n' }]);
    assert.equal(up[0]?.derivedFromMasked, undefined);
    assert.equal(up[1]?.derivedFromMasked, true);
    assert.equal(up[2]?.derivedFromMasked, true, 'which computed column carries the password cannot be told');
    const names = l.enrich([field('n', 201, 2)], [{ column: 'n' }]);
    assert.equal(names[0]?.derivedFromMasked, undefined);
    const plan = masker.planColumns(up);
    assert.deepEqual(plan.actions, ['scan', 'replace', 'replace']);
    // A rule naming the view's own column decides for it.
    const own = createMasker({ columns: { 'public.up.n': 'keep', 'public.customers.password': 'redact' }, detectors: ['default'] });
    assert.deepEqual(own.planColumns(up.map((r, i) => ({ ...r, schema: 'public', table: 'up', column: ['id', 'u', 'n'][i]! }))).actions, ['scan', 'replace', 'keep']);
  });

  it('treats every column of a view the upstream cannot describe as masked', async () => {
    const src = new FakeSource();
    src.relations.push({ oid: 200, schema: 'public', name: 'odd', kind: 'v', definition: 'SELECT * FROM elsewhere' });
    const lines: string[] = [];
    const l = new RelationLineage(src, masker, (line) => lines.push(line), { required: true });
    await l.ready(['customers']);
    assert.equal(l.protects('anything', ['odd']), true);
    assert.equal(l.hasProtectedColumns(['odd']), true);
    assert.equal(l.enrich([field('x', 200, 1)], [{ column: 'x' }])[0]?.derivedFromMasked, true);
    assert.match(lines.join('\n'), /could not describe view public\.odd/);
  });

  it("gives a child table or partition its ancestors' columns", async () => {
    const src = new FakeSource();
    src.relations.push({ oid: 400, schema: 'public', name: 'customers_2026', kind: 'r', ancestors: [{ schema: 'public', table: 'customers' }] });
    const l = new RelationLineage(src, masker, () => undefined, { required: true });
    await l.ready(['customers']);
    const refs = l.enrich([field('password', 400, 3)], [{ schema: 'public', table: 'customers_2026', column: 'password' }]);
    assert.deepEqual(refs[0]?.origins, [{ schema: 'public', table: 'customers', column: 'password' }]);
    assert.equal(l.protects('password', ['customers_2026']), true);
    assert.equal(l.protects('id', ['customers_2026']), false);
  });

  it('reloads once for a name or OID it has not seen, then not again for it until the snapshot expires', async () => {
    let now = 1_000_000;
    const src = new FakeSource();
    const l = new RelationLineage(src, masker, () => undefined, { required: true, now: () => now });
    await l.ready(['customers']);
    assert.equal(src.loads, 1);
    assert.equal(l.ready(['customers', 'public.customers'], [{ tableOid: CUSTOMERS, typeOid: 25 }]), undefined);
    viewOf(src, 200, 'v', 'SELECT id, password AS pw FROM customers', { fields: [field('id', CUSTOMERS, 1), field('pw', CUSTOMERS, 3)] });
    await l.ready(['v']);
    assert.equal(src.loads, 2);
    assert.equal(l.protects('pw', ['v']), true);
    await l.ready(['nosuch']);
    assert.equal(src.loads, 3);
    assert.equal(l.ready(['nosuch']), undefined, 'still unknown: not reloaded for again');
    const oid = l.ready([], [{ tableOid: 999, typeOid: 25 }]);
    assert.ok(oid instanceof Promise, 'an OID not seen is its own key');
    await oid;
    assert.equal(src.loads, 4);
    // Views described once are not described again while their definition stays the same.
    assert.equal(src.describes, 1);
    now += RELOAD_AFTER_MS + 1;
    assert.equal(l.ready(['customers']), undefined, 'an expired snapshot refreshes in the background');
    assert.equal(src.loads, 5);
  });

  it('marks values of a composite type with a masked field, through arrays, domains and nesting', async () => {
    const src = new FakeSource() as FakeSource & { types: NonNullable<LineageSource['types']> };
    // creds (login, password); wrapper (note, inner creds); creds[]; a domain over wrapper; point (x, y).
    src.types = async () => ({
      types: [
        { oid: 20001, relation: { schema: 'public', name: 'creds' }, fields: [{ name: 'login', type: 25 }, { name: 'password', type: 25 }] },
        { oid: 20002, relation: { schema: 'public', name: 'wrapper' }, fields: [{ name: 'note', type: 25 }, { name: 'inner', type: 20001 }] },
        { oid: 20003, inner: 20001 },
        { oid: 20004, inner: 20002 },
        { oid: 20005, relation: { schema: 'public', name: 'point' }, fields: [{ name: 'x', type: 23 }, { name: 'y', type: 23 }] },
      ],
      columns: [
        { schema: 'public', table: 'svc', column: 'c', type: 20004 },
        { schema: 'public', table: 'svc', column: 'p', type: 20005 },
      ],
    });
    const l = new RelationLineage(src, masker, () => undefined, { required: true });
    await l.ready(['svc']);
    const marked = (type: number): boolean | undefined => l.enrich([{ ...field('v'), typeOid: type }], [{ column: 'v' }])[0]?.derivedFromMasked;
    assert.equal(marked(20001), true);
    assert.equal(marked(20002), true, 'nested');
    assert.equal(marked(20003), true, 'array');
    assert.equal(marked(20004), true, 'domain over a nested composite');
    assert.equal(marked(20005), undefined);
    assert.equal(l.protects('c', ['svc']), true);
    assert.equal(l.protects('p', ['public.svc']), false);
    assert.equal(l.hasProtectedColumns(['svc']), true);
    // A type the snapshot has not seen asks for a reload, once.
    const unseen = l.ready([], [{ tableOid: 0, typeOid: 29999 }]);
    assert.ok(unseen instanceof Promise);
    await unseen;
    assert.equal(l.ready([], [{ tableOid: 0, typeOid: 29999 }]), undefined);
  });

  it('refuses when the catalog cannot be read and column rules depend on it; otherwise logs and goes on', async () => {
    const failing = new FakeSource();
    failing.catalog = () => Promise.reject(new Error('too many connections for role "app"'));
    await assert.rejects(new RelationLineage(failing, masker, () => undefined, { required: true }).ready(['customers']) as Promise<void>, /too many connections/);
    const lines: string[] = [];
    const lenient = new RelationLineage(failing, masker, (line) => lines.push(line), { required: false });
    await lenient.ready(['customers']);
    assert.match(lines.join('\n'), /could not be read \(too many connections/);
    assert.equal(lenient.ready(['customers']), undefined, 'not retried on every statement');
    assert.equal(lenient.ready([], [{ tableOid: 0, typeOid: 25 }]), undefined, 'a result naming no relation needs no catalog');
  });

  it('does not count a load that began before invalidate() as fresh', async () => {
    const src = new FakeSource();
    const l = new RelationLineage(src, masker, () => undefined, { required: true });
    await l.ready(['customers']);
    l.invalidate();
    let open!: () => void;
    src.gate = new Promise<void>((r) => (open = r));
    const first = l.ready(['customers']);
    assert.ok(first instanceof Promise);
    // DDL lands while the catalog is being read: that snapshot predates it.
    viewOf(src, 200, 'v', 'SELECT id, password AS pw FROM customers', { fields: [field('id', CUSTOMERS, 1), field('pw', CUSTOMERS, 3)] });
    l.invalidate();
    src.gate = undefined;
    open();
    await first;
    assert.equal(src.loads, 3);
    assert.equal(l.protects('pw', ['v']), true);
  });
});
