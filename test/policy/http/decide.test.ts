import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicyEngine } from '../../../src/policy/index.js';
import { compilePathPattern, httpAction, httpFacts, parseRequestTarget } from '../../../src/policy/http/index.js';
import type { Identity } from '../../../src/pipeline/types.js';
import type { RawConfig } from '../../../src/config/index.js';

const ID: Identity = { issuer: 'sluice:local', subject: 'agent', claims: { repository: 'acme/app' }, roles: ['ci'], expiresAt: 0 };
const connections = [{ name: 'api', type: 'http', upstream: { url: 'https://api.example' } }] as unknown as NonNullable<Parameters<typeof createPolicyEngine>[0]['connections']>;

function engine(rules: RawConfig['policies'][number]['rules']) {
  return createPolicyEngine({ policies: [{ role: 'ci', connection: 'api', rules }], connections });
}
function act(method: string, target: string, headers: Record<string, string> = {}) {
  const t = parseRequestTarget(target);
  return httpAction('api', httpFacts(method, t, headers), t.rawQuery);
}

describe('path patterns', () => {
  test('glob and route segments', () => {
    const p = compilePathPattern('/v1/orders/*', 'x');
    assert.ok(p.test('/v1/orders/42'));
    assert.ok(!p.test('/v1/orders/42/items'));
    assert.ok(!p.test('/v1/ordersX/42'));
    const r = compilePathPattern('/v1/users/:id/keys/{key}', 'x');
    assert.ok(r.test('/v1/users/7/keys/abc'));
    assert.ok(!r.test('/v1/users//keys/abc'));
    const d = compilePathPattern('/v1/**', 'x');
    assert.ok(d.test('/v1') && d.test('/v1/a/b/c') && !d.test('/v2/a'));
    const m = compilePathPattern('/a/**/z', 'x');
    assert.ok(m.test('/a/z') && m.test('/a/b/c/z') && !m.test('/a/b/c'));
    assert.ok(compilePathPattern('/files/*.json', 'x').test('/files/a.json'));
    assert.ok(!compilePathPattern('/admin', 'x').test('/Admin'));
    assert.ok(compilePathPattern('/admin', 'x').testFolded('/Admin'));
    assert.throws(() => compilePathPattern('v1', 'x'), /must start with/);
  });

  test('request targets that upstreams resolve differently are refused', () => {
    for (const t of ['/a/../b', '/a/./b', '/a/%2e%2E/b', '/a%2fb', '/a%5Cb', '/a//b', '/a\\b', '/a%00b', '/%zz', '/admin;x/b', '/allowed/..;/admin', '/a%3Bb', '/a%09b', '/a/%EF%BC%8E%EF%BC%8E/b', '/a%EF%BC%8Fb']) assert.throws(() => parseRequestTarget(t), /request path/, t);
    assert.equal(parseRequestTarget('/v1/%61dmin?x=1&x=2&y').path, '/v1/admin');
    // Encoded twice: an upstream that decodes again would see a dot segment or a separator.
    for (const t of ['/a/%252e%252e/admin', '/a/%252E/b', '/a%252fadmin', '/a%255cb', '/admin%253bx', '/a%2500b']) assert.throws(() => parseRequestTarget(t), /request path/, t);
    // A literal percent sign stays usable.
    assert.equal(parseRequestTarget('/v1/100%25').path, '/v1/100%');
    assert.equal(parseRequestTarget('/v1/50%25off').path, '/v1/50%off');
    assert.deepEqual({ ...parseRequestTarget('/v1?x=1&x=2&y').query }, { x: ['1', '2'], y: [''] });
  });
});

