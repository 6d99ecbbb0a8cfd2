/**
 * `sluice policy check` run in-process through run(args, io) against a temporary config.
 * (Lives here rather than under test/cli/ because this piece owns test/policy/ only.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { EXIT_DENY, EXIT_REVIEW, run } from '../../src/cli/commands/policy.js';
import type { CliIo } from '../../src/cli/io.js';

const CONFIG = `
identity:
  issuers:
    - local: true
  roles:
    - name: ci-readonly
    - name: deployer
connections:
  - name: appdb
    type: postgres
    upstream: { host: 127.0.0.1, port: 5432, database: app, user: app_ro, password: env:APPDB_PASSWORD_NOT_SET }
policies:
  - role: ci-readonly
    connection: appdb
    rules:
      - allow: [select]
      - review: [insert, update, delete]
        approval: { approvers: [dba] }
      - deny: [ddl, dcl, copy, call]
  - role: deployer
    connection: appdb
    rules:
      - name: main-only
        allow: [select, insert, update, delete, ddl]
        when: identity.claims.ref == "refs/heads/main" && identity.subject == "deploy-bot"
`;

let dir: string;
let configPath: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-policy-cli-'));
  configPath = join(dir, 'sluice.yaml');
  writeFileSync(configPath, CONFIG);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  json: () => Record<string, unknown>;
}

async function cli(args: string[], stdin = '', env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  const io: CliIo = { stdout, stderr, stdin: Readable.from([stdin]), env };
  const code = await run(args, io);
  const text = out.join('');
  return { code, stdout: text, stderr: err.join(''), json: () => JSON.parse(text) as Record<string, unknown> };
}

const check = (role: string, sql: string, ...extra: string[]): Promise<Result> =>
  cli(['check', '--config', configPath, '--role', role, '--connection', 'appdb', '--sql', sql, ...extra]);

describe('sluice policy check', () => {
  test('allow prints the decision and facts and exits 0 (upstream secret need not be set)', async () => {
    const r = await check('ci-readonly', 'SELECT abalance FROM pgbench_accounts WHERE aid = 1');
    assert.equal(r.code, 0, r.stderr);
    const j = r.json();
    assert.equal(j.effect, 'allow');
    assert.equal(j.rule, 'ci-readonly/appdb#0');
    assert.equal(j.readOnly, false);
    assert.match(String(j.policyVersion), /^sha256:/);
    const facts = j.facts as Record<string, unknown>;
    assert.equal(facts.kind, 'select');
    assert.deepEqual(facts.tablesRead, ['pgbench_accounts']);
    assert.deepEqual(facts.verbs, ['select']);
  });

  test('deny exits 3 with the reason', async () => {
    const r = await check('ci-readonly', 'DROP TABLE users');
    assert.equal(r.code, EXIT_DENY);
    assert.equal(EXIT_DENY, 3);
    const j = r.json();
    assert.equal(j.effect, 'deny');
    assert.equal(j.rule, 'ci-readonly/appdb#2');
    assert.match(String(j.reason), /ddl/);
  });

  test('review exits 4 and shows the approval settings', async () => {
    const r = await check('ci-readonly', 'DELETE FROM t WHERE id = 1');
    assert.equal(r.code, EXIT_REVIEW);
    assert.equal(EXIT_REVIEW, 4);
    assert.deepEqual(r.json().approval, { approvers: ['dba'] });
  });

  test("applies the connection's masking as the gateway does: computing on a masked column is denied (masked-column-use)", async () => {
    const r = await check('ci-readonly', "SELECT id FROM customers WHERE password LIKE 'h%'");
    assert.equal(r.code, EXIT_DENY);
    assert.deepEqual([r.json().effect, r.json().rule], ['deny', 'masked-column-use']);
    assert.match(String(r.json().reason), /column "password" is masked/);
    const multi = await check('ci-readonly', 'SELECT 1; SELECT upper(api_key) FROM customers');
    assert.equal(multi.code, EXIT_DENY);
    assert.match(String(multi.json().reason), /^statement 2 of 2: column "api_key" is masked/);
    assert.deepEqual((multi.json().statements as { rule: string }[]).map((s) => s.rule), ['ci-readonly/appdb#0', 'masked-column-use']);
    // The plain column stays allowed: the gateway masks it in the result.
    assert.equal((await check('ci-readonly', 'SELECT password FROM customers')).code, 0);
  });

  test("uses the connection's own column rules; a hash key that is not set does not stop the check", async () => {
    const masked = join(dir, 'masked.yaml');
    writeFileSync(
      masked,
      CONFIG.replace(
        'password: env:APPDB_PASSWORD_NOT_SET }',
        'password: env:APPDB_PASSWORD_NOT_SET }\n    mask: { columns: { "*.email": hash }, hashKey: env:MASK_KEY_NOT_SET }',
      ),
    );
    const r = await cli(['check', '--config', masked, '--role', 'ci-readonly', '--connection', 'appdb', '--sql', 'SELECT lower(email) FROM customers']);
    assert.equal(r.code, EXIT_DENY, r.stderr);
    assert.match(String(r.json().reason), /column "email" is masked/);
  });

  test('a hidden write under a read is not allowed', async () => {
    const r = await check('ci-readonly', "SELECT nextval('s')");
    assert.equal(r.code, EXIT_DENY);
    assert.equal(r.json().rule, 'default-deny');
  });

  test('multi-statement text: facts array, per-statement decisions, overall deny', async () => {
    const r = await check('ci-readonly', 'SELECT 1; DROP TABLE x');
    assert.equal(r.code, EXIT_DENY);
    const j = r.json();
    assert.ok(Array.isArray(j.facts));
    assert.deepEqual(
      (j.statements as Array<Record<string, unknown>>).map((s) => [s.text, s.effect]),
      [
        ['SELECT 1', 'allow'],
        ['DROP TABLE x', 'deny'],
      ],
    );
  });

  test('unparseable SQL is denied with the parser error', async () => {
    const r = await check('ci-readonly', 'SELEC 1');
    assert.equal(r.code, EXIT_DENY);
    const j = r.json();
    assert.equal(j.rule, 'sql-unparseable');
    assert.match(String(j.error), /syntax error/);
  });

  test('--subject and --claims feed CEL conditions', async () => {
    const denied = await check('deployer', 'UPDATE t SET x = 1 WHERE id = 2');
    assert.equal(denied.code, EXIT_DENY);
    const allowed = await check('deployer', 'UPDATE t SET x = 1 WHERE id = 2', '--subject', 'deploy-bot', '--claims', '{"ref":"refs/heads/main"}');
    assert.equal(allowed.code, 0, allowed.stdout);
    assert.equal(allowed.json().rule, 'main-only');
  });

  test('--sql - reads the SQL from stdin', async () => {
    const r = await cli(['check', '--config', configPath, '--role', 'ci-readonly', '--connection', 'appdb', '--sql', '-'], 'SELECT 1');
    assert.equal(r.code, 0, r.stderr);
  });

  test('usage errors exit 2', async () => {
    assert.equal((await cli(['check', '--config', configPath, '--role', 'ci-readonly', '--connection', 'appdb'])).code, 2);
    assert.equal((await cli(['check', '--bogus'])).code, 2);
    assert.equal((await check('ci-readonly', 'SELECT 1', '--claims', '[1]')).code, 2);
    assert.equal((await cli(['frobnicate'])).code, 2);
    assert.equal((await cli([])).code, 2);
  });

  test('--help documents the exit codes and vocabulary', async () => {
    const r = await cli(['check', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /0 allow, 3 deny, 4 review, 2 usage error/);
    assert.match(r.stdout, /side-effect/);
  });

  test('an unknown role or connection, or a missing config, is an error (exit 1)', async () => {
    const role = await check('nobody', 'SELECT 1');
    assert.equal(role.code, 1);
    assert.match(role.stderr, /SLUICE_ROLE_NOT_GRANTED/);
    const conn = await cli(['check', '--config', configPath, '--role', 'ci-readonly', '--connection', 'nope', '--sql', 'SELECT 1']);
    assert.equal(conn.code, 1);
    assert.match(conn.stderr, /SLUICE_CONNECTION_UNKNOWN/);
    const missing = await cli(['check', '--config', join(dir, 'missing.yaml'), '--role', 'r', '--connection', 'c', '--sql', 'SELECT 1']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /SLUICE_CONFIG_INVALID/);
  });

  test('a bad rule in the config is reported as a config error', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, CONFIG.replace('deny: [ddl, dcl, copy, call]', 'deny: [ddl, dlc]'));
    const r = await cli(['check', '--config', bad, '--role', 'ci-readonly', '--connection', 'appdb', '--sql', 'SELECT 1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /SLUICE_CONFIG_INVALID: policies\[0\]\.rules\[2\]\.deny\[1\]: unknown SQL kind "dlc"/);
  });
});

describe('sluice policy check --request (HTTP and Kubernetes connections)', () => {
  const REQUEST_CONFIG = `
identity:
  issuers: [ { local: true } ]
  roles: [ { name: agent }, { name: viewer }, { name: deployer } ]
connections:
  - name: orders-api
    type: http
    upstream: { url: "http://127.0.0.1:9", auth: { bearer: env:ORDERS_TOKEN_NOT_SET } }
  - name: prod
    type: kubernetes
    upstream: { url: "https://127.0.0.1:6443" }
policies:
  - role: agent
    connection: orders-api
    rules:
      - deny: [post]
        paths: ['/mcp']
        when: http.json.method == "tools/call" && http.json.params.name == "refund_all"
      - deny: [delete]
        paths: ['/v1/orders/**']
      - review: [post]
        paths: ['/v1/orders/:id/refund']
        approval: { approvers: [oncall] }
      - allow: [get]
        paths: ['/v1/reports/**']
        when: http.headers["x-team"] == "payments"
      - allow: [read]
        paths: ['/v1/orders/**']
  - role: viewer
    connection: prod
    rules:
      - allow: [get]
        when: k8s.resource == "secrets" && k8s.name == "app-tls"
        reveal: true
      - allow: [read]
  - role: deployer
    connection: prod
    rules:
      - deny: [create, patch]
        when: k8s.object.spec.hostNetwork == true
      - allow: '*'
`;
  let reqConfig: string;
  before(() => {
    reqConfig = join(dir, 'requests.yaml');
    writeFileSync(reqConfig, REQUEST_CONFIG);
  });
  const req = (role: string, connection: string, request: string, ...extra: string[]): Promise<Result> =>
    cli(['check', '--config', reqConfig, '--role', role, '--connection', connection, '--request', request, ...extra]);

  test('HTTP: decides on method, path, query and headers as the connector does, and prints the facts', async () => {
    const get = await req('agent', 'orders-api', 'GET /v1/orders/42?expand=items&expand=payments');
    assert.equal(get.code, 0, get.stderr);
    const j = get.json();
    assert.deepEqual([j.effect, j.rule, j.request], ['allow', 'agent/orders-api#4', 'GET /v1/orders/42?expand=items&expand=payments']);
    const facts = j.facts as { method: string; path: string; query: Record<string, string>; queryAll: Record<string, string[]> };
    assert.deepEqual([facts.method, facts.path, facts.query.expand, facts.queryAll.expand], ['GET', '/v1/orders/42', 'items', ['items', 'payments']]);
    assert.equal((await req('agent', 'orders-api', 'delete /v1/orders/42')).code, EXIT_DENY);
    const refund = await req('agent', 'orders-api', 'POST /v1/orders/42/refund');
    assert.equal(refund.code, EXIT_REVIEW);
    assert.deepEqual(refund.json().approval, { approvers: ['oncall'] });
    // A header condition: only with the header does the rule match; credentials never become facts.
    assert.equal((await req('agent', 'orders-api', 'GET /v1/reports/daily')).code, EXIT_DENY);
    const withHeader = await req('agent', 'orders-api', 'GET /v1/reports/daily', '--header', 'X-Team: payments', '--header', 'Authorization: Bearer secret-token');
    assert.equal(withHeader.code, 0, withHeader.stdout);
    assert.ok(!withHeader.stdout.includes('secret-token'));
  });

  test('HTTP: --body is read as http.json, a JSON-RPC batch call by call, and an ambiguous body is refused', async () => {
    const mcp = (body: string): Promise<Result> => req('agent', 'orders-api', 'POST /mcp', '--body', body);
    const call = (name: string): string => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } });
    const denied = await mcp(call('refund_all'));
    assert.equal(denied.code, EXIT_DENY, denied.stdout);
    assert.equal((denied.json().facts as { json: { params: { name: string } } }).json.params.name, 'refund_all');
    assert.equal((await mcp(`[${call('list_orders')},${call('refund_all')}]`)).code, EXIT_DENY);
    const dup = await mcp('{"method":"tools/call","params":{"name":"refund_all","name":"list_orders"}}');
    assert.deepEqual([dup.code, dup.json().rule], [EXIT_DENY, 'request-body-unreadable']);
    assert.match(String(dup.json().reason), /repeats a key/);
    // No rule allows POST /mcp otherwise: the default deny, not the tool rule, decides.
    assert.equal((await mcp(call('list_orders'))).json().rule, 'default-deny');
    assert.equal((await cli(['check', '--config', reqConfig, '--role', 'agent', '--connection', 'orders-api', '--sql', 'SELECT 1', '--body', '{}'])).code, 2, '--body goes with --request');
  });

  test('Kubernetes: --body is read as k8s.object, JSON or server-side-apply YAML', async () => {
    const pod = (hostNetwork: boolean): string => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { hostNetwork, containers: [{ name: 'a', image: 'x' }] } });
    assert.equal((await req('deployer', 'prod', 'POST /api/v1/namespaces/default/pods', '--body', pod(true))).code, EXIT_DENY);
    assert.equal((await req('deployer', 'prod', 'POST /api/v1/namespaces/default/pods', '--body', pod(false))).code, 0);
    const ssa = await req('deployer', 'prod', 'PATCH /api/v1/namespaces/default/pods/p?fieldManager=me', '--header', 'Content-Type: application/apply-patch+yaml', '--body', 'spec:\n  hostNetwork: on\n');
    assert.equal(ssa.code, EXIT_DENY, ssa.stdout);
    assert.equal((ssa.json().facts as { patchType: string }).patchType, 'apply');
    const proto = await req('deployer', 'prod', 'POST /api/v1/namespaces/default/pods', '--header', 'Content-Type: application/vnd.kubernetes.protobuf', '--body', 'k8s');
    assert.deepEqual([proto.code, proto.json().rule], [EXIT_DENY, 'request-body-unreadable']);
  });

  test('HTTP: a path an upstream could read differently is refused, as the gateway refuses it', async () => {
    const r = await req('agent', 'orders-api', 'GET /v1/orders/../admin');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /"\." or "\.\." segment/);
  });

  test('Kubernetes: the attributes the API server derives, exec needing create, and reveal', async () => {
    const list = await req('viewer', 'prod', 'GET /api/v1/namespaces/default/pods?watch=1');
    assert.equal(list.code, 0, list.stderr);
    const facts = list.json().facts as { verb: string; resource: string; namespace: string };
    assert.deepEqual([facts.verb, facts.resource, facts.namespace], ['watch', 'pods', 'default']);
    const exec = await req('viewer', 'prod', 'GET /api/v1/namespaces/default/pods/web-0/exec?command=sh');
    assert.equal(exec.code, EXIT_DENY);
    assert.deepEqual((exec.json().facts as { verbs: string[] }).verbs, ['get', 'create']);
    const secret = await req('viewer', 'prod', 'GET /api/v1/namespaces/default/secrets/app-tls');
    assert.deepEqual([secret.code, secret.json().reveal], [0, true]);
    const other = await req('viewer', 'prod', 'GET /api/v1/namespaces/default/secrets/db');
    assert.deepEqual([other.code, other.json().reveal], [0, false]);
  });

  test('--sql and --request each belong to their kind of connection', async () => {
    assert.equal((await cli(['check', '--config', reqConfig, '--role', 'agent', '--connection', 'orders-api', '--sql', 'SELECT 1'])).code, 2);
    assert.equal((await check('ci-readonly', 'SELECT 1', '--request', 'GET /x')).code, 2);
    const pgRequest = await cli(['check', '--config', configPath, '--role', 'ci-readonly', '--connection', 'appdb', '--request', 'GET /x']);
    assert.equal(pgRequest.code, 2);
    assert.match(pgRequest.stderr, /postgres connection: check SQL with --sql/);
    assert.equal((await req('agent', 'orders-api', 'GET')).code, 2);
    assert.equal((await req('agent', 'orders-api', 'GET /v1/orders', '--header', 'no-colon')).code, 2);
  });
});
