import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalsLike, HoldOutcome, HoldRequest } from '../../../src/connectors/engine.js';
import { SluiceError } from '../../../src/errors.js';
import { startGateway, type TestGateway } from './harness.js';
import { send, startUpstream, type Upstream } from './client.js';

/** An approvals stage whose decisions the test makes (the real service is tested in test/approvals). */
function fakeApprovals(): ApprovalsLike & { held: Array<HoldRequest & { id: string; decide(o: HoldOutcome): void }>; withdrawn: string[]; grants: Map<string, { id: string; expiresAt: number }> } {
  const held: Array<HoldRequest & { id: string; decide(o: HoldOutcome): void }> = [];
  const withdrawn: string[] = [];
  const grants = new Map<string, { id: string; expiresAt: number }>();
  return {
    held,
    withdrawn,
    grants,
    async hold(req) {
      const id = `apr_${held.length + 1}`;
      let decide!: (o: HoldOutcome) => void;
      const outcome = new Promise<HoldOutcome>((r) => (decide = r));
      held.push({ ...req, id, decide });
      return {
        id,
        url: `http://sluice.test/api/approvals/${id}`,
        notice: `approval ${id} pending`,
        outcome,
        errorFor: (o: HoldOutcome) =>
          new SluiceError(o.state === 'denied' ? 'SLUICE_APPROVAL_DENIED' : o.state === 'expired' ? 'SLUICE_APPROVAL_EXPIRED' : 'SLUICE_APPROVAL_REQUIRED', `approval ${id} was ${o.state}${o.reason !== undefined ? `: ${o.reason}` : ''}`),
      };
    },
    findGrant(_session, fingerprint) {
      return grants.get(fingerprint);
    },
    async withdraw(id) {
      withdrawn.push(id);
      const h = held.find((x) => x.id === id);
      h?.decide({ state: 'withdrawn', approvers: [] });
    },
  };
}

