import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { rmSync } from 'node:fs';
import { startGateway, type TestGateway } from './harness.js';
import { makeCertificates, send, startUpstream, type Upstream } from './client.js';

const UPSTREAM_TOKEN = 'upstream-Secret-Token-0123456789';

function config(upstreamUrl: string, extra = ''): string {
  return `
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity:
  issuers: [ { local: true } ]
  roles: [ { name: agent }, { name: admin } ]
connections:
  - name: api
    type: http
    upstream: { url: ${upstreamUrl}, auth: { bearer: "${UPSTREAM_TOKEN}" }, timeout: 400ms }
    maxRequestBytes: 1024
    maxResponseBytes: 4096
    mask: { columns: { "*.password": redact, "result.salary": redact } }
${extra}
policies:
  - role: agent
    connection: api
    rules:
      - deny: [delete]
        paths: ['/v1/orders/**']
      - allow: [read]
        paths: ['/v1/**', '/echo/**', '/slow', '/bin', '/envfile', '/big', '/stream', '/text', '/events', '/ids', '/dup', '/latin1', '/latin1-stream', '/hdr', '/utf16-*', '/contents', '/jar/**', '/export*']
      - allow: [post]
        paths: ['/v1/orders']
        when: http.headers["content-type"] == "application/json"
      - allow: [post]
        paths: ['/echo/form']
  - role: admin
    connection: api
    rules:
      - allow: '*'
`;
}

