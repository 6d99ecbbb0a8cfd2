/**
 * WebSocket through an HTTP connection, against a real `ws` server upstream and a `ws` client:
 * the upgrade is decided as `websocket` and its method, opened upstream with the injected
 * credential, messages from the upstream are masked (JSON by its fields, text by the detectors),
 * the agent's pass, and both are recorded masked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { mintShortToken } from '../../helpers/tokens.js';
import { startGateway, type TestGateway } from './harness.js';

const UPSTREAM_TOKEN = 'up-ws-token-0123456789abcdef';

interface Upstream {
  readonly url: string;
  readonly handshakes: IncomingHttpHeaders[];
  readonly received: string[];
  /** Close codes the upstream's WebSockets ended with. */
  readonly closes: number[];
  close(): Promise<void>;
}

/** A `ws` server: echoes JSON with personal data and a secret, and answers `/refuse` with 401. */
async function startWsUpstream(): Promise<Upstream> {
  const handshakes: IncomingHttpHeaders[] = [];
  const received: string[] = [];
  const closes: number[] = [];
  const server: Server = createServer((req, res) => {
    if (req.url === '/events') {
      // An event stream that never ends by itself (an LLM or MCP stream left open).
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      const tick = setInterval(() => res.write('data: tick\n\n'), 100);
      res.on('close', () => clearInterval(tick));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has('graphql-transport-ws') ? 'graphql-transport-ws' : false) });
  server.on('upgrade', (req, socket, head) => {
    handshakes.push(req.headers);
    if (req.url === '/refuse') {
      // Echoes the credential it was sent: the agent must not see it.
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nbad token ${String(req.headers.authorization)} for ada@example.com`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('close', (code) => closes.push(code));
      ws.on('message', (data, isBinary) => {
        const text = data.toString();
        received.push(isBinary ? `binary:${(data as Buffer).length}` : text);
        if (isBinary) {
          ws.send(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(UPSTREAM_TOKEN)]), { binary: true });
          return;
        }
        if (text === 'close') {
          ws.close(4000, 'bye ada@example.com');
          return;
        }
        if (text === 'die') {
          ws.terminate();
          return;
        }
        ws.send(JSON.stringify({ type: 'next', id: '1', payload: { data: { user: { email: 'ada@example.com', salary: 185000, note: 'card 4111 1111 1111 1111', big: 12345678901234567890 } } } }).replace('12345678901234567000', '12345678901234567890'));
        ws.send(`plain text with key ghp_abcdefghijklmnopqrstuvwxyz0123456789 and ${UPSTREAM_TOKEN}`);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    handshakes,
    received,
    closes,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Opened {
  readonly ws?: WebSocket;
  readonly status?: number;
  readonly body?: string;
  readonly headers?: IncomingHttpHeaders;
}

function open(url: string, token: string, protocols: string[] = []): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers: { authorization: `Bearer ${token}`, cookie: 'sid=agent-cookie', 'x-forwarded-for': '6.6.6.6', 'x-trace': 't-1' } });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    ws.once('error', reject);
  });
}

/** Messages in arrival order: none is lost between two awaits. */
function inbox(ws: WebSocket): () => Promise<{ data: Buffer; binary: boolean }> {
  const queue: { data: Buffer; binary: boolean }[] = [];
  const waiting: ((m: { data: Buffer; binary: boolean }) => void)[] = [];
  ws.on('message', (data: Buffer, binary: boolean) => {
    const w = waiting.shift();
    if (w !== undefined) w({ data, binary });
    else queue.push({ data, binary });
  });
  return () => {
    const m = queue.shift();
    return m !== undefined ? Promise.resolve(m) : new Promise((resolve) => waiting.push(resolve));
  };
}

describe('HTTP connector: WebSocket', () => {
  let up: Upstream;
  let gw: TestGateway;
  let agent: string;
  let reader: string;
  let base: string;

  before(async () => {
    up = await startWsUpstream();
    gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity:
  issuers: [ { local: true } ]
  roles: [ { name: agent }, { name: reader } ]
  clockSkew: 0s
  tokenExpiryGrace: 0s
connections:
  - name: api
    type: http
    upstream: { url: ${up.url}, auth: { bearer: "${UPSTREAM_TOKEN}" }, timeout: 2s }
    maxRequestBytes: 4096
    mask: { columns: { "*.salary": redact } }
policies:
  - role: agent
    connection: api
    rules:
      - deny: [get]
        paths: ['/admin/**']
      - deny: [websocket]
        name: no-ws-mutations
        when: http.json.payload.query.startsWith("mutation")
      - allow: [read, websocket]
        paths: ['/graphql', '/refuse', '/admin/**', '/events']
  - role: reader
    connection: api
    rules:
      - allow: [read]
        paths: ['/**']
`);
    agent = await gw.mint('agent');
    reader = await gw.mint('reader');
    base = `ws://127.0.0.1:${gw.port}/http/api`;
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  test('an allowed upgrade is relayed: the credential injected, upstream messages masked, the agent’s passed, all recorded masked', async () => {
    const { ws } = await open(`${base}/graphql?op=sub`, agent, ['graphql-transport-ws']);
    assert.ok(ws !== undefined);
    assert.equal(ws.protocol, 'graphql-transport-ws');
    const hs = up.handshakes.at(-1) as IncomingHttpHeaders;
    assert.equal(hs.authorization, `Bearer ${UPSTREAM_TOKEN}`);
    assert.equal(hs['sec-websocket-protocol'], 'graphql-transport-ws');
    assert.equal(hs['x-trace'], 't-1');
    // The agent's claimed address is replaced by its real one; its cookies pass (cookies: hold keeps upstream-set ones only).
    assert.equal(hs['x-forwarded-for'], '127.0.0.1');
    assert.equal(hs.cookie, 'sid=agent-cookie');

    const next = inbox(ws);
    ws.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query: '{ user { email } }' } }));
    const json = await next();
    assert.equal(json.binary, false);
    const text = json.data.toString();
    // Field rule and detectors applied; the rest as the upstream wrote it (a 20-digit integer intact).
    assert.match(text, /"salary":"\[REDACTED\]"/);
    assert.match(text, /"email":"a\*\*\*@example\.com"/);
    assert.match(text, /"note":"card 4111 \*\*\*\* \*\*\*\* 1111"/);
    assert.match(text, /"big":12345678901234567890/);
    const plain = (await next()).data.toString();
    assert.equal(plain, 'plain text with key [REDACTED:github_token] and [REDACTED:credential]');

    // Binary passes byte for byte, but for the credential, overwritten in place.
    ws.send(Buffer.from([9, 9, 9]), { binary: true });
    const b = await next();
    assert.equal(b.binary, true);
    assert.deepEqual(b.data, Buffer.concat([Buffer.from([0, 1, 2]), Buffer.alloc(UPSTREAM_TOKEN.length, 0x2a)]));
    assert.deepEqual(up.received.slice(-2), [JSON.stringify({ type: 'subscribe', id: '1', payload: { query: '{ user { email } }' } }), 'binary:3']);

    // The upstream's close (code and masked reason) reaches the agent.
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.send('close');
    const c = await closed;
    assert.equal(c.code, 4000);
    assert.equal(c.reason, 'bye a***@example.com');

    // Recorded: the decision before, both directions' text masked, the end with counts.
    await waitFor(() => gw.events.some((e) => e.type === 'command.result' && (e.details as { stream?: string } | undefined)?.stream === 'end'));
    const mine = gw.events.filter((e) => e.command?.text === 'GET /graphql?op=sub (upgrade: websocket)');
    assert.equal(mine[0]?.type, 'command');
    assert.equal(mine[0]?.outcome, 'pending');
    assert.equal(mine[0]?.decision?.effect, 'allow');
    const streams = mine.filter((e) => e.type === 'command.result').map((e) => e.details as { stream: string; data?: string; messagesSent?: number; messagesReceived?: number });
    const received = streams.filter((s) => s.stream === 'received').map((s) => s.data).join('');
    assert.match(received, /\[REDACTED\]/);
    const sent = streams.filter((s) => s.stream === 'sent').map((s) => s.data).join('');
    assert.match(sent, /subscribe/);
    const end = streams.find((s) => s.stream === 'end');
    assert.equal(end?.messagesSent, 3);
    assert.equal(end?.messagesReceived, 3);
    const all = JSON.stringify(gw.events);
    assert.ok(!all.includes('ada@example.com'));
    assert.ok(!all.includes(UPSTREAM_TOKEN));
    assert.ok(!all.includes('ghp_abcdefghijklmnopqrstuvwxyz0123456789'));
  });

  test('an upgrade is decided as `websocket` too: `read` alone does not open one, a deny on GET covers it', async () => {
    const refused = await open(`${base}/graphql`, reader);
    assert.equal(refused.status, 403);
    assert.match(refused.body ?? '', /SLUICE_POLICY_DENIED/);
    assert.match(refused.body ?? '', /websocket/);
    const admin = await open(`${base}/admin/ws`, agent);
    assert.equal(admin.status, 403);
    assert.ok(gw.events.some((e) => e.type === 'command' && e.outcome === 'denied' && e.command?.text === 'GET /graphql (upgrade: websocket)'));
    // Without a token: 401 with a challenge, as for any request.
    const anon = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${base}/graphql`);
      ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
      ws.once('error', reject);
    });
    assert.equal(anon, 401);
  });

  test('fail closed: when the decision cannot be recorded, the upgrade is refused and nothing reaches the upstream', async () => {
    const before = up.handshakes.length;
    gw.auditDown = true;
    try {
      const refused = await open(`${base}/graphql`, agent);
      assert.equal(refused.status, 503);
      assert.match(refused.body ?? '', /SLUICE_AUDIT_UNAVAILABLE|audit/i);
    } finally {
      gw.auditDown = false;
    }
    assert.equal(up.handshakes.length, before);
  });

  test('an upstream that dies mid-stream is an error to the agent (1011) and a failure in the record', async () => {
    const { ws } = await open(`${base}/graphql?die`, agent);
    assert.ok(ws !== undefined);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send('die');
    assert.equal(await closed, 1011);
    await waitFor(() => gw.events.some((e) => e.type === 'command.result' && e.command?.text === 'GET /graphql?die (upgrade: websocket)' && (e.details as { stream?: string } | undefined)?.stream === 'end'));
    const end = gw.events.find((e) => e.type === 'command.result' && e.command?.text === 'GET /graphql?die (upgrade: websocket)' && (e.details as { stream?: string } | undefined)?.stream === 'end');
    assert.equal(end?.outcome, 'failure');
    assert.equal(end?.error?.code, 'SLUICE_UPSTREAM_UNAVAILABLE');
  });

  test('a WebSocket ends when the token that opened it expires: 1008 to the agent, 1001 upstream, the reason in the record', async () => {
    const { token: short, expiresAt } = await mintShortToken(gw.config, 'agent', 'short-ws@test', 2);
    const { ws } = await open(`${base}/graphql?short`, short);
    assert.ok(ws !== undefined);
    const next = inbox(ws);
    ws.send('hello');
    await next(); // the stream works until then
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    const { code, reason } = await closed;
    assert.deepEqual({ code, reason }, { code: 1008, reason: 'token expired' });
    assert.ok(Date.now() >= expiresAt, 'not before the token expired');
    await waitFor(() => up.closes.includes(1001));
    const text = 'GET /graphql?short (upgrade: websocket)';
    await waitFor(() => gw.events.some((e) => e.type === 'command.result' && e.command?.text === text && (e.details as { stream?: string } | undefined)?.stream === 'end'));
    const end = gw.events.find((e) => e.type === 'command.result' && e.command?.text === text && (e.details as { stream?: string } | undefined)?.stream === 'end');
    assert.equal(end?.outcome, 'failure');
    assert.equal(end?.error?.code, 'SLUICE_TOKEN_EXPIRED');
  });

  test('a streamed response ends when the token expires; a new request with that token is refused', async () => {
    const { token: short, expiresAt } = await mintShortToken(gw.config, 'agent', 'short-sse@test', 2);
    const res = await fetch(`http://127.0.0.1:${gw.port}/http/api/events`, { headers: { authorization: `Bearer ${short}` } });
    assert.equal(res.status, 200);
    let got = '';
    const ended = (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) got += Buffer.from(chunk).toString();
        return 'end';
      } catch {
        return 'aborted';
      }
    })();
    assert.equal(await ended, 'aborted', 'cut off, not a clean end the agent would take for the whole stream');
    assert.match(got, /data: first\n\n(data: tick\n\n)+/);
    assert.ok(Date.now() >= expiresAt);
    await waitFor(() => gw.events.some((e) => e.type === 'command.result' && e.command?.text === 'GET /events' && e.error?.code === 'SLUICE_TOKEN_EXPIRED'));
    const again = await fetch(`http://127.0.0.1:${gw.port}/http/api/events`, { headers: { authorization: `Bearer ${short}` } });
    assert.equal(again.status, 401);
    await again.body?.cancel();
  });

  test('where rules read http.json, each agent message is decided: a GraphQL mutation sent over the socket is refused (1008) before it reaches the upstream', async () => {
    const { ws } = await open(`${base}/graphql?msgs`, agent, ['graphql-transport-ws']);
    assert.ok(ws !== undefined);
    const next = inbox(ws);
    ws.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query: 'subscription { orders { id } }' } }));
    await next(); // an allowed message goes through
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.send(JSON.stringify({ type: 'subscribe', id: '2', payload: { query: 'mutation { deleteUser(id: 7) }' } }));
    const { code, reason } = await closed;
    assert.equal(code, 1008);
    assert.match(reason, /denied by rule no-ws-mutations/);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!up.received.some((m) => m.includes('deleteUser')), 'the mutation never reached the upstream');
    const denied = gw.events.find((e) => e.type === 'command' && e.outcome === 'denied' && (e.command?.text ?? '').startsWith('GET /graphql?msgs (upgrade: websocket) message: '));
    assert.equal(denied?.decision?.rule, 'no-ws-mutations');
    assert.match(denied?.command?.text ?? '', /deleteUser/);
    // A message that cannot be read one way only (a repeated key) is refused too.
    const again = await open(`${base}/graphql?dup`, agent);
    assert.ok(again.ws !== undefined);
    const closedDup = new Promise<{ code: number; reason: string }>((r) => again.ws?.once('close', (c, why) => r({ code: c, reason: why.toString() })));
    again.ws.send('{"payload":{"query":"subscription { a }","query":"mutation { b }"}}');
    const dup = await closedDup;
    assert.equal(dup.code, 1008);
    assert.match(dup.reason, /repeats a key/);
    assert.ok(!up.received.some((m) => m.includes('mutation { b }')));
  });

  test('an agent message over maxRequestBytes closes the WebSocket with 1009', async () => {
    const { ws } = await open(`${base}/graphql`, agent);
    assert.ok(ws !== undefined);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send('x'.repeat(5000));
    assert.equal(await closed, 1009);
  });

  test('the upstream’s refusal reaches the agent masked, without the credential; other upgrades are refused', async () => {
    const refused = await open(`${base}/refuse`, agent);
    assert.equal(refused.status, 401);
    assert.match(refused.body ?? '', /a\*\*\*@example\.com/);
    assert.ok(!(refused.body ?? '').includes(UPSTREAM_TOKEN), refused.body);
    const h2c = await new Promise<string>((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1', () => s.write(`GET /http/api/graphql HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\nauthorization: Bearer ${agent}\r\n\r\n`));
      let got = '';
      s.on('data', (c) => (got += c.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(h2c, /^HTTP\/1\.1 400 /);
    assert.match(h2c, /WebSocket upgrades only/);
  });
});

async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