describe('HTTP connector: review holds for approval', () => {
  let up: Upstream;
  let gw: TestGateway;
  let auth: { authorization: string };
  const approvals = fakeApprovals();

  before(async () => {
    up = await startUpstream((req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ran: `${req.method} ${req.url}`, body: body.toString() }));
    });
    gw = await startGateway(
      `
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: api, type: http, approvalWait: 300ms, upstream: { url: ${up.url} } }
  - { name: prod, type: kubernetes, approvalWait: 300ms, upstream: { url: ${up.url} } }
policies:
  - role: agent
    connection: api
    rules:
      - review: [delete, post]
        paths: ['/v1/orders/**']
      - allow: [get]
  - role: agent
    connection: prod
    rules:
      - review: [create]
`,
      { approvals },
    );
    auth = { authorization: `Bearer ${await gw.mint('agent')}` };
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('approved while held: the request runs', async () => {
    const pending = send(gw.port, 'DELETE', '/http/api/v1/orders/1', auth);
    while (approvals.held.length < 1) await new Promise((r) => setTimeout(r, 10));
    const h = approvals.held[0];
    assert.equal(h?.text, 'DELETE /v1/orders/1');
    assert.equal(h?.fingerprint, 'DELETE /v1/orders/1');
    h?.decide({ state: 'approved', approvers: ['alice'] });
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal((r.json() as { ran: string }).ran, 'DELETE /v1/orders/1');
  });

  test('not decided within approvalWait: 202 with the approval id; the same request passes once after approval', async () => {
    const before = up.requests.length;
    const first = await send(gw.port, 'DELETE', '/http/api/v1/orders/2', auth);
    assert.equal(first.status, 202);
    const body = first.json() as { approvalId: string; status: string };
    assert.equal(body.status, 'pending-approval');
    assert.equal(first.headers['x-sluice-approval-id'], body.approvalId);
    assert.equal(up.requests.length, before, 'nothing ran yet');
    // A retry while pending waits on the same approval rather than opening another.
    const retry = await send(gw.port, 'DELETE', '/http/api/v1/orders/2', auth);
    assert.equal(retry.status, 202);
    assert.equal((retry.json() as { approvalId: string }).approvalId, body.approvalId);
    // A different request is not covered by it.
    const other = await send(gw.port, 'DELETE', '/http/api/v1/orders/3', auth);
    assert.notEqual((other.json() as { approvalId: string }).approvalId, body.approvalId);
    approvals.held.find((x) => x.id === body.approvalId)?.decide({ state: 'approved', approvers: ['alice'] });
    await new Promise((r) => setTimeout(r, 20));
    const again = await send(gw.port, 'DELETE', '/http/api/v1/orders/2', auth);
    assert.equal(again.status, 200);
    // Once: the next identical request needs approval again.
    const third = await send(gw.port, 'DELETE', '/http/api/v1/orders/2', auth);
    assert.equal(third.status, 202);
    assert.notEqual((third.json() as { approvalId: string }).approvalId, body.approvalId);
  });

  test('the approval binds the body: an approved POST does not let a different body through', async () => {
    const first = await send(gw.port, 'POST', '/http/api/v1/orders/9', { ...auth, 'content-type': 'application/json' }, '{"qty":1}');
    assert.equal(first.status, 202);
    const id = (first.json() as { approvalId: string }).approvalId;
    assert.deepEqual([approvals.held.find((x) => x.id === id)?.facts.body, approvals.held.find((x) => x.id === id)?.facts.bodyBytes], ['{"qty":1}', 9], 'the reviewer sees what the body asks for');
    approvals.held.find((x) => x.id === id)?.decide({ state: 'approved', approvers: ['alice'] });
    await new Promise((r) => setTimeout(r, 20));
    const swapped = await send(gw.port, 'POST', '/http/api/v1/orders/9', { ...auth, 'content-type': 'application/json' }, '{"qty":1000}');
    assert.equal(swapped.status, 202);
    const same = await send(gw.port, 'POST', '/http/api/v1/orders/9', { ...auth, 'content-type': 'application/json' }, '{"qty":1}');
    assert.equal(same.status, 200);
    assert.equal((same.json() as { body: string }).body, '{"qty":1}');
  });

  test('the reviewer sees a held body masked and cut at 2 KB; a binary body only by its length', async () => {
    const long = JSON.stringify({ card: '4111 1111 1111 1111', note: 'x'.repeat(3000) });
    const held = await send(gw.port, 'POST', '/http/api/v1/orders/10', { ...auth, 'content-type': 'application/json' }, long);
    assert.equal(held.status, 202);
    const facts = approvals.held.find((x) => x.id === (held.json() as { approvalId: string }).approvalId)?.facts as { body: string; bodyBytes: number };
    assert.ok(facts.body.startsWith('{"card":"4111 **** **** 1111","note":"xxx'), facts.body.slice(0, 60));
    assert.ok(facts.body.endsWith('…') && facts.body.length < 2100);
    assert.equal(facts.bodyBytes, long.length);
    const binary = await send(gw.port, 'POST', '/http/api/v1/orders/11', { ...auth, 'content-type': 'application/octet-stream' }, Buffer.from([0, 1, 2, 3, 255]));
    const binFacts = approvals.held.find((x) => x.id === (binary.json() as { approvalId: string }).approvalId)?.facts;
    assert.deepEqual([binFacts?.body, binFacts?.bodyBytes], [undefined, 5]);
  });

  test('a held Kubernetes write shows its manifest masked as a response would be: a Secret\'s values never reach the reviewer', async () => {
    // Keys that name no secret: only Secret masking, not text masking, hides these values.
    const secret = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, data: { conn: Buffer.from('hunter2-db-pw').toString('base64') }, stringData: { note: 'plain-but-secret-9931' } });
    const held = await send(gw.port, 'POST', '/k8s/prod/api/v1/namespaces/default/secrets', { ...auth, 'content-type': 'application/json' }, secret);
    assert.equal(held.status, 403, held.text);
    const id = /apr_\d+/.exec(held.text)?.[0];
    const facts = approvals.held.find((x) => x.id === id)?.facts as { body: string; bodyBytes: number };
    assert.match(facts.body, /"name":"db"/);
    assert.ok(!facts.body.includes(Buffer.from('hunter2-db-pw').toString('base64')) && !facts.body.includes('plain-but-secret-9931'), facts.body);
    assert.equal(facts.bodyBytes, secret.length);
  });

  test('denied → 403 with the approval id; a grant window lets the fingerprint through', async () => {
    const pending = send(gw.port, 'DELETE', '/http/api/v1/orders/5', auth);
    while (!approvals.held.some((x) => x.text === 'DELETE /v1/orders/5')) await new Promise((r) => setTimeout(r, 10));
    approvals.held.find((x) => x.text === 'DELETE /v1/orders/5')?.decide({ state: 'denied', approvers: ['bob'], reason: 'not today' });
    const r = await pending;
    assert.equal(r.status, 403);
    const problem = r.json() as { title: string; approvalId: string; detail: string };
    assert.equal(problem.title, 'SLUICE_APPROVAL_DENIED');
    assert.match(problem.detail, /not today/);
    assert.ok(problem.approvalId.startsWith('apr_'));
    approvals.grants.set('DELETE /v1/orders/6', { id: 'apr_grant', expiresAt: Date.now() + 60_000 });
    assert.equal((await send(gw.port, 'DELETE', '/http/api/v1/orders/6', auth)).status, 200);
  });

  test('without an approvals stage, review is refused as approval required', async () => {
    const plain = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: api, type: http, upstream: { url: ${up.url} } }
policies:
  - { role: agent, connection: api, rules: [ { review: '*' } ] }
`);
    try {
      const r = await send(plain.port, 'GET', '/http/api/x', { authorization: `Bearer ${await plain.mint('agent')}` });
      assert.equal(r.status, 403);
      assert.equal((r.json() as { title: string }).title, 'SLUICE_APPROVAL_REQUIRED');
    } finally {
      await plain.close();
    }
  });
});