describe('policy over HTTP requests', () => {
  test('method lists, aliases and path scopes; first match wins; default deny', () => {
    const e = engine([{ deny: ['delete'], paths: ['/v1/orders/**'] }, { allow: ['read'], paths: ['/v1/**'] }, { review: ['post', 'put'], paths: ['/v1/orders/:id'] }]);
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/orders/1')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('OPTIONS', '/v1/orders/1')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('DELETE', '/v1/orders/1')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('PUT', '/v1/orders/1')).effect, 'review');
    assert.equal(e.decide(ID, 'ci', act('PUT', '/v1/orders/1/items')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v2/x')).rule, 'default-deny');
    // A deny on a path matches any case; an allow only the exact case.
    assert.equal(e.decide(ID, 'ci', act('DELETE', '/V1/ORDERS/1')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('GET', '/V1/orders/1')).effect, 'deny');
  });

  test('a deny covers the spellings upstream frameworks route to the same handler; an allow does not widen', () => {
    const e = engine([{ deny: '*', paths: ['/v1/admin', '/v1/keys/'] }, { allow: '*', paths: ['/v1/**'] }] as never);
    const denied = [
      '/v1/admin',
      '/v1/admin/', // Express, Flask, Spring: strict routing off
      '/v1/ADMIN/',
      '/v1/admin.json', // Rails (.:format), Spring MVC suffix match
      '/v1/admin.JSON/',
      '/v1/admin.', // IIS drops trailing dots and spaces
      '/v1/admin%20',
      '/v1/admin.%20.',
      '/v1/%2561dmin', // decoded again by the upstream
      '/v1/%2561dmin.xml',
      '/v1/keys', // the deny was written with a trailing slash
      '/v1/keys/',
    ];
    for (const t of denied) assert.equal(e.decide(ID, 'ci', act('GET', t)).effect, 'deny', t);
    for (const t of ['/v1/admins', '/v1/admin/x', '/v1/administrator.json', '/v1/x.admin', '/v1/keys/1']) assert.equal(e.decide(ID, 'ci', act('GET', t)).effect, 'allow', t);
    // An allow matches only what it names: its spellings fall to the default deny.
    const narrow = engine([{ allow: ['get'], paths: ['/v1/reports'] }] as never);
    assert.equal(narrow.decide(ID, 'ci', act('GET', '/v1/reports')).effect, 'allow');
    for (const t of ['/v1/reports/', '/v1/reports.json', '/v1/Reports', '/v1/reports.']) assert.equal(narrow.decide(ID, 'ci', act('GET', t)).rule, 'default-deny', t);
  });

  test('CEL over http.method, http.path, http.query and selected headers (never the token)', () => {
    const e = engine([
      { allow: ['get'], when: 'http.query.limit == "10" && http.headers["x-team"] == "payments" && identity.claims.repository == "acme/app"' },
      { allow: ['post'], when: 'http.path.startsWith("/v1/search") && http.method == "POST"' },
      { allow: '*', when: 'has(http.headers.authorization)' },
    ]);
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10', { 'x-team': 'payments' })).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=11', { 'x-team': 'payments' })).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('POST', '/v1/search/q')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('DELETE', '/v1/x', { authorization: 'Bearer t' })).effect, 'deny');
  });

  test('a repeated query parameter: an allow must hold for every reading upstreams make of it, a deny for any', () => {
    const e = engine([
      { deny: '*', when: 'http.query.force == "true"' },
      { allow: ['get'], when: 'http.query.limit == "10"' },
      { allow: ['post'], when: 'http.query.dryRun == "true"' },
    ] as never);
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10&limit=10')).effect, 'allow', 'the same value twice is one reading');
    // PHP and Rails read the last value, ASP.NET "10,100000": not what the allow was written for.
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10&limit=100000')).rule, 'default-deny');
    assert.equal(e.decide(ID, 'ci', act('POST', '/v1/x?dryRun=true&dryRun=false')).rule, 'default-deny');
    // A deny on force=true catches it in whichever position an upstream reads.
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10&force=false&force=true')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10&force=true&force=false')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10&force=false')).effect, 'allow');
    // Rack 2 and old Python split on ";" too: force=true is there for them.
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10;force=true')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10&note=a;force=true')).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', act('GET', '/v1/x?limit=10;limit=99')).rule, 'default-deny');
  });

  test('unknown methods in an HTTP policy are config errors; SQL behaviour is unchanged', () => {
    assert.throws(() => engine([{ allow: ['select'] }]), /unknown HTTP method "select"/);
    assert.throws(() => engine([{ allow: ['get'], paths: [] }]), /at least one path/);
  });
});

