import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, jsonString } from '../../src/audit/canonical-json.js';
import { AUDIT_EVENT_TYPES, AUDIT_OUTCOMES, buildDraft, type AuditEventInput, type DraftContext } from '../../src/audit/event.js';
import { hashChildren, hashLeaf } from '../../src/audit/merkle.js';
import { RECORD_KEYS_AFTER_SEQ, RECORD_KEYS_BEFORE_PREV, RECORD_KEYS_BEFORE_SEQ, joinRecordBody, recordBodyParts } from '../../src/audit/record-json.js';
import { session, testMask } from './helpers.js';

// Well-formed UTF-16 (String.prototype.isWellFormed is ES2024, past this project's lib).
const wellFormed = (s: string): boolean => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

const ctx = (over: Partial<DraftContext> = {}): DraftContext => ({ mask: testMask, node: 'test-node', ts: 1_700_000_000_123, id: '01HZZZZZZZZZZZZZZZZZZZZZZZ', previewRows: 5, previewBytes: 200, ...over });

/** The reference: what verify recomputes for a stored record. */
const generic = (input: AuditEventInput, seq: number, prev: string, c = ctx()): string => canonicalJson({ ...buildDraft(input, c), seq, prev });
const fast = (input: AuditEventInput, seq: number, prev: string, c = ctx()): string => joinRecordBody(recordBodyParts(buildDraft(input, c)), seq, prev);

test('record members are listed in RFC 8785 order around prev and seq', () => {
  const all = [...RECORD_KEYS_BEFORE_PREV, 'prev', ...RECORD_KEYS_BEFORE_SEQ, 'seq', ...RECORD_KEYS_AFTER_SEQ];
  assert.deepEqual(all, [...all].sort());
  assert.equal(new Set(all).size, all.length);
});

// Strings that exercise escaping: controls, quotes, backslashes, non-ASCII, astral characters.
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }).filter(wellFormed), fc.constantFrom('', '"', '\\', '\u2028', '4111 1111 1111 1111', 'SELECT 1'));
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const num = fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e12, noNaN: true }), fc.constantFrom(0, 0.1, 1e21, 5e-324));
const claimValue = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null), fc.array(text, { maxLength: 2 }));
const claims = fc.dictionary(fc.oneof(fc.constantFrom('repository', 'repository_owner', 'ref', 'sha', 'run_id', 'actor', 'workflow', 'environment', 'azp', 'model'), text), claimValue, { maxKeys: 12 });
const identity = fc.record(
  { issuer: text, subject: text, roles: opt(fc.array(text, { maxLength: 3 })), claims: opt(claims), model: opt(text), sponsor: opt(text), tokenId: opt(text) },
  { requiredKeys: ['issuer', 'subject'] },
);
const frozenIdentity = identity.map((i) => {
  if (i.claims !== undefined) Object.freeze(i.claims);
  if (i.roles !== undefined) Object.freeze(i.roles);
  return Object.freeze(i);
});
const sessionArb = fc.record({ id: text, connection: text, protocol: text, source: text, upstreamTarget: text, upstreamUser: text, role: text, client: opt(text), identity: frozenIdentity }).map((s) =>
  session(s.id, { ...s, identity: { ...s.identity, claims: s.identity.claims ?? {}, roles: s.identity.roles ?? [], expiresAt: 0 } }),
);
const details = fc.dictionary(text, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 });

const input: fc.Arbitrary<AuditEventInput> = fc.record(
  {
    type: fc.constantFrom(...AUDIT_EVENT_TYPES),
    session: opt(sessionArb),
    sessionId: opt(text),
    connection: opt(text),
    protocol: opt(text),
    source: opt(text),
    client: opt(text),
    upstream: opt(fc.record({ target: opt(text), account: opt(text) })),
    identity: opt(fc.oneof(identity, frozenIdentity)),
    role: opt(text),
    command: opt(fc.record({ text, kind: opt(text), verb: opt(text), objects: opt(fc.array(text, { maxLength: 3 })) }, { requiredKeys: ['text'] })),
    decision: opt(fc.record({ effect: fc.constantFrom('allow', 'deny', 'review'), rule: text, reason: opt(text) }, { requiredKeys: ['effect', 'rule'] })),
    policyVersion: opt(text),
    outcome: opt(fc.constantFrom(...AUDIT_OUTCOMES)),
    rows: opt(num),
    bytes: opt(num),
    durationMs: opt(num),
    error: opt(fc.record({ code: opt(text), message: text }, { requiredKeys: ['message'] })),
    mask: opt(fc.array(fc.record({ detector: text, column: opt(text), count: fc.nat() }, { requiredKeys: ['detector', 'count'] }), { maxLength: 3 })),
    preview: opt(fc.record({ columns: fc.array(text, { maxLength: 3 }), rows: fc.array(fc.array(fc.option(text, { nil: null }), { maxLength: 3 }), { maxLength: 8 }) })),
    approval: opt(fc.record({ id: text, approver: opt(text), approvers: opt(fc.array(text, { maxLength: 3 })), reason: opt(text), expiresAt: opt(fc.nat()) }, { requiredKeys: ['id'] })),
    details: opt(details),
  },
  { requiredKeys: ['type'] },
) as fc.Arbitrary<AuditEventInput>;

