/**
 * `Expect: 100-continue` through the HTTP connector: the gateway sends `100 Continue` only once it
 * wants the body (the request is authenticated and allowed, or its rules read the body), so a
 * request refused first is answered without the client uploading anything, and that connection
 * is closed. Raw sockets, so the test sees exactly which interim and final responses arrive.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startGateway, type TestGateway } from './harness.js';
import { startUpstream, type Upstream } from './client.js';
import { apiHandler, bearerToken, createHttpListener, readBody, sendJson } from '../../../src/server/http-server.js';
import { SluiceError } from '../../../src/errors.js';

interface Exchange {
  /** Status lines of `1xx` responses, in order. */
  readonly interim: string[];
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The server closed the connection after the final response. */
  readonly closed: boolean;
}

/**
 * Send a request's head with `Expect: 100-continue`; send `body` only if `100 Continue` comes.
 * Resolves with what came back once the final response is whole (and, if the server closes, once
 * it has).
 */
function expectContinue(port: number, method: string, path: string, headers: Record<string, string>, body: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const interim: string[] = [];
    let buf = Buffer.alloc(0);
    let final: Omit<Exchange, 'closed'> | undefined;
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no final response; got ${JSON.stringify(buf.toString('latin1'))}`));
    }, 10_000);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...final!, closed });
    };
    socket.on('error', reject);
    socket.on('close', () => {
      closed = true;
      if (final !== undefined) finish();
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0 || final !== undefined) break;
        const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(statusLine!.split(' ')[1]);
        const h: Record<string, string> = {};
        for (const l of lines) h[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        if (status >= 100 && status < 200) {
          interim.push(statusLine!);
          buf = buf.subarray(end + 4);
          if (status === 100) socket.write(body);
          continue;
        }
        const length = Number(h['content-length'] ?? '0');
        if (buf.length < end + 4 + length) break;
        final = { interim, status, headers: h, body: buf.subarray(end + 4, end + 4 + length).toString() };
        // Wait a moment for a close that follows the response.
        setTimeout(finish, 200);
      }
    });
    const head = [`${method} ${path} HTTP/1.1`, 'Host: gateway.test', 'Expect: 100-continue', `Content-Length: ${Buffer.byteLength(body)}`, 'Content-Type: application/json'];
    for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
  });
}

describe('HTTP connector: Expect: 100-continue', () => {
  let up: Upstream;
  let gw: TestGateway;
  let token: string;
  const seen: string[] = [];

  before(async () => {
    up = await startUpstream((req, res, body) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ got: body.toString(), expect: req.headers.expect ?? null }));
    });
    gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: api, type: http, maxRequestBytes: 1000, upstream: { url: ${up.url} } }
  - { name: rules, type: http, upstream: { url: ${up.url} } }
policies:
  - role: agent
    connection: api
    rules:
      - allow: [post]
        paths: ['/v1/orders']
  - role: agent
    connection: rules
    rules:
      - allow: [post]
        paths: ['/v1/orders']
        when: 'http.json.amount < 100'
`);
    token = await gw.mint('agent');
  });

  after(async () => {
    await gw.close();
    await up.close();
  });

  test('an allowed request gets 100 Continue, then its body goes upstream', async () => {
    const r = await expectContinue(gw.port, 'POST', '/http/api/v1/orders', { Authorization: `Bearer ${token}` }, '{"amount":5}');
    assert.deepEqual(r.interim, ['HTTP/1.1 100 Continue']);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { got: '{"amount":5}', expect: null }, 'the body arrived; the upstream is not asked for its own 100');
    assert.equal(r.closed, false, 'the connection stays open for the next request');
  });

  test('without a token, with a forged one, denied, or declared too large: answered with no 100, the body never sent, the connection closed', async () => {
    const before = seen.length;
    const cases: Array<[string, Record<string, string>, string, number]> = [
      ['no token', {}, '/http/api/v1/orders', 401],
      ['forged token', { Authorization: `Bearer ${token.slice(0, -4)}AAAA` }, '/http/api/v1/orders', 401],
      ['denied', { Authorization: `Bearer ${token}` }, '/http/api/v1/admin', 403],
    ];
    for (const [what, headers, path, status] of cases) {
      const r = await expectContinue(gw.port, 'POST', path, headers, '{"amount":5}');
      assert.deepEqual(r.interim, [], `${what}: no 100 Continue`);
      assert.equal(r.status, status, what);
      assert.equal(r.headers.connection, 'close', `${what}: the unread body ends the connection`);
      assert.equal(r.closed, true, what);
    }
    const big = await expectContinue(gw.port, 'POST', '/http/api/v1/orders', { Authorization: `Bearer ${token}` }, JSON.stringify({ pad: 'x'.repeat(2000) }));
    assert.deepEqual(big.interim, [], 'declared too large: no 100 Continue');
    assert.equal(big.status, 413);
    assert.equal(big.closed, true);
    assert.equal(seen.length, before, 'nothing reached the upstream');
  });

  test('a rule that reads the body gets it: 100 Continue once the token is verified', async () => {
    const ok = await expectContinue(gw.port, 'POST', '/http/rules/v1/orders', { Authorization: `Bearer ${token}` }, '{"amount":5}');
    assert.deepEqual(ok.interim, ['HTTP/1.1 100 Continue']);
    assert.equal(ok.status, 200);
    const denied = await expectContinue(gw.port, 'POST', '/http/rules/v1/orders', { Authorization: `Bearer ${token}` }, '{"amount":500}');
    assert.deepEqual(denied.interim, ['HTTP/1.1 100 Continue'], 'the body was needed to decide');
    assert.equal(denied.status, 403);
    const anonymous = await expectContinue(gw.port, 'POST', '/http/rules/v1/orders', {}, '{"amount":5}');
    assert.deepEqual(anonymous.interim, [], 'no body is asked of a request without a token');
    assert.equal(anonymous.status, 401);
  });
});

describe('admin APIs on the same listener: Expect: 100-continue', () => {
  test('the body is asked for when the handler reads it, not when it refuses first', async () => {
    const listener = createHttpListener(() => {});
    // Shaped as the approvals API: the token is checked, then the body read.
    listener.mount(
      '/api/v1/things',
      apiHandler(async (req, res) => {
        if (bearerToken(req, 4096) !== 'good') throw new SluiceError('SLUICE_TOKEN_INVALID', 'bad token');
        sendJson(res, 200, { read: (await readBody(req, 1000)).toString() });
      }),
    );
    const { port } = await listener.listen('127.0.0.1:0');
    try {
      const ok = await expectContinue(port, 'POST', '/api/v1/things', { Authorization: 'Bearer good' }, '{"a":1}');
      assert.deepEqual(ok.interim, ['HTTP/1.1 100 Continue']);
      assert.deepEqual([ok.status, JSON.parse(ok.body)], [200, { read: '{"a":1}' }]);
      const refused = await expectContinue(port, 'POST', '/api/v1/things', { Authorization: 'Bearer bad' }, '{"a":1}');
      assert.deepEqual(refused.interim, []);
      assert.equal(refused.status, 401);
      assert.equal(refused.closed, true);
    } finally {
      await listener.close();
    }
  });
});
