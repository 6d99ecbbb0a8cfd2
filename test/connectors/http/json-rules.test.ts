/**
 * Rules over the JSON request body (`http.json`): an MCP server or any JSON-RPC API behind the HTTP
 * connector, decided per call. A real node:http upstream records what reached it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from './harness.js';
import { send, startUpstream, type Upstream } from './client.js';

const call = (id: number, name: string, args: Record<string, unknown> = {}): Record<string, unknown> => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('HTTP rules over the JSON request body (http.json)', () => {
  let up: Upstream;
  let gw: TestGateway;
  let auth: Record<string, string>;

  before(async () => {
    up = await startUpstream((_req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { echoed: body.length } }));
    });
    gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity: { issuers: [ { local: true } ], roles: [ { name: agent } ] }
connections:
  - { name: mcp, type: http, upstream: { url: ${up.url} }, maxRequestBytes: 4096 }
  - { name: plain, type: http, upstream: { url: ${up.url} }, maxRequestBytes: 4096 }
policies:
  - role: agent
    connection: mcp
    rules:
      - deny: [post]
        paths: ['/mcp']
        when: http.json.method == "tools/call" && http.json.params.name in ["delete_file", "drop_database"]
        name: no-destructive-tools
      - allow: '*'
  - { role: agent, connection: plain, rules: [ { allow: '*' } ] }
`);
    auth = { authorization: `Bearer ${await gw.mint('agent')}`, 'content-type': 'application/json' };
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = auth): ReturnType<typeof send> => send(gw.port, 'POST', path, headers, typeof body === 'string' ? body : JSON.stringify(body));

  test('a call the rules allow is forwarded byte for byte; one they deny never reaches the upstream', async () => {
    const before = up.requests.length;
    const ok = await post('/http/mcp/mcp', call(1, 'read_file', { path: 'README.md' }));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(up.requests.at(-1)?.body.toString(), JSON.stringify(call(1, 'read_file', { path: 'README.md' })));
    const denied = await post('/http/mcp/mcp', call(2, 'delete_file', { path: '/etc' }));
    assert.equal(denied.status, 403, denied.text);
    assert.match(denied.text, /no-destructive-tools/);
    assert.equal(up.requests.length, before + 1, 'the denied call was not forwarded');
    // The audit record and a reviewer see which call it was.
    const record = gw.events.filter((e) => e.type === 'command').at(-1);
    assert.equal(record?.command?.text, 'POST /mcp (jsonrpc: tools/call delete_file)');
    assert.equal(record?.outcome, 'denied');
  });

  test('every call of a JSON-RPC batch is decided; whatever the Content-Type says, a JSON body is read', async () => {
    const before = up.requests.length;
    const batch = await post('/http/mcp/mcp', [call(3, 'read_file'), call(4, 'drop_database')]);
    assert.equal(batch.status, 403, batch.text);
    const typed = await post('/http/mcp/mcp', call(5, 'delete_file'), { ...auth, 'content-type': 'text/plain' });
    assert.equal(typed.status, 403, 'a server that ignores Content-Type would still run it');
    const spaced = await post('/http/mcp/mcp', `\ufeff \n ${JSON.stringify(call(6, 'delete_file'))}`);
    assert.equal(spaced.status, 403, 'a byte-order mark and whitespace do not hide it');
    assert.equal(up.requests.length, before);
    const fine = await post('/http/mcp/mcp', [call(7, 'read_file'), call(8, 'list_files')]);
    assert.equal(fine.status, 200, fine.text);
  });

  test('a body parsers would read differently is refused: a repeated key, broken JSON, not UTF-8', async () => {
    const before = up.requests.length;
    // JSON.parse keeps the last "name"; a parser that keeps the first would run delete_file.
    const dup = await post('/http/mcp/mcp', '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"delete_file","name":"read_file"}}');
    assert.equal(dup.status, 400, dup.text);
    assert.match(dup.text, /repeats a key/);
    const broken = await post('/http/mcp/mcp', '{"method":"tools/call","params":{"name":"delete_file"}');
    assert.equal(broken.status, 400);
    const latin1 = await send(gw.port, 'POST', '/http/mcp/mcp', auth, Buffer.concat([Buffer.from('{"method":"tools/call","params":{"name":"x'), Buffer.from([0xe9]), Buffer.from('"}}')]));
    assert.equal(latin1.status, 400);
    assert.equal(up.requests.length, before, 'none was forwarded');
    const refused = gw.events.filter((e) => e.type === 'command').slice(-3);
    assert.deepEqual(refused.map((e) => e.outcome), ['failure', 'failure', 'failure'], 'each refusal is recorded');
  });

  test('bodies that are not JSON, and requests without one, are decided without http.json', async () => {
    const text = await post('/http/mcp/upload', 'plain text, not JSON', { ...auth, 'content-type': 'text/plain' });
    assert.equal(text.status, 200, text.text);
    const get = await send(gw.port, 'GET', '/http/mcp/mcp', { authorization: auth.authorization! });
    assert.equal(get.status, 200);
  });

  test('a connection whose rules do not read the body streams it unread', async () => {
    const dup = await post('/http/plain/mcp', '{"name":"a","name":"b"}');
    assert.equal(dup.status, 200, dup.text);
    assert.equal(up.requests.at(-1)?.body.toString(), '{"name":"a","name":"b"}');
  });
});
