/**
 * Reviewer notifications received by real HTTP servers on 127.0.0.1: Slack incoming-webhook format,
 * the HMAC-signed generic webhook, retry after a 500, and request() never waiting for delivery.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, test } from 'node:test';
import { createApprovalService } from '../../src/approvals/index.js';
import { identity, recorder, requestInput, session, tempConfig } from './helpers.js';

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** Status to answer the nth (0-based) delivery to `path` with; `hang` never answers. Default 200. */
  answer: (path: string, nth: number) => number | 'hang';
  waitFor(n: number, path?: string): Promise<Received[]>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const waiters: (() => void)[] = [];
  const r = {
    answer: (_path: string, _nth: number): number | 'hang' => 200,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const nth = received.filter((x) => x.path === path).length;
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      for (const w of waiters.splice(0)) w();
      const answer = r.answer(path, nth);
      if (answer === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(answer, { 'content-type': 'text/plain' });
      res.end(answer === 200 ? 'ok' : 'error');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return Object.assign(r, {
    url: `http://127.0.0.1:${port}`,
    received,
    async waitFor(n: number, path?: string): Promise<Received[]> {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const hits = received.filter((x) => path === undefined || x.path === path);
        if (hits.length >= n) return hits;
        if (Date.now() > deadline) throw new Error(`only ${hits.length} of ${n} deliveries to ${path ?? '*'} arrived`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function verifySignature(secret: string, body: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'));
  const got = Buffer.from(header.slice('sha256='.length));
  return expected.length === got.length && timingSafeEqual(expected, got);
}

test('reviewers are notified in Slack format and by a signed webhook, retried after a 500', async () => {
  const rx = await startReceiver();
  cleanups.push(() => rx.close());
  const secret = 'whsec-' + Math.random().toString(36).slice(2);
  const cfg = tempConfig(
    `approvals:
  publicUrl: https://sluice.example.com
  notify:
    - slack: ${rx.url}/slack
    - webhook: ${rx.url}/hook
      secret: env:SLUICE_HOOK_SECRET
`,
    { env: { SLUICE_HOOK_SECRET: secret } },
  );
  cleanups.push(() => cfg.cleanup());
  const svc = await createApprovalService(cfg.config, { record: recorder().record, notify: { baseDelayMs: 20, timeoutMs: 2000 } });
  cleanups.push(() => svc.close());

  // The webhook's first delivery fails with a 500; the retry succeeds.
  rx.answer = (path, nth) => (path === '/hook' && nth === 0 ? 500 : 200);

  const requester = identity('repo:acme/app:ref:refs/heads/main', ['agent'], {
    issuer: 'https://token.actions.githubusercontent.com',
    model: 'claude-sonnet',
    claims: { repository: 'acme/app', run_id: '987654', workflow: 'migrate', sha: 'abc123', actor: 'octocat' },
  });
  const h = await svc.request(requestInput(session(requester), { estimatedRows: 4200 }));

  const [slack] = await rx.waitFor(1, '/slack');
  const msg = JSON.parse(slack?.body ?? '{}') as { text: string; blocks: { type: string; text?: { text: string }; fields?: { text: string }[] }[] };
  assert.equal(slack?.headers['content-type'], 'application/json');
  assert.match(msg.text, /repo:acme\/app:ref:refs\/heads\/main/);
  assert.match(msg.text, new RegExp(`sluice approve ${h.id}`));
  assert.ok(Array.isArray(msg.blocks) && msg.blocks.length >= 4);
  const all = JSON.stringify(msg.blocks);
  assert.match(all, /DELETE FROM orders WHERE created_at &lt; '2020-01-01'/, 'statement shown, mrkdwn-escaped');
  assert.match(all, /Estimated rows\*\\n4200/);
  assert.match(all, /repository=acme\/app/);
  assert.match(all, /run_id=987654/);
  assert.match(all, /https:\/\/github.com\/acme\/app\/actions\/runs\/987654/);
  assert.match(all, /model claude-sonnet/);
  assert.match(all, /tablesWritten: orders/);
  assert.match(all, /hasWhere: true/);
  assert.match(all, /agent\/appdb#2/);
  assert.ok(all.includes(`https://sluice.example.com/api/v1/approvals/${h.id}`));
  assert.ok(all.includes(`<https://sluice.example.com/console/#/approvals/${h.id}|review in the Sluice console>`), 'a link to the request in the web console');

  const hooks = await rx.waitFor(2, '/hook');
  assert.equal(hooks.length, 2, 'one failed attempt and one retry');
  const [first, second] = hooks as [Received, Received];
  assert.equal(first.headers['x-sluice-delivery'], second.headers['x-sluice-delivery'], 'a retry is the same delivery');
  assert.equal(second.headers['x-sluice-event'], 'approval.requested');
  assert.ok(verifySignature(secret, second.body, second.headers['x-sluice-signature']), 'HMAC-SHA256 over the body with the configured secret');
  assert.ok(!verifySignature('wrong-secret', second.body, second.headers['x-sluice-signature']));
  assert.equal(JSON.stringify(second.body).includes(secret), false, 'the secret is never sent');
  const payload = JSON.parse(second.body) as Record<string, unknown>;
  assert.equal(payload.id, h.id);
  assert.equal(payload.url, h.url);
  assert.equal(payload.consoleUrl, `https://sluice.example.com/console/#/approvals/${h.id}`);
  assert.equal(payload.approveCommand, `sluice approve ${h.id}`);
  assert.equal(payload.statement, "DELETE FROM orders WHERE created_at < '2020-01-01'");
  assert.deepEqual(payload.facts, { kind: 'delete', tablesWritten: ['orders'], hasWhere: true });
  assert.equal(payload.estimatedRows, 4200);
  assert.equal(payload.rule, 'agent/appdb#2');
  const who = payload.requester as Record<string, unknown>;
  assert.equal(who.subject, 'repo:acme/app:ref:refs/heads/main');
  assert.equal(who.role, 'agent');
  assert.equal(who.model, 'claude-sonnet');
  assert.deepEqual(who.context, { repository: 'acme/app', run_id: '987654', workflow: 'migrate', sha: 'abc123', actor: 'octocat' });
});

test('a receiver that never answers does not delay request(); close() stops its retries', async () => {
  const rx = await startReceiver();
  cleanups.push(() => rx.close());
  rx.answer = () => 'hang';
  const cfg = tempConfig(`approvals:\n  notify:\n    - webhook: ${rx.url}/slow\n`);
  cleanups.push(() => cfg.cleanup());
  const svc = await createApprovalService(cfg.config, { record: recorder().record, notify: { baseDelayMs: 10, timeoutMs: 60_000 } });
  const started = Date.now();
  const h = await svc.request(requestInput(session()));
  const tookMs = Date.now() - started;
  await rx.waitFor(1, '/slow');
  assert.ok(tookMs < 2000, `request() waited ${tookMs} ms`);
  // The hold itself is unaffected: a reviewer can still approve while the delivery hangs.
  await svc.approve(h.id, identity('alice@example.com', ['dba']));
  assert.equal((await h.outcome).state, 'approved');
  await svc.close();
  assert.equal(rx.received.length, 1, 'no retries after close');
});