describe('method overrides', () => {
  test('a request is decided as its method and every method an override names', () => {
    const e = engine([{ deny: ['DELETE'] }, { review: ['PATCH'] }, { allow: ['GET', 'POST'] }] as never);
    const override = (method: string, target: string, headers: Record<string, string> = {}, form: string[] = []) => {
      const t = parseRequestTarget(target);
      return httpAction('api', httpFacts(method, t, headers, form), t.rawQuery);
    };
    assert.equal(e.decide(ID, 'ci', override('POST', '/x')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', override('POST', '/x', { 'x-http-method-override': 'DELETE' })).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', override('POST', '/x', { 'x-http-method': 'patch' })).effect, 'review');
    assert.equal(e.decide(ID, 'ci', override('POST', '/x', { 'x-method-override': 'GET, DELETE' })).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', override('POST', '/x?_method=PUT')).effect, 'deny', 'an allow rule must list every method');
    assert.equal(e.decide(ID, 'ci', override('POST', '/x', {}, ['DELETE'])).effect, 'deny');
    assert.equal(e.decide(ID, 'ci', override('POST', '/x', { 'x-http-method-override': 'GET' })).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', override('GET', '/x', { 'x-http-method-override': 'get' })).effect, 'allow');
    const a = override('POST', '/x?_method=DELETE');
    assert.equal(a.text, 'POST /x?_method=DELETE (method override: DELETE)');
    assert.deepEqual((a.http as { methodOverrides: string[] }).methodOverrides, ['DELETE']);
  });
});

describe('WebSocket upgrades', () => {
  test('an upgrade is decided as its method and as `websocket`: read alone does not open one', () => {
    const ws = { connection: 'keep-alive, Upgrade', upgrade: 'WebSocket' };
    const e = engine([{ deny: ['get'], paths: ['/admin/**'] }, { allow: ['read', 'websocket'], paths: ['/graphql', '/admin/**'] }, { allow: ['read'], paths: ['/**'] }] as never);
    assert.equal(e.decide(ID, 'ci', act('GET', '/graphql', ws)).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('GET', '/other', ws)).effect, 'deny', 'an allow of read does not cover websocket');
    assert.equal(e.decide(ID, 'ci', act('GET', '/other')).effect, 'allow');
    assert.equal(e.decide(ID, 'ci', act('GET', '/admin/ws', ws)).effect, 'deny', 'a deny on the method covers the upgrade');
    // `Upgrade` without `Connection: upgrade` is no upgrade (Node serves it as an ordinary request).
    assert.equal(e.decide(ID, 'ci', act('GET', '/other', { upgrade: 'websocket' })).effect, 'allow');
    const a = act('GET', '/graphql?x=1', ws);
    assert.equal(a.text, 'GET /graphql?x=1 (upgrade: websocket)');
    assert.equal((a.http as { upgrade: string }).upgrade, 'websocket');
    // A deny on websocket alone leaves ordinary requests to the path alone.
    const d = engine([{ deny: ['websocket'] }, { allow: '*' }] as never);
    assert.equal(d.decide(ID, 'ci', act('GET', '/x', ws)).effect, 'deny');
    assert.equal(d.decide(ID, 'ci', act('GET', '/x')).effect, 'allow');
    // A typo is still refused at load: websocket is a word rule lists may use.
    assert.throws(() => engine([{ allow: ['websockets'] }] as never), /websocket/);
  });
});