const prevHex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));

test('the record writer is byte-identical to canonicalJson over generated records', () => {
  fc.assert(
    fc.property(input, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), prevHex, (ev, seq, prev) => {
      assert.equal(fast(ev, seq, prev), generic(ev, seq, prev));
    }),
    { numRuns: 2000 },
  );
});

test('the record writer agrees with canonicalJson on the same identity appended twice (cached bytes)', () => {
  fc.assert(
    fc.property(sessionArb, fc.array(input, { minLength: 2, maxLength: 4 }), (s, evs) => {
      for (const [i, ev] of evs.entries()) {
        const withSession = { ...ev, session: s, identity: undefined };
        assert.equal(fast(withSession, i + 1, '0'.repeat(64)), generic(withSession, i + 1, '0'.repeat(64)));
      }
    }),
    { numRuns: 300 },
  );
});

test('values in the wrong type (untyped callers) serialise, or fail, exactly as canonicalJson does', () => {
  const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, '\ud800', [undefined], { a: undefined }));
  fc.assert(
    fc.property(junk, junk, junk, (a, b, c) => {
      const ev = {
        type: 'command',
        command: { text: 'x', kind: a, objects: [b, c] },
        decision: { effect: a, rule: 'r' },
        approval: { id: 'p', expiresAt: b, approvers: c },
        upstream: { target: c },
        preview: { columns: [a], rows: [[b, c]] },
      } as unknown as AuditEventInput;
      let want: string | Error;
      try {
        want = generic(ev, 1, 'ab');
      } catch (e) {
        want = e as Error;
      }
      if (want instanceof Error) assert.throws(() => fast(ev, 1, 'ab'), TypeError);
      else assert.equal(fast(ev, 1, 'ab'), want);
    }),
    { numRuns: 1000 },
  );
});

test('a frozen identity shares one record block; an unfrozen one is read afresh each event', () => {
  const s = session();
  Object.freeze(s.identity.claims);
  Object.freeze(s.identity.roles);
  const frozen = { ...s, identity: Object.freeze({ ...s.identity }) };
  const a = buildDraft({ type: 'command', session: frozen }, ctx());
  const b = buildDraft({ type: 'command', session: frozen }, ctx());
  assert.equal(a.identity, b.identity);
  assert.ok(Object.isFrozen(a.identity));

  const mutable = { ...s, identity: { ...s.identity, claims: { ...s.identity.claims } } };
  const first = fast({ type: 'command', session: mutable }, 1, 'aa');
  (mutable.identity as { subject: string }).subject = 'repo:acme/other:ref:refs/heads/main';
  (mutable.identity.claims as Record<string, unknown>).repository = 'acme/other';
  const second = fast({ type: 'command', session: mutable }, 2, 'aa');
  assert.notEqual(first.replace('"seq":1', ''), second.replace('"seq":2', ''));
  assert.equal(JSON.parse(second).identity.subject, 'repo:acme/other:ref:refs/heads/main');
  assert.equal(JSON.parse(second).identity.claims.repository, 'acme/other');
  assert.equal(second, generic({ type: 'command', session: mutable }, 2, 'aa'));
});

test('jsonString matches JSON.stringify and refuses lone surrogates', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), (s) => {
      if (wellFormed(s)) assert.equal(jsonString(s), JSON.stringify(s));
      else assert.throws(() => jsonString(s), TypeError);
    }),
    { numRuns: 2000 },
  );
});

test('one-shot leaf and node hashes equal the RFC 6962 definitions', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (s, l, r) => {
      assert.deepEqual(hashLeaf(s), createHash('sha256').update(Buffer.from([0])).update(s).digest());
      assert.deepEqual(hashLeaf(Buffer.from(s)), hashLeaf(s));
      assert.deepEqual(hashChildren(l, r), createHash('sha256').update(Buffer.from([1])).update(l).update(r).digest());
    }),
    { numRuns: 300 },
  );
});

test('an own "__proto__" key in details stays data, identically in both writers', () => {
  // fast-check found this (seed 482395028): assignment would have replaced the prototype instead.
  const ev = { type: 'command', details: JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown> } as const;
  const a = fast(ev as never, 1, '0'.repeat(64));
  assert.equal(a, generic(ev as never, 1, '0'.repeat(64)));
  assert.match(a, /"__proto__":\{"polluted":true\}/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
