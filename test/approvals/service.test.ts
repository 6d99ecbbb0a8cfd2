/**
 * The approval service against a real SQLite file: transitions, separation of duties, N of M,
 * expiry, grants, restart and many concurrent waiters.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createApprovalService, resolveApprovalSpec, ApprovalNotPendingError, DEFAULT_APPROVAL_TIMEOUT_MS, holdNotice, outcomeError, type ApprovalService } from '../../src/approvals/index.js';
import { SluiceError } from '../../src/errors.js';
import { identity, manualClock, recorder, requestInput, session, SPEC, stateOf, tempConfig, type Recorder, type TempConfig } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(extra = '', clock?: () => number): Promise<{ cfg: TempConfig; rec: Recorder; svc: ApprovalService }> {
  const cfg = tempConfig(`approvals:\n  publicUrl: https://sluice.example.com/\n${extra}`);
  const rec = recorder();
  const svc = await createApprovalService(cfg.config, { record: (e) => rec.record(e), ...(clock !== undefined ? { clock } : {}) });
  cleanups.push(() => cfg.cleanup());
  cleanups.push(() => svc.close());
  return { cfg, rec, svc };
}

const alice = identity('alice@example.com', ['dba']);
const bob = identity('bob@example.com', ['sre']);
const carol = identity('carol@example.com', ['dba']);

function assertCode(code: string, status?: number): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (status !== undefined) assert.equal(err.httpStatus, status);
    return true;
  };
}

test('approve: the waiter settles approved and every transition is an audit event', async () => {
  const { svc, rec } = await setup();
  const s = session();
  const h = await svc.request(requestInput(s, { estimatedRows: 1200 }));
  assert.match(h.id, /^apr_[A-Za-z0-9_-]{16}$/);
  assert.equal(h.url, `https://sluice.example.com/api/v1/approvals/${h.id}`);
  assert.equal(await stateOf(h.outcome), 'pending');
  const pending = await svc.list({ state: 'pending' });
  assert.deepEqual(pending.map((v) => v.id), [h.id]);
  assert.equal(pending[0]?.requester.subject, 'ci-bot');
  assert.equal(pending[0]?.estimatedRows, 1200);

  const view = await svc.approve(h.id, alice, 'looks fine');
  assert.equal(view.state, 'approved');
  assert.deepEqual(await h.outcome, { state: 'approved', approvers: ['alice@example.com'] });
  assert.equal((await svc.get(h.id))?.state, 'approved');
  assert.equal((await svc.get(h.id))?.approvals[0]?.comment, 'looks fine');

  const [requested] = rec.ofType('approval.requested');
  assert.equal(requested?.session, s);
  assert.equal(requested?.approval.id, h.id);
  assert.equal(requested?.approval.expiresAt, h.expiresAt);
  assert.equal(requested?.outcome, 'pending');
  assert.equal(requested?.command?.text, requestInput(s).text);
  const [approved] = rec.ofType('approval.approved');
  assert.equal(approved?.approval.approver, 'alice@example.com');
  assert.deepEqual(approved?.approval.approvers, ['alice@example.com']);
  assert.equal(approved?.details?.final, true);
  assert.equal(approved?.sessionId, s.id);
  assert.equal(approved?.identity?.subject, 'alice@example.com');
  assert.equal(approved?.role, 'dba');
});

test('deny: one denial ends the request with its reason; a reason is required', async () => {
  const { svc, rec } = await setup();
  const h = await svc.request(requestInput(session()));
  await assert.rejects(svc.deny(h.id, alice, '  '), assertCode('SLUICE_BAD_REQUEST'));
  const view = await svc.deny(h.id, alice, 'not during business hours');
  assert.equal(view.state, 'denied');
  assert.deepEqual(await h.outcome, { state: 'denied', approvers: ['alice@example.com'], reason: 'not during business hours' });
  const [denied] = rec.ofType('approval.denied');
  assert.equal(denied?.approval.reason, 'not during business hours');
  assert.equal(denied?.approval.approver, 'alice@example.com');
});

test('expire: a short timeout expires the request, settles the waiter and is recorded', async () => {
  const { svc, rec } = await setup();
  const h = await svc.request(requestInput(session(), { spec: { ...SPEC, timeoutMs: 60 } }));
  const outcome = await h.outcome;
  assert.equal(outcome.state, 'expired');
  assert.equal((await svc.get(h.id))?.state, 'expired');
  assert.equal(rec.ofType('approval.expired')[0]?.approval.id, h.id);
  await assert.rejects(svc.approve(h.id, alice), (err) => err instanceof ApprovalNotPendingError && err.code === 'SLUICE_APPROVAL_EXPIRED' && err.httpStatus === 409);
});

test('expire: a request past its deadline on the injected clock cannot be approved', async () => {
  const clock = manualClock();
  const { svc, rec } = await setup('', clock.now);
  const h = await svc.request(requestInput(session(), { spec: { ...SPEC, timeoutMs: 60_000 } }));
  clock.advance(60_001);
  await assert.rejects(svc.approve(h.id, alice), assertCode('SLUICE_APPROVAL_EXPIRED', 409));
  assert.equal((await h.outcome).state, 'expired');
  assert.equal(rec.ofType('approval.expired').length, 1);
  assert.equal(rec.ofType('approval.approved').length, 0);
});

test('withdraw: the client cancelling settles the waiter; later transitions are refused', async () => {
  const { svc, rec } = await setup();
  const h = await svc.request(requestInput(session()));
  await svc.withdraw(h.id, 'client cancelled');
  assert.deepEqual(await h.outcome, { state: 'withdrawn', approvers: [], reason: 'client cancelled' });
  assert.equal(rec.ofType('approval.withdrawn')[0]?.approval.reason, 'client cancelled');
  assert.equal(rec.ofType('approval.withdrawn')[0]?.outcome, 'cancelled');
  await assert.rejects(svc.approve(h.id, alice), assertCode('SLUICE_APPROVAL_FORBIDDEN', 409));
  // Withdrawing what is already settled (a cancel racing an approval) changes nothing.
  const h2 = await svc.request(requestInput(session()));
  await svc.approve(h2.id, alice);
  await svc.withdraw(h2.id, 'client cancelled');
  assert.equal((await svc.get(h2.id))?.state, 'approved');
  await svc.withdraw('apr_doesnotexist00000000', 'gone');
});

test('separation of duties: the requester, its sponsor and co-sponsored identities cannot approve', async () => {
  const { svc, rec } = await setup();
  const requester = identity('ci-bot', ['agent', 'dba'], { sponsor: 'dave@example.com' });
  const h = await svc.request(requestInput(session(requester)));
  // Same subject, even holding an approver role.
  await assert.rejects(svc.approve(h.id, identity('ci-bot', ['dba'])), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  // The human who sponsors the agent.
  await assert.rejects(svc.approve(h.id, identity('dave@example.com', ['dba'])), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  // Another identity under the same sponsor.
  await assert.rejects(svc.approve(h.id, identity('other-bot', ['dba'], { sponsor: 'dave@example.com' })), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  await assert.rejects(svc.deny(h.id, identity('ci-bot', ['dba']), 'no'), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  assert.equal(await stateOf(h.outcome), 'pending');
  assert.equal(rec.ofType('approval.approved').length, 0);
  // A reviewer sponsored by the requester is refused too.
  const h2 = await svc.request(requestInput(session(identity('erin@example.com', ['agent']))));
  await assert.rejects(svc.approve(h2.id, identity('erins-bot', ['dba'], { sponsor: 'erin@example.com' })), assertCode('SLUICE_APPROVAL_FORBIDDEN'));
  // An independent reviewer succeeds.
  assert.equal((await svc.approve(h.id, alice)).state, 'approved');
});

test('an agent role, or any role without approver: true, can never approve', async () => {
  const { svc } = await setup();
  const h = await svc.request(requestInput(session(), { spec: { ...SPEC, approvers: ['dba', 'viewer'] } }));
  assert.deepEqual((await svc.get(h.id))?.approverRoles, ['dba']);
  await assert.rejects(svc.approve(h.id, identity('mallory', ['agent'])), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  await assert.rejects(svc.approve(h.id, identity('victor', ['viewer'])), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  // An approver role the rule does not name.
  await assert.rejects(svc.approve(h.id, bob), assertCode('SLUICE_APPROVAL_FORBIDDEN', 403));
  await assert.rejects(svc.deny(h.id, identity('mallory', ['agent']), 'x'), assertCode('SLUICE_APPROVAL_FORBIDDEN'));
  assert.equal(await stateOf(h.outcome), 'pending');
  // A rule whose only approver role is not an approver role cannot even be requested.
  await assert.rejects(svc.request(requestInput(session(), { spec: { ...SPEC, approvers: ['viewer'] } })), assertCode('SLUICE_CONFIG_INVALID'));
});

test('N of M: two distinct approvers are needed; the same one twice counts once', async () => {
  const { svc, rec } = await setup();
  const h = await svc.request(requestInput(session(), { spec: { ...SPEC, required: 2 } }));
  assert.equal((await svc.approve(h.id, alice)).state, 'pending');
  assert.equal(await stateOf(h.outcome), 'pending');
  const again = await svc.approve(h.id, alice, 'still me');
  assert.equal(again.state, 'pending');
  assert.equal(again.approvals.length, 1);
  assert.equal(await stateOf(h.outcome), 'pending');
  const done = await svc.approve(h.id, bob);
  assert.equal(done.state, 'approved');
  assert.deepEqual(await h.outcome, { state: 'approved', approvers: ['alice@example.com', 'bob@example.com'] });
  const events = rec.ofType('approval.approved');
  assert.deepEqual(events.map((e) => e.details?.final), [false, true]);
  assert.deepEqual(events.map((e) => e.outcome), ['pending', 'success']);
  assert.deepEqual(events[1]?.approval.approvers, ['alice@example.com', 'bob@example.com']);
});

test('a denial ends a request that already has some approvals', async () => {
  const { svc } = await setup();
  const h = await svc.request(requestInput(session(), { spec: { ...SPEC, required: 2 } }));
  await svc.approve(h.id, alice);
  await svc.deny(h.id, bob, 'wrong table');
  assert.equal((await h.outcome).state, 'denied');
  await assert.rejects(svc.approve(h.id, carol), assertCode('SLUICE_APPROVAL_DENIED', 409));
});

test('non-pending transitions are refused with 409; unknown ids with 404', async () => {
  const { svc, rec } = await setup();
  const h = await svc.request(requestInput(session()));
  await svc.approve(h.id, alice);
  await assert.rejects(svc.approve(h.id, carol), assertCode('SLUICE_APPROVAL_FORBIDDEN', 409));
  await assert.rejects(svc.deny(h.id, carol, 'too late'), (err) => err instanceof ApprovalNotPendingError && err.state === 'approved');
  assert.equal(rec.ofType('approval.denied').length, 0);
  await assert.rejects(svc.approve('apr_doesnotexist00000000', alice), assertCode('SLUICE_APPROVAL_NOT_FOUND', 404));
  await assert.rejects(svc.approve('../../etc/passwd', alice), assertCode('SLUICE_APPROVAL_NOT_FOUND', 404));
  await assert.rejects(svc.list({ state: 'bogus' as never }), assertCode('SLUICE_BAD_REQUEST'));
});

test('grant mode: an approval opens a window for the same fingerprint, subject, role and connection only', async () => {
  const clock = manualClock();
  const { svc, rec, cfg } = await setup('', clock.now);
  const requester = identity('ci-bot', ['agent']);
  const s = session(requester);
  const h = await svc.request(requestInput(s, { spec: { ...SPEC, grantMs: 15 * 60_000 } }));
  assert.equal(svc.findGrant(s, 'fp-delete-orders-by-date'), undefined, 'no window before approval');
  await svc.approve(h.id, alice);
  const grant = svc.findGrant(session(requester), 'fp-delete-orders-by-date');
  assert.deepEqual(grant, { id: h.id, expiresAt: clock.now() + 15 * 60_000 });
  assert.equal(svc.findGrant(s, 'fp-other-statement'), undefined);
  assert.equal(svc.findGrant(session(identity('other-bot', ['agent'])), 'fp-delete-orders-by-date'), undefined);
  assert.equal(svc.findGrant(session(requester, 'agent', 'otherdb'), 'fp-delete-orders-by-date'), undefined);
  assert.equal(svc.findGrant(session(identity('ci-bot', ['agent', 'writer']), 'writer'), 'fp-delete-orders-by-date'), undefined);
  const [approved] = rec.ofType('approval.approved');
  assert.equal(approved?.approval.expiresAt, grant?.expiresAt);
  assert.deepEqual(approved?.details?.grant, { fingerprint: 'fp-delete-orders-by-date', grantMs: 15 * 60_000, expiresAt: grant?.expiresAt });

  // The window survives a restart (it lives in the store) …
  const svc2 = await createApprovalService(cfg.config, { record: (e) => rec.record(e), clock: clock.now });
  cleanups.push(() => svc2.close());
  assert.equal(svc2.findGrant(s, 'fp-delete-orders-by-date')?.id, h.id);
  // … and closes when its time is up.
  clock.advance(15 * 60_000);
  assert.equal(svc.findGrant(s, 'fp-delete-orders-by-date'), undefined);
  assert.equal(svc2.findGrant(s, 'fp-delete-orders-by-date'), undefined);
  // Without grant mode an approval covers only its own statement.
  const h3 = await svc.request(requestInput(s, { fingerprint: 'fp-no-grant' }));
  await svc.approve(h3.id, alice);
  assert.equal(svc.findGrant(s, 'fp-no-grant'), undefined);
});

test('restart while pending: the old request is withdrawn, a fresh one can be approved', async () => {
  const { svc, rec, cfg } = await setup();
  const h = await svc.request(requestInput(session()));
  // A second service on the same file is what a restarted gateway looks like after a crash.
  const rec2 = recorder();
  const svc2 = await createApprovalService(cfg.config, { record: (e) => rec2.record(e) });
  cleanups.push(() => svc2.close());
  const old = await svc2.get(h.id);
  assert.equal(old?.state, 'withdrawn');
  assert.equal(old?.reason, 'gateway restarted');
  assert.equal(rec2.ofType('approval.withdrawn')[0]?.approval.id, h.id);
  assert.equal(rec2.ofType('approval.withdrawn')[0]?.approval.reason, 'gateway restarted');
  await assert.rejects(svc2.approve(h.id, alice), assertCode('SLUICE_APPROVAL_FORBIDDEN', 409));
  const fresh = await svc2.request(requestInput(session()));
  await svc2.approve(fresh.id, alice);
  assert.equal((await fresh.outcome).state, 'approved');
  // The crashed instance's waiter is released when it closes.
  await svc.close();
  assert.deepEqual(await h.outcome, { state: 'withdrawn', approvers: [], reason: 'gateway restarted' });
  assert.equal(rec.ofType('approval.withdrawn').length, 0, 'the stale instance does not withdraw twice');
});

test('close(): every pending request is withdrawn with "gateway restarted" and its waiter settles', async () => {
  const { svc, rec, cfg } = await setup();
  const a = await svc.request(requestInput(session()));
  const b = await svc.request(requestInput(session()));
  const done = await svc.request(requestInput(session()));
  await svc.approve(done.id, alice);
  await svc.close();
  for (const h of [a, b]) assert.deepEqual(await h.outcome, { state: 'withdrawn', approvers: [], reason: 'gateway restarted' });
  assert.deepEqual(rec.ofType('approval.withdrawn').map((e) => e.approval.id).sort(), [a.id, b.id].sort());
  await assert.rejects(svc.request(requestInput(session())), SluiceError);
  const svc2 = await createApprovalService(cfg.config, { record: async () => undefined });
  cleanups.push(() => svc2.close());
  assert.equal((await svc2.get(a.id))?.state, 'withdrawn');
  assert.equal((await svc2.get(done.id))?.state, 'approved');
});

test('fail closed: an approval whose audit event cannot be written does not take effect', async () => {
  const { svc, rec } = await setup();
  const h = await svc.request(requestInput(session()));
  rec.fail = true;
  await assert.rejects(svc.approve(h.id, alice), assertCode('SLUICE_AUDIT_UNAVAILABLE'));
  assert.equal((await svc.get(h.id))?.state, 'pending');
  assert.equal((await svc.get(h.id))?.approvals.length, 0);
  assert.equal(await stateOf(h.outcome), 'pending');
  await assert.rejects(svc.request(requestInput(session())), assertCode('SLUICE_AUDIT_UNAVAILABLE'));
  assert.deepEqual((await svc.list({ state: 'pending' })).map((v) => v.id), [h.id]);
  rec.fail = false;
  await svc.approve(h.id, alice);
  assert.equal((await h.outcome).state, 'approved');
});

test('200 concurrent held requests settle correctly and promptly', async () => {
  const { svc } = await setup();
  const N = 200;
  const handles = await Promise.all(
    Array.from({ length: N }, (_, i) => svc.request(requestInput(session(identity(`bot-${i}`, ['agent'])), { spec: { ...SPEC, timeoutMs: i % 4 === 3 ? 300 : 60_000 } }))),
  );
  assert.equal(new Set(handles.map((h) => h.id)).size, N);
  assert.equal((await svc.list({ state: 'pending', limit: 1000 })).length, N);
  const started = Date.now();
  await Promise.all(
    handles.map((h, i) => {
      if (i % 4 === 0 || i % 4 === 1) return svc.approve(h.id, i % 2 === 0 ? alice : bob);
      if (i % 4 === 2) return svc.deny(h.id, carol, `no ${i}`);
      return undefined;
    }),
  );
  const outcomes = await Promise.all(handles.map((h) => h.outcome));
  const elapsed = Date.now() - started;
  outcomes.forEach((o, i) => {
    const expected = i % 4 === 3 ? 'expired' : i % 4 === 2 ? 'denied' : 'approved';
    assert.equal(o.state, expected, `request ${i}`);
    if (expected === 'denied') assert.equal(o.reason, `no ${i}`);
  });
  // A hang detector, not a benchmark: 200 settlements on a shared 2-core box take well under this.
  assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
  assert.equal((await svc.list({ state: 'pending', limit: 1000 })).length, 0);
});

test('specs: defaults from config, and a rule naming a non-approver role stops startup', async () => {
  const cfg = tempConfig('approvals:\n  defaultTimeout: 5m\n');
  cleanups.push(() => cfg.cleanup());
  assert.deepEqual(resolveApprovalSpec(cfg.config, undefined), { approvers: ['dba', 'sre'], required: 1, timeoutMs: 5 * 60_000 });
  assert.deepEqual(resolveApprovalSpec(cfg.config, { approvers: ['dba'], required: 2, timeout: '30s', grant: '15m' }), {
    approvers: ['dba'],
    required: 2,
    timeoutMs: 30_000,
    grantMs: 15 * 60_000,
  });
  assert.throws(() => resolveApprovalSpec(cfg.config, { approvers: ['agent'] }), assertCode('SLUICE_CONFIG_INVALID'));
  assert.throws(() => resolveApprovalSpec(cfg.config, { approvers: ['nobody'] }), assertCode('SLUICE_CONFIG_INVALID'));
  const plain = tempConfig();
  cleanups.push(() => plain.cleanup());
  assert.equal(resolveApprovalSpec(plain.config, {}).timeoutMs, DEFAULT_APPROVAL_TIMEOUT_MS);
  assert.equal(DEFAULT_APPROVAL_TIMEOUT_MS, 10 * 60_000);

  const bad = tempConfig(`connections:
  - name: appdb
    type: postgres
    upstream: { host: 127.0.0.1, database: app, user: app }
policies:
  - role: agent
    connection: appdb
    rules:
      - review: [delete]
        approval: { approvers: [agent] }
`);
  cleanups.push(() => bad.cleanup());
  await assert.rejects(createApprovalService(bad.config, { record: async () => undefined }), (err) => {
    assert.ok(err instanceof SluiceError && err.code === 'SLUICE_CONFIG_INVALID');
    assert.match(err.message, /policies\[0\]\.rules\[0\]\.approval\.approvers: role agent is not an approver role/);
    return true;
  });
});

test('hold messages: the notice names the id, the command and the URL; each outcome maps to its error code', async () => {
  const { svc } = await setup();
  const h = await svc.request(requestInput(session()));
  const notice = holdNotice(h, h.expiresAt - 60_000);
  assert.ok(notice.includes(h.id));
  assert.ok(notice.includes(`sluice approve ${h.id}`));
  assert.ok(notice.includes(`${h.url}/approve`));
  assert.match(notice, /expires in 1m\)$/);
  assert.equal(outcomeError(h.id, { state: 'approved', approvers: ['a'] }), undefined);
  const denied = outcomeError(h.id, { state: 'denied', approvers: ['alice'], reason: 'nope' });
  assert.equal(denied?.code, 'SLUICE_APPROVAL_DENIED');
  assert.match(denied?.message ?? '', /denied by alice: nope/);
  assert.equal(outcomeError(h.id, { state: 'expired', approvers: [] })?.code, 'SLUICE_APPROVAL_EXPIRED');
  assert.match(outcomeError(h.id, { state: 'withdrawn', approvers: [], reason: 'gateway restarted' })?.message ?? '', /withdrawn: gateway restarted/);
});
