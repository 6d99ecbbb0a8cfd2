/**
 * The approvals REST API over a real HTTP listener (createHttpListener), with tokens minted by the
 * local issuer and verified by the real authenticator.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requestInput, session } from './helpers.js';
import { startApi, type ApiFixture } from './api-server.js';

let api: ApiFixture;
let dba: { token: string };
let sre: { token: string };
let agentToken: string;
let requester: Awaited<ReturnType<ApiFixture['user']>>;

before(async () => {
  api = await startApi();
  dba = await api.user('alice@example.com', ['dba']);
  sre = await api.user('bob@example.com', ['sre']);
  agentToken = (await api.user('other-bot', ['agent'])).token;
  requester = await api.user('ci-bot', ['agent']);
});
after(async () => {
  await api.close();
});

async function call(method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; type: string; json: Record<string, unknown> }> {
  const res = await fetch(`${api.baseUrl}/api/v1/approvals${path}`, {
    method,
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function newRequest(spec?: { required?: number }): Promise<Awaited<ReturnType<ApiFixture['svc']['request']>>> {
  const input = requestInput(session(requester.identity));
  return api.svc.request(spec?.required !== undefined ? { ...input, spec: { ...input.spec, required: spec.required } } : input);
}

test('no token or an invalid token: 401 problem+json, before anything is revealed', async () => {
  const h = await newRequest();
  for (const path of ['', `/${h.id}`, '/apr_unknown000000000000']) {
    const r = await call('GET', path);
    assert.equal(r.status, 401);
    assert.equal(r.type, 'application/problem+json');
    assert.equal(r.json.title, 'SLUICE_TOKEN_MISSING');
  }
  const bad = await call('POST', `/${h.id}/approve`, dba.token.slice(0, -4) + 'AAAA', {});
  assert.equal(bad.status, 401);
  assert.match(String(bad.json.title), /^SLUICE_TOKEN_/);
  const basic = await call('GET', '', undefined, undefined, { authorization: 'Basic YWxpY2U6cHc=' });
  assert.equal(basic.status, 401);
  assert.equal((await api.svc.get(h.id))?.state, 'pending');
});

test('list and get: reviewers see the queue, a requester sees only its own requests', async () => {
  const h = await newRequest();
  const list = await call('GET', '?state=pending', dba.token);
  assert.equal(list.status, 200);
  const items = list.json.items as { id: string; state: string; text: string }[];
  assert.ok(items.some((v) => v.id === h.id));
  assert.ok(items.every((v) => v.state === 'pending'));
  const one = await call('GET', `/${h.id}`, dba.token);
  assert.equal(one.status, 200);
  assert.equal(one.json.id, h.id);
  assert.equal(one.json.url, `${api.baseUrl}/api/v1/approvals/${h.id}`);
  assert.equal((one.json.requester as Record<string, unknown>).subject, 'ci-bot');

  const own = await call('GET', `/${h.id}`, requester.token);
  assert.equal(own.status, 200);
  const stranger = await call('GET', `/${h.id}`, agentToken);
  assert.equal(stranger.status, 404);
  const strangerList = await call('GET', '', agentToken);
  assert.deepEqual(strangerList.json.items, []);

  assert.equal((await call('GET', '?state=bogus', dba.token)).status, 400);
  assert.equal((await call('GET', '/apr_unknown000000000000', dba.token)).status, 404);
  assert.equal((await call('GET', '/not-an-id', dba.token)).status, 404);
  assert.equal((await call('DELETE', `/${h.id}`, dba.token)).status, 405);
  assert.equal((await call('GET', `/${h.id}/approve`, dba.token)).status, 405);
});

test('approve: an agent gets 403, self-approval 403, a reviewer 200 and the waiter is released; then 409', async () => {
  const h = await newRequest();
  const agent = await call('POST', `/${h.id}/approve`, agentToken, {});
  assert.equal(agent.status, 403);
  assert.equal(agent.json.title, 'SLUICE_APPROVAL_FORBIDDEN');
  const self = await api.user('ci-bot', ['agent', 'dba']);
  const selfApproval = await call('POST', `/${h.id}/approve`, self.token, {});
  assert.equal(selfApproval.status, 403);
  assert.match(String(selfApproval.json.detail), /separation of duties/);
  const sponsored = await api.user('helper-bot', ['dba'], 'ci-bot');
  assert.equal((await call('POST', `/${h.id}/approve`, sponsored.token, {})).status, 403);

  const ok = await call('POST', `/${h.id}/approve`, dba.token, { comment: 'ran EXPLAIN, fine' });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.state, 'approved');
  assert.deepEqual(await h.outcome, { state: 'approved', approvers: ['alice@example.com'] });
  const again = await call('POST', `/${h.id}/approve`, sre.token, {});
  assert.equal(again.status, 409);
  assert.equal(again.json.title, 'SLUICE_APPROVAL_FORBIDDEN');
  assert.equal((await call('POST', '/apr_unknown000000000000/approve', dba.token, {})).status, 404);
  const [event] = api.rec.events.filter((e) => e.type === 'approval.approved' && e.approval.id === h.id);
  assert.equal(event?.details?.comment, 'ran EXPLAIN, fine');
  assert.equal(event?.identity?.issuer, 'sluice:local');
});

test('N of M over HTTP, and deny with a reason ends it (400 without one)', async () => {
  const h = await newRequest({ required: 2 });
  const first = await call('POST', `/${h.id}/approve`, dba.token);
  assert.equal(first.status, 200);
  assert.equal(first.json.state, 'pending');
  assert.equal((await call('POST', `/${h.id}/approve`, dba.token)).json.state, 'pending');
  const noReason = await call('POST', `/${h.id}/deny`, sre.token, {});
  assert.equal(noReason.status, 400);
  const denied = await call('POST', `/${h.id}/deny`, sre.token, { reason: 'not on a Friday' });
  assert.equal(denied.status, 200);
  assert.equal(denied.json.state, 'denied');
  assert.deepEqual(await h.outcome, { state: 'denied', approvers: ['bob@example.com'], reason: 'not on a Friday' });
});

test('bodies: malformed JSON 400, wrong types 400, oversized 413', async () => {
  const h = await newRequest();
  assert.equal((await call('POST', `/${h.id}/approve`, dba.token, '{not json')).status, 400);
  assert.equal((await call('POST', `/${h.id}/approve`, dba.token, '[1,2]')).status, 400);
  assert.equal((await call('POST', `/${h.id}/approve`, dba.token, { comment: 42 })).status, 400);
  assert.equal((await call('POST', `/${h.id}/deny`, dba.token, 'reason=x', { 'content-type': 'application/x-www-form-urlencoded' })).status, 400);
  const big = await call('POST', `/${h.id}/approve`, dba.token, { comment: 'x'.repeat(64 * 1024) });
  assert.equal(big.status, 413);
  assert.equal((await api.svc.get(h.id))?.state, 'pending');
});