describe('HTTP connector', () => {
  let up: Upstream;
  let gw: TestGateway;
  let token: string;
  let auth: { authorization: string };

  before(async () => {
    up = await startUpstream((req, res, body) => {
      const url = req.url ?? '';
      if (url.startsWith('/echo')) {
        // Echo what arrived, headers included: the credential must not come back out.
        const payload = JSON.stringify({ url, headers: req.headers, body: body.toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json', connection: 'x-up-hop', 'x-up-hop': 'hop', 'x-upstream-auth': String(req.headers.authorization) });
        res.end(payload);
        return;
      }
      if (url === '/v1/customers/1') {
        const payload = JSON.stringify({ id: 1, email: 'ada@example.com', card: '4111 1111 1111 1111', profile: { password: 'hunter2', note: 'ssn 123-45-6789' } });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
        return;
      }
      if (url === '/ids') {
        // As a Go or Java service writes int64s: beyond 2^53, which JSON.parse rounds.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": 1234567890123456789, "total": 10.50, "owner": {"email": "ada@example.com"}, "tags": [1.0, 2e3], "unionpay": 6212345678901234569}');
        return;
      }
      if (url === '/dup') {
        // A duplicate key: JSON.parse keeps the last value, the first was never looked at.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"note": "AKIAIOSFODNN7EXAMPLE", "note": "fine"}\n');
        return;
      }
      if (url === '/latin1' || url === '/latin1-stream') {
        // A Latin-1 page (not UTF-8): its ASCII secret is found, its other bytes come back as sent.
        const bytes = Buffer.from('Café menu\nkey AKIAIOSFODNN7EXAMPLE für Zoë\n', 'latin1');
        res.writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1', ...(url === '/latin1' ? { 'content-length': bytes.length } : {}) });
        res.end(bytes);
        return;
      }
      if (url.startsWith('/utf16')) {
        // UTF-16 text, as PowerShell and Windows tools write it: every ASCII character is followed
        // (LE) or preceded (BE) by a NUL, so no detector reading bytes would see the key in it.
        const text = 'Café export\nkey AKIAIOSFODNN7EXAMPLE owner ada@example.com\n';
        const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
        const be = Buffer.from(text, 'utf16le').swap16();
        const variants: Record<string, readonly [string, Buffer, boolean]> = {
          '/utf16-bom': ['text/plain', le, true], // no charset: found by its byte-order mark
          '/utf16-declared': ['text/plain; charset=UTF-16BE', be, true],
          '/utf16-stream': ['text/plain', le, false],
          '/utf16-json': ['application/json; charset=utf-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify({ key: 'AKIAIOSFODNN7EXAMPLE', note: 'Café' }), 'utf16le')]), true],
          '/utf16-nobom': ['application/json', Buffer.from(JSON.stringify({ key: 'AKIAIOSFODNN7EXAMPLE' }), 'utf16le'), true], // RFC 4627 NUL pattern
          '/utf16-utf32': ['text/plain', Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.alloc(16)]), true],
          '/utf16-ebcdic': ['text/plain; charset=cp037', Buffer.from('c1c2c3', 'hex'), true],
          '/utf16-ebcdic-stream': ['text/plain; charset=cp037', Buffer.from('c1c2c3', 'hex'), false],
        };
        const [type, bytes, sized] = variants[url] ?? ['text/plain', Buffer.alloc(0), true];
        res.writeHead(200, { 'content-type': type, ...(sized ? { 'content-length': bytes.length } : {}) });
        // Streamed: the byte-order mark and the text arrive in separate writes, split mid-character.
        if (!sized) res.write(bytes.subarray(0, 5));
        res.end(sized ? bytes : bytes.subarray(5));
        return;
      }
      if (url.startsWith('/export')) {
        // A CSV export: the header names the columns; a quoted note spans two lines.
        const csv = 'id,name,password,api_token,note\r\n1,Ada,hunter2,Zx81fQk2LmP0aR7tYw3B,"said ""hi"",\nthen left"\r\n2,Alan,correct horse,k9PqR2sT7uVw3XyZ1aB4,plain\r\n';
        const tsv = 'id\tpassword\tnote\n1\thunter2\tcall ada@example.com\n';
        const body = url.includes('tsv') ? tsv : csv;
        res.writeHead(200, { 'content-type': url.includes('tsv') ? 'text/tab-separated-values' : 'text/csv; charset=utf-8', ...(url.includes('stream') ? {} : { 'content-length': Buffer.byteLength(body) }) });
        if (url.includes('stream')) {
          // Cut mid-record and mid-value: the header and the quoted note arrive in pieces.
          res.write(body.slice(0, 20));
          setTimeout(() => res.end(body.slice(20)), 20);
        } else res.end(body);
        return;
      }
      if (url === '/contents') {
        // The GitHub contents API: a file as base64, wrapped at 60 columns.
        const file = Buffer.from('# deploy\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n').toString('base64').replace(/(.{60})/g, '$1\n');
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ name: '.env', encoding: 'base64', content: `${file}\n` }));
        return;
      }
      if (url.startsWith('/jar/')) {
        // A login that answers with a session cookie, and pages that show what cookies arrived.
        if (url === '/jar/login') {
          res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['sid=upstream-session-0123456789; Path=/jar; HttpOnly; Secure', 'pref=dark; Path=/', 'gone=1; Max-Age=0', 'scoped=1; Path=/other'] });
          res.end('{}');
          return;
        }
        if (url === '/jar/logout') {
          res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/jar' });
          res.end('{}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ cookie: req.headers.cookie ?? null }));
        return;
      }
      if (url === '/text') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('contact ada@example.com\nplain line\n');
        return;
      }
      if (url === '/bin') {
        const bytes = Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from('ada@example.com 4111 1111 1111 1111')]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        res.end(bytes);
        return;
      }
      if (url === '/envfile') {
        // A text file served as plain bytes, as object stores and file APIs do; in two chunks.
        const env = 'DB_HOST=db.internal\nDB_PASSWORD=hunter2-prod\nSTRIPE_KEY=sk_live_abcdefghijklmnop1234\n';
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(env) });
        res.write(env.slice(0, 25));
        setTimeout(() => res.end(env.slice(25)), 20);
        return;
      }
      if (url === '/big') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ pad: 'x'.repeat(10_000) }));
        return;
      }
      if (url === '/stream') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write(`${JSON.stringify({ n: 1, email: 'ada@example.com' })}\n`);
        // The second line waits until the test has seen the first one through Sluice.
        streamGate = () => res.end(`${JSON.stringify({ n: 2, card: '4111 1111 1111 1111' })}\n`);
        return;
      }
      if (url === '/events') {
        // Server-sent events, as MCP's Streamable HTTP answers: each event is data lines and a blank line.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { owner: 'ada@example.com' } })}\n\n`);
        eventsGate = () =>
          res.end(
            `data: ${JSON.stringify({ jsonrpc: '2.0', id: 2, result: { key: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789' } })}\n\n` +
              // One JSON message over three data lines, CRLF line ends: the field rule on
              // result.salary applies once the lines are joined as a client joins them.
              `id: 3\r\ndata: {"jsonrpc": "2.0", "id": 3,\r\ndata:  "result": {"salary": 185000,\r\ndata:   "card": "4111 1111 1111 1111", "name": "Ada"}}\r\n\r\n`,
          );
        return;
      }
      if (url === '/hdr') {
        // Secrets and personal data in response headers, beside framing headers.
        res.writeHead(200, { 'content-type': 'application/json', 'x-debug-key': 'aws AKIAIOSFODNN7EXAMPLE', location: '/users/ada@example.com', 'set-cookie': ['a=1', 'k=ghp_abcdefghijklmnopqrstuvwxyz0123456789'], etag: '"4111111111111111"' });
        res.end('{}');
        return;
      }
      if (url === '/slow') return; // never answers
      if (req.method === 'POST' && url === '/v1/orders') {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ created: true, size: body.length }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, url, method: req.method }));
    });
    gw = await startGateway(config(up.url));
    token = await gw.mint('agent');
    auth = { authorization: `Bearer ${token}` };
  });
  after(async () => {
    await gw.close();
    await up.close();
  });
  let streamGate: (() => void) | undefined;
  let eventsGate: (() => void) | undefined;

  test('forwards under /http/<name>, strips the agent token and injects the upstream credential', async () => {
    const r = await send(gw.port, 'GET', '/http/api/echo/a?x=1', auth);
    assert.equal(r.status, 200);
    const seen = up.requests.at(-1);
    assert.equal(seen?.url, '/echo/a?x=1');
    assert.equal(seen?.headers.authorization, `Bearer ${UPSTREAM_TOKEN}`);
    assert.ok(!JSON.stringify(seen?.headers).includes(token), 'the agent token must not reach the upstream');
    // The upstream echoed its credential in the body and a header: the agent sees neither.
    assert.ok(!r.text.includes(UPSTREAM_TOKEN), r.text);
    assert.ok(!JSON.stringify(r.headers).includes(UPSTREAM_TOKEN));
    assert.match(r.text, /REDACTED/);
  });

  test('no token → 401 with a Bearer challenge; a bad token → 401', async () => {
    const none = await send(gw.port, 'GET', '/http/api/v1/x');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="sluice"');
    assert.equal((none.json() as { title: string }).title, 'SLUICE_TOKEN_MISSING');
    const bad = await send(gw.port, 'GET', '/http/api/v1/x', { authorization: 'Bearer not.a.jwt' });
    assert.equal(bad.status, 401);
  });

  test('policy over method and path: globs, method aliases, CEL over request facts', async () => {
    assert.equal((await send(gw.port, 'GET', '/http/api/v1/orders/7', auth)).status, 200);
    assert.equal((await send(gw.port, 'HEAD', '/http/api/v1/orders/7', auth)).status, 200);
    const del = await send(gw.port, 'DELETE', '/http/api/v1/orders/7', auth);
    assert.equal(del.status, 403);
    assert.match((del.json() as { detail: string }).detail, /agent\/api#0/);
    // Deny rules match any case, so /V1/Orders cannot dodge them at a case-insensitive upstream.
    assert.equal((await send(gw.port, 'DELETE', '/http/api/V1/Orders/7', auth)).status, 403);
    assert.equal((await send(gw.port, 'GET', '/http/api/admin', auth)).status, 403);
    assert.equal((await send(gw.port, 'POST', '/http/api/v1/orders', { ...auth, 'content-type': 'application/json' }, '{"a":1}')).status, 201);
    assert.equal((await send(gw.port, 'POST', '/http/api/v1/orders', { ...auth, 'content-type': 'text/plain' }, 'a')).status, 403);
    const denied = gw.events.filter((e) => e.type === 'command' && e.outcome === 'denied');
    assert.ok(denied.some((e) => e.command?.text === 'DELETE /v1/orders/7' && e.decision?.effect === 'deny'));
  });

  test('a method override is decided as the method it names: header, query parameter or form field', async () => {
    const json = { ...auth, 'content-type': 'application/json' };
    for (const [target, headers] of [
      ['/http/api/v1/orders', { ...json, 'x-http-method-override': 'DELETE' }],
      ['/http/api/v1/orders', { ...json, 'X-HTTP-Method': 'delete' }],
      ['/http/api/v1/orders', { ...json, 'x-method-override': 'PUT' }],
      ['/http/api/v1/orders?_method=DELETE', json],
    ] as const) {
      const r = await send(gw.port, 'POST', target, headers, '{"a":1}');
      assert.equal(r.status, 403, `${target} ${JSON.stringify(headers)}`);
    }
    const form = { ...auth, 'content-type': 'application/x-www-form-urlencoded' };
    const refused = await send(gw.port, 'POST', '/http/api/echo/form', form, 'a=1&_method=DELETE');
    assert.equal(refused.status, 403);
    assert.match((refused.json() as { detail: string }).detail, /delete/i);
    assert.equal((await send(gw.port, 'POST', '/http/api/echo/form', form, 'a=1&%5Fmethod=PATCH')).status, 403, 'the field name percent-encoded');
    // A form without one is read to decide and forwarded byte for byte.
    const ok = await send(gw.port, 'POST', '/http/api/echo/form', form, 'a=1&b=%C3%A9+x');
    assert.equal(ok.status, 200);
    assert.equal((ok.json() as { body: string }).body, 'a=1&b=%C3%A9+x');
    // Multipart forms too (Rails, Laravel and Symfony read _method from them).
    const multipart = { ...auth, 'content-type': 'multipart/form-data; boundary=XyZ' };
    const withMethod = '--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--XyZ--\r\n';
    assert.equal((await send(gw.port, 'POST', '/http/api/echo/form', multipart, withMethod)).status, 403);
    const plainParts = '--XyZ\r\nContent-Disposition: form-data; name="a"; filename="_method"\r\nContent-Type: text/plain\r\n\r\nDELETE\r\n--XyZ--\r\n';
    const upload = await send(gw.port, 'POST', '/http/api/echo/form', multipart, plainParts);
    assert.equal(upload.status, 200, 'a file named _method is no method override');
    assert.equal((upload.json() as { body: string }).body, plainParts);
    // A form too large to read is refused, and recorded.
    const big = await send(gw.port, 'POST', '/http/api/echo/form', form, `a=${'x'.repeat(2000)}`);
    assert.equal(big.status, 413);
    assert.ok(gw.events.some((e) => e.type === 'command' && e.outcome === 'failure' && e.command?.text === 'POST /echo/form' && e.error?.code === 'SLUICE_MESSAGE_TOO_LARGE'));
    // An override of the request's own method changes nothing.
    assert.equal((await send(gw.port, 'POST', '/http/api/v1/orders', { ...json, 'x-http-method-override': 'POST' }, '{"a":1}')).status, 201);
    assert.ok(gw.events.some((e) => e.type === 'command' && e.outcome === 'denied' && e.command?.text === 'POST /echo/form (method override: DELETE)'));
  });

  test('paths that an upstream could resolve differently are refused', async () => {
    for (const p of ['/http/api/v1/../admin', '/http/api/v1/%2e%2e/admin', '/http/api/v1/a%2Fb', '/http/api/v1//admin', '/http/api/v1/a%5cb']) {
      const r = await send(gw.port, 'GET', p, auth);
      assert.equal(r.status, 400, p);
    }
  });

  test('role from X-Sluice-Role; a two-role token must name one', async () => {
    const both = await gw.mint(['agent', 'admin']);
    assert.equal((await send(gw.port, 'GET', '/http/api/admin', { authorization: `Bearer ${both}` })).status, 403);
    assert.equal((await send(gw.port, 'GET', '/http/api/admin', { authorization: `Bearer ${both}`, 'x-sluice-role': 'admin' })).status, 200);
    assert.ok(!('x-sluice-role' in (up.requests.at(-1)?.headers ?? {})), 'Sluice headers are not forwarded');
  });

  test('hop-by-hop headers, including those named in Connection, are stripped both ways', async () => {
    const r = await send(gw.port, 'GET', '/http/api/echo/hop', { ...auth, connection: 'keep-alive, x-agent-hop', 'x-agent-hop': 'secret', 'x-kept': 'yes', te: 'trailers' });
    const seen = up.requests.at(-1)?.headers ?? {};
    assert.equal(seen['x-agent-hop'], undefined);
    assert.equal(seen.te, undefined);
    assert.equal(seen['x-kept'], 'yes');
    assert.equal(r.headers['x-up-hop'], undefined);
  });

  test('masks JSON by field rule and detectors, fixing content-length', async () => {
    const r = await send(gw.port, 'GET', '/http/api/v1/customers/1', auth);
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers['content-length']), r.body.length);
    const body = r.json() as { email: string; card: string; profile: { password: string; note: string } };
    assert.notEqual(body.email, 'ada@example.com');
    assert.ok(!r.text.includes('4111 1111 1111 1111'));
    assert.ok(!r.text.includes('hunter2'));
    assert.ok(!r.text.includes('123-45-6789'));
    const result = gw.events.filter((e) => e.type === 'command.result').at(-1);
    assert.equal((result?.details as { status: number }).status, 200);
    assert.ok((result?.mask ?? []).length > 0);
    assert.equal(typeof result?.durationMs, 'number');
    assert.equal(result?.bytes, r.body.length);
  });

  test('masked JSON keeps the upstream\'s text wherever nothing was masked: int64 IDs, 10.50, layout', async () => {
    const r = await send(gw.port, 'GET', '/http/api/ids', auth);
    // …and a 19-digit card number written as a number, which JSON.parse rounds past its checksum, is still found.
    assert.equal(r.text, '{"id": 1234567890123456789, "total": 10.50, "owner": {"email": "a***@example.com"}, "tags": [1.0, 2e3], "unionpay": "6212***********4569"}');
    assert.equal(Number(r.headers['content-length']), r.body.length);
  });

  test('a duplicate JSON key cannot carry a value past masking', async () => {
    const r = await send(gw.port, 'GET', '/http/api/dup', auth);
    assert.equal(r.status, 200);
    assert.ok(!r.text.includes('AKIA'), r.text);
    assert.deepEqual(r.json(), { note: 'fine' });
  });

  test('masks text that is not UTF-8 (Latin-1), buffered and streamed, keeping its other bytes as sent', async () => {
    const want = Buffer.from('Café menu\nkey [REDACTED:aws_access_key] für Zoë\n', 'latin1');
    for (const path of ['/http/api/latin1', '/http/api/latin1-stream']) {
      const r = await send(gw.port, 'GET', path, auth);
      assert.equal(r.status, 200, path);
      assert.deepEqual(r.body, want, `${path}: ${r.body.toString('latin1')}`);
    }
  });

  test('UTF-16 text is masked as the text it is and sent as UTF-8; encodings Sluice cannot decode are refused', async () => {
    for (const path of ['/utf16-bom', '/utf16-declared', '/utf16-stream']) {
      const r = await send(gw.port, 'GET', `/http/api${path}`, auth);
      assert.equal(r.status, 200, path);
      assert.equal(r.text, 'Café export\nkey [REDACTED:aws_access_key] owner ' + r.text.split('owner ')[1], path);
      assert.ok(!r.text.includes('AKIAIOSFODNN7EXAMPLE') && !r.text.includes('ada@example.com'), `${path}: ${r.text}`);
      if (path !== '/utf16-stream') assert.match(String(r.headers['content-type']), /charset=utf-8/, path);
    }
    for (const path of ['/utf16-json', '/utf16-nobom']) {
      const r = await send(gw.port, 'GET', `/http/api${path}`, auth);
      assert.equal(r.status, 200, path);
      const body = JSON.parse(r.text) as { key: string };
      assert.equal(body.key, '[REDACTED:aws_access_key]', path);
      assert.match(String(r.headers['content-type']), /^application\/json; charset=utf-8$/, path);
    }
    for (const path of ['/utf16-utf32', '/utf16-ebcdic', '/utf16-ebcdic-stream']) {
      const r = await send(gw.port, 'GET', `/http/api${path}`, auth);
      assert.equal(r.status, 502, `${path}: ${r.status} ${r.text}`);
      assert.match(r.text, /cannot decode to mask/, path);
    }
  });

  test('CSV and TSV: the header names the columns, so rules and secret-like names apply to the values under them', async () => {
    for (const path of ['/http/api/export.csv', '/http/api/export-stream.csv']) {
      const r = await send(gw.port, 'GET', path, auth);
      assert.equal(r.status, 200, path);
      assert.equal(
        r.text,
        'id,name,password,api_token,note\r\n1,Ada,[REDACTED],[REDACTED:generic_secret],"said ""hi"",\nthen left"\r\n2,Alan,[REDACTED],[REDACTED:generic_secret],plain\r\n',
        path,
      );
    }
    const tsv = await send(gw.port, 'GET', '/http/api/export.tsv', auth);
    assert.equal(tsv.text, 'id\tpassword\tnote\n1\t[REDACTED]\tcall a***@example.com\n');
  });

  test('a PUT or PATCH carrying a value Sluice masked is refused before it reaches the upstream; a POST that quotes one is not', async () => {
    const both = await gw.mint(['agent', 'admin']);
    const admin = { authorization: `Bearer ${both}`, 'x-sluice-role': 'admin', 'content-type': 'application/json' };
    const before = up.requests.length;
    for (const [method, body] of [
      ['PUT', '{"email": "a***@example.com", "name": "Ada"}'],
      ['PATCH', '{"password": "[REDACTED:password]"}'],
      ['PUT', '{"owner": "hash:e3e30b4d50224a4b"}'],
    ] as const) {
      const r = await send(gw.port, method, '/http/api/echo/profile', admin, body);
      assert.equal(r.status, 403, `${method} ${body}: ${r.text}`);
      assert.match(r.text, /value Sluice masked/);
    }
    assert.equal(up.requests.length, before, 'nothing reached the upstream');
    // Streamed (chunked), the placeholder cut across two chunks: the upstream never gets a whole body.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gw.port, method: 'PUT', path: '/http/api/echo/stream', headers: { ...admin, 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write('{"note": "x", "password": "[REDAC');
      setTimeout(() => req.end('TED:password]"}'), 30);
    });
    assert.notEqual(chunked, 200);
    assert.ok(!up.requests.some((q) => q.url === '/echo/stream' && q.body.toString().includes('[REDACTED')), 'no complete body with the placeholder upstream');
    const post = await send(gw.port, 'POST', '/http/api/echo/comment', admin, '{"body": "the key was [REDACTED:aws_access_key], rotated"}');
    assert.equal(post.status, 200, post.text);
  });

  test('a file returned as base64 in JSON is masked inside the encoding', async () => {
    const r = await send(gw.port, 'GET', '/http/api/contents', auth);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text) as { content: string; encoding: string };
    assert.equal(body.encoding, 'base64');
    assert.equal(Buffer.from(body.content, 'base64').toString(), '# deploy\nAWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]\n');
  });

  test('headers an agent could forge (client address, URL overrides, auth-proxy identities) are not forwarded; Sluice says who called', async () => {
    const forged = {
      'x-forwarded-for': '10.0.0.1',
      forwarded: 'for=10.0.0.1;proto=https',
      'x-real-ip': '10.0.0.1',
      'true-client-ip': '10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'admin.internal',
      'x-original-url': '/admin/users',
      'x-rewrite-url': '/admin/users',
      'x-remote-user': 'system:admin',
      'x-remote-group': 'system:masters',
      'x-remote-extra-scopes': 'all',
      'x-webauth-user': 'admin',
      'x-forwarded-user': 'admin',
      'x-auth-request-email': 'root@example.com',
      'x-goog-authenticated-user-email': 'accounts.google.com:root@example.com',
      'x-custom-trace': 'kept',
    };
    const r = await send(gw.port, 'GET', '/http/api/echo', { ...auth, ...forged });
    assert.equal(r.status, 200);
    const got = (JSON.parse(r.text) as { headers: Record<string, string> }).headers;
    for (const name of Object.keys(forged)) {
      if (name.startsWith('x-forwarded-') && ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].includes(name)) continue;
      if (name === 'x-custom-trace') continue;
      assert.equal(got[name], undefined, `${name} was forwarded`);
    }
    assert.equal(got['x-custom-trace'], 'kept', 'other headers pass');
    assert.equal(got['x-forwarded-for'], '127.0.0.1');
    assert.equal(got['x-forwarded-proto'], 'http');
    assert.equal(got['x-forwarded-host'], `127.0.0.1:${gw.port}`);
  });

  test('cookies the upstream sets are kept per agent session, sent on its later requests and never shown to the agent', async () => {
    const login = await send(gw.port, 'GET', '/http/api/jar/login', auth);
    assert.equal(login.status, 200);
    assert.equal(login.headers['set-cookie'], undefined);
    const seen = async (headers: Record<string, string>): Promise<string | null> => (JSON.parse((await send(gw.port, 'GET', '/http/api/jar/me', headers)).text) as { cookie: string | null }).cookie;
    // Path-scoped, expired and foreign-path cookies are treated as a browser would.
    assert.equal(await seen(auth), 'sid=upstream-session-0123456789; pref=dark');
    // The agent's own cookies go along; a name the jar holds is the upstream's, not the agent's.
    assert.equal(await seen({ ...auth, cookie: 'sid=forged; theme=x' }), 'theme=x; sid=upstream-session-0123456789; pref=dark');
    // Another agent session has its own (empty) jar.
    const other = await gw.mint('agent', 'other-agent');
    assert.equal(await seen({ authorization: `Bearer ${other}` }), null);
    // A cookie the upstream expires is dropped.
    await send(gw.port, 'GET', '/http/api/jar/logout', auth);
    assert.equal(await seen(auth), 'pref=dark');
  });

  test('the agent cannot choose the response charset or compression', async () => {
    const r = await send(gw.port, 'GET', '/http/api/echo', { ...auth, 'accept-charset': 'utf-16', 'accept-encoding': 'gzip' });
    const echoed = JSON.parse(r.text) as { headers: Record<string, string> };
    assert.equal(echoed.headers['accept-charset'], undefined);
    assert.equal(echoed.headers['accept-encoding'], 'identity');
  });

  test('masks response header values with the detectors, leaving framing and cache headers as sent', async () => {
    const r = await send(gw.port, 'GET', '/http/api/hdr', auth);
    assert.equal(r.status, 200);
    const h = r.headers;
    assert.match(String(h['x-debug-key']), /^aws \S+$/);
    assert.ok(!String(h['x-debug-key']).includes('AKIAIOSFODNN7EXAMPLE'), String(h['x-debug-key']));
    assert.match(String(h.location), /^\/users\/\S+$/);
    assert.ok(!String(h.location).includes('ada@example.com'), String(h.location));
    assert.equal(h['set-cookie'], undefined, 'cookies the upstream sets are held by Sluice (cookies: hold, the default)');
    assert.equal(h.etag, '"4111111111111111"', 'a cache validator is not scanned');
    assert.equal(h['content-type'], 'application/json');
  });

  test('masks text; passes binary byte for byte', async () => {
    const t = await send(gw.port, 'GET', '/http/api/text', auth);
    assert.ok(!t.text.includes('ada@example.com'));
    assert.match(t.text, /plain line/);
    const b = await send(gw.port, 'GET', '/http/api/bin', auth);
    assert.deepEqual(b.body, Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from('ada@example.com 4111 1111 1111 1111')]));
    // application/octet-stream whose bytes are text (an .env from a file API) is masked as text.
    const env = await send(gw.port, 'GET', '/http/api/envfile', auth);
    assert.equal(env.status, 200);
    assert.equal(env.text, 'DB_HOST=db.internal\nDB_PASSWORD=[REDACTED:password]\nSTRIPE_KEY=[REDACTED:stripe_key]\n');
    assert.equal(env.headers['content-length'], undefined, 'masked text changes length: sent chunked');
  });

  test('streams NDJSON line by line, masked', async () => {
    const lines = await new Promise<string[]>((resolve, reject) => {
      const got: string[] = [];
      const req = request({ host: '127.0.0.1', port: gw.port, path: '/http/api/stream', headers: auth }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          const parts = buf.split('\n');
          buf = parts.pop() ?? '';
          for (const p of parts) {
            got.push(p);
            // The first line arrived while the upstream still holds the second: streaming, not buffering.
            if (got.length === 1) streamGate?.();
          }
        });
        res.on('end', () => resolve(got));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(lines.length, 2);
    assert.ok(!lines[0]?.includes('ada@example.com'));
    assert.ok(!lines[1]?.includes('4111 1111 1111 1111'));
    assert.equal((JSON.parse(lines[1] as string) as { n: number }).n, 2);
  });

  test('streams server-sent events (text/event-stream) event by event, each event\'s data masked as JSON with the field rules', async () => {
    const { text, contentType } = await new Promise<{ text: string; contentType: string }>((resolve, reject) => {
      let got = '';
      const req = request({ host: '127.0.0.1', port: gw.port, path: '/http/api/events', headers: { ...auth, accept: 'text/event-stream' } }, (res) => {
        res.on('data', (c: Buffer) => {
          got += c.toString();
          // The first event arrived whole while the upstream still holds the second.
          if (got.includes('\n\n')) eventsGate?.();
        });
        res.on('end', () => resolve({ text: got, contentType: String(res.headers['content-type']) }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(contentType, 'text/event-stream');
    const events = text.split(/\r?\n\r?\n/).filter((e) => e !== '');
    assert.equal(events.length, 3, text);
    assert.match(events[0] as string, /^event: message\ndata: \{"jsonrpc":"2.0","id":1,"result":\{"owner":"a\*\*\*@example\.com"\}\}$/);
    assert.match(events[1] as string, /^data: \{"jsonrpc":"2.0","id":2,"result":\{"key":"\[REDACTED:github_token\]"\}\}$/);
    // Same lines, same line ends; the data, joined, is JSON masked by the connection's field rule.
    assert.equal(events[2], 'id: 3\r\ndata: {"jsonrpc": "2.0", "id": 3,\r\ndata:  "result": {"salary": "[REDACTED]",\r\ndata:   "card": "4111 **** **** 1111", "name": "Ada"}}');
    const data = (events[2] as string).split('\r\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    assert.deepEqual(JSON.parse(data.join('\n')), { jsonrpc: '2.0', id: 3, result: { salary: '[REDACTED]', card: '4111 **** **** 1111', name: 'Ada' } });
  });

  test('request and response size limits', async () => {
    const big = await send(gw.port, 'POST', '/http/api/v1/orders', { ...auth, 'content-type': 'application/json' }, 'x'.repeat(2000));
    assert.equal(big.status, 413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gw.port, method: 'POST', path: '/http/api/v1/orders', headers: { ...auth, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write('y'.repeat(400));
      req.end();
    });
    assert.equal(chunked, 413);
    const bigResponse = await send(gw.port, 'GET', '/http/api/big', auth);
    assert.equal(bigResponse.status, 413);
    assert.ok(!bigResponse.text.includes('xxxxxxxx'));
  });

  test('an upstream that does not answer times out with 502', async () => {
    const t0 = Date.now();
    const r = await send(gw.port, 'GET', '/http/api/slow', auth);
    assert.equal(r.status, 502);
    assert.match(r.text, /did not answer within 400 ms/);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('keeps upstream connections alive across requests', async () => {
    const before = up.connections;
    for (let i = 0; i < 10; i++) assert.equal((await send(gw.port, 'GET', '/http/api/v1/k', auth)).status, 200);
    assert.ok(up.connections - before <= 2, `opened ${up.connections - before} upstream connections for 10 requests`);
  });

  test('one session per token: auth and session.start are recorded once, every request is a command', async () => {
    const t = await gw.mint('agent', 'counter@test');
    const h = { authorization: `Bearer ${t}` };
    for (let i = 0; i < 3; i++) await send(gw.port, 'GET', '/http/api/v1/c', h);
    const mine = gw.events.filter((e) => e.session?.identity.subject === 'counter@test');
    assert.equal(mine.filter((e) => e.type === 'session.start').length, 1);
    assert.equal(mine.filter((e) => e.type === 'command').length, 3);
    assert.equal(mine.filter((e) => e.type === 'command.result').length, 3);
  });

  test('fails closed when the audit log is down: nothing is forwarded', async () => {
    const before = up.requests.length;
    gw.auditDown = true;
    try {
      const r = await send(gw.port, 'GET', '/http/api/v1/orders/1', auth);
      assert.equal(r.status, 503);
      assert.equal((r.json() as { title: string }).title, 'SLUICE_AUDIT_UNAVAILABLE');
    } finally {
      gw.auditDown = false;
    }
    assert.equal(up.requests.length, before);
  });
});

describe('HTTP connector: upstream TLS and credentials', () => {
  const certs = makeCertificates();
  let up: Upstream;
  after(async () => {
    await up?.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test('verifies the upstream against the configured CA and presents the client certificate', async () => {
    up = await startUpstream(
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ client: peer.subject?.CN ?? null }));
      },
      (h) => createHttpsServer({ cert: certs.cert, key: certs.key, ca: certs.ca, requestCert: true, rejectUnauthorized: true }, h),
    );
    const yaml = (extra: string, name: string): string => `
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - name: ${name}
    type: http
    upstream: { url: ${up.url}, ${extra} }
policies:
  - { role: agent, connection: ${name}, rules: [ { allow: '*' } ] }
`;
    const noCa = await startGateway(yaml(`auth: { clientCert: { cert: ${certs.clientCert}, key: ${certs.clientKey} } }`, 'tls'));
    try {
      const r = await send(noCa.port, 'GET', '/http/tls/x', { authorization: `Bearer ${await noCa.mint('agent')}` });
      assert.equal(r.status, 502);
      assert.match(r.text, /TLS verification failed/);
    } finally {
      await noCa.close();
    }
    const withCa = await startGateway(yaml(`ca: ${certs.caPath}, auth: { clientCert: { cert: ${certs.clientCert}, key: ${certs.clientKey} } }`, 'tls'));
    try {
      const r = await send(withCa.port, 'GET', '/http/tls/x', { authorization: `Bearer ${await withCa.mint('agent')}` });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json(), { client: 'sluice-upstream-client' });
    } finally {
      await withCa.close();
    }
  });

  test('injects basic and header credentials, from secret references, and scrubs them', async () => {
    const plain = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`auth=${String(req.headers.authorization)} key=${String(req.headers['x-api-key'])}`);
    });
    process.env.SLUICE_TEST_BASIC_PW = 'Basic-Password-42';
    const gw = await startGateway(
      `
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: basic, type: http, upstream: { url: ${plain.url}, auth: { basic: { user: svc, password: env:SLUICE_TEST_BASIC_PW } } } }
  - { name: keyed, type: http, pathPrefix: /keyed, upstream: { url: ${plain.url}, auth: { header: { name: X-Api-Key, value: file:\${DIR}/key } } } }
policies:
  - { role: agent, connection: '*', rules: [ { allow: '*' } ] }
`,
      { files: { key: 'header-Key-Value-99\n' } },
    );
    try {
      const h = { authorization: `Bearer ${await gw.mint('agent')}`, 'x-api-key': 'agent-supplied' };
      const b = await send(gw.port, 'GET', '/http/basic/x', h);
      assert.equal(plain.requests.at(-1)?.headers.authorization, `Basic ${Buffer.from('svc:Basic-Password-42').toString('base64')}`);
      assert.ok(!b.text.includes(Buffer.from('svc:Basic-Password-42').toString('base64')), b.text);
      const k = await send(gw.port, 'GET', '/keyed/x', h);
      assert.equal(plain.requests.at(-1)?.headers['x-api-key'], 'header-Key-Value-99');
      assert.ok(!k.text.includes('header-Key-Value-99'), k.text);
      assert.ok(!JSON.stringify(gw.events).includes('header-Key-Value-99'));
      assert.ok(!JSON.stringify(gw.events).includes('Basic-Password-42'));
    } finally {
      await gw.close();
      await plain.close();
      delete process.env.SLUICE_TEST_BASIC_PW;
    }
  });

  test('routes by Host header', async () => {
    const plain = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url }));
    });
    const gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: byhost, type: http, host: api.internal.test, upstream: { url: ${plain.url} } }
policies:
  - { role: agent, connection: byhost, rules: [ { allow: [get] } ] }
`);
    try {
      const h = { authorization: `Bearer ${await gw.mint('agent')}` };
      const r = await send(gw.port, 'GET', '/v1/things', { ...h, host: 'api.internal.test:8080' });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json(), { url: '/v1/things' });
      assert.equal((await send(gw.port, 'GET', '/v1/things', { ...h, host: 'other.test' })).status, 404);
    } finally {
      await gw.close();
      await plain.close();
    }
  });
});
