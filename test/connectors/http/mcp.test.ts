/**
 * A real MCP client and server (the official TypeScript SDK, Streamable HTTP transport) through
 * the HTTP connector: the agent's client reaches the server with its OIDC token, a tool call the
 * policy names is denied, and tool results come back masked. The SDK's server answers each call
 * as server-sent events with the tool's JSON result inside a `text` string, so the field rule on
 * `salary` applies through three layers: the event stream, the JSON-RPC message and the JSON text.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { startGateway, type TestGateway } from './harness.js';

const UPSTREAM_TOKEN = 'mcp-upstream-token-0123456789';

/** A stateless MCP server with a lookup tool and a destructive one; it records the headers it saw. */
async function startMcpServer(): Promise<{ url: string; seen: IncomingHttpHeaders[]; deleted: string[]; close(): Promise<void> }> {
  const seen: IncomingHttpHeaders[] = [];
  const deleted: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    const mcp = new McpServer({ name: 'crm', version: '1.0.0' });
    mcp.registerTool('find_customer', { description: 'Look a customer up by name', inputSchema: { name: z.string() } }, ({ name }) => ({
      content: [{ type: 'text', text: JSON.stringify({ name, email: 'ada@example.com', salary: 185000, ssn: '123-45-6789', note: 'prefers email' }) }],
    }));
    mcp.registerTool('delete_customer', { description: 'Delete a customer', inputSchema: { name: z.string() } }, ({ name }) => {
      deleted.push(name);
      return { content: [{ type: 'text', text: `deleted ${name}` }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    deleted,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('HTTP connector: an MCP client and server (official SDK, Streamable HTTP)', () => {
  let mcp: Awaited<ReturnType<typeof startMcpServer>>;
  let gw: TestGateway;
  let client: Client;

  before(async () => {
    mcp = await startMcpServer();
    gw = await startGateway(`
listen: { http: 127.0.0.1:0 }
dataDir: \${DIR}/data
identity:
  issuers: [ { local: true } ]
  roles: [ { name: agent } ]
connections:
  - name: crm
    type: http
    upstream: { url: ${mcp.url}, auth: { bearer: "${UPSTREAM_TOKEN}" } }
    mask: { columns: { salary: redact } }
policies:
  - role: agent
    connection: crm
    rules:
      - deny: [post]
        paths: ['/mcp']
        when: http.json.method == "tools/call" && http.json.params.name == "delete_customer"
        name: no-deletes
      - allow: [read, post, delete]
        paths: ['/mcp']
`);
    const token = await gw.mint('agent', 'coding-agent@ci');
    client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/http/crm/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  });
  after(async () => {
    await client?.close();
    await gw?.close();
    await mcp?.close();
  });

  test('the client lists and calls tools through Sluice with its own token; the server sees only the injected one', async () => {
    const tools = await client.listTools();
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['delete_customer', 'find_customer']);
    for (const h of mcp.seen) assert.equal(h.authorization, `Bearer ${UPSTREAM_TOKEN}`);
    assert.ok(gw.events.some((e) => e.type === 'command' && e.command?.text === 'POST /mcp (jsonrpc: tools/list)'));
  });

  test('a tool result is masked inside its text: the field rule, the detectors', async () => {
    const r = await client.callTool({ name: 'find_customer', arguments: { name: 'Ada' } });
    const content = r.content as { type: string; text: string }[];
    const got = JSON.parse(content[0]?.text ?? '') as Record<string, unknown>;
    assert.deepEqual(got, { name: 'Ada', email: 'a***@example.com', salary: '[REDACTED]', ssn: '***-**-6789', note: 'prefers email' });
    const result = gw.events.find((e) => e.type === 'command.result' && e.command?.text === 'POST /mcp (jsonrpc: tools/call find_customer)');
    assert.ok(result !== undefined);
    assert.ok(!JSON.stringify(gw.events).includes('185000'));
  });

  test('a tool call the policy denies fails in the client and never reaches the server', async () => {
    await assert.rejects(client.callTool({ name: 'delete_customer', arguments: { name: 'Ada' } }), /403|SLUICE_POLICY_DENIED|no-deletes/);
    assert.deepEqual(mcp.deleted, []);
    const denied = gw.events.find((e) => e.type === 'command' && e.outcome === 'denied');
    assert.equal(denied?.command?.text, 'POST /mcp (jsonrpc: tools/call delete_customer)');
    assert.equal(denied?.decision?.rule, 'no-deletes');
    // The session goes on.
    const again = await client.callTool({ name: 'find_customer', arguments: { name: 'Grace' } });
    assert.match((again.content as { text: string }[])[0]?.text ?? '', /"name":"Grace"/);
  });
});
