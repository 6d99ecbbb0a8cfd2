import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { formatDuration, loadConfigFile, parseConfig, parseDuration } from '../../src/config/index.js';
import { SluiceError } from '../../src/errors.js';

const examplePath = new URL('../../examples/sluice.yaml', import.meta.url).pathname;

function rejects(yaml: string, pattern: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => parseConfig(yaml, 'test.yaml', { env }),
    (err: unknown) => {
      assert.ok(err instanceof SluiceError, String(err));
      assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
      assert.match(err.message, pattern);
      return true;
    },
  );
}

const minimal = (extra = ''): string => `identity:\n  issuers: [ { local: true } ]\n  roles: [ { name: r } ]\n${extra}`;

describe('sluice.yaml', () => {
  it('loads the DESIGN.md example as written', () => {
    const config = loadConfigFile(examplePath, { env: { APPDB_PASSWORD: 's3cr3t-value' } });
    assert.equal(config.listen.postgres, '127.0.0.1:6432');
    assert.equal(config.connections[0]?.name, 'appdb');
    assert.equal(config.identity.issuers.length, 2);
    assert.equal(config.identity.clockSkewMs, 30_000);
    assert.equal(config.identity.onTokenExpiry, 'end', 'sessions end with their token unless the config says keep');
    assert.equal(config.identity.tokenExpiryGraceMs, 3_600_000, 'an hour past it, so a CI job with a 5-minute token can finish');
    assert.equal(config.identity.tokenExpiryDrainMs, 60_000, 'a statement running at the deadline gets a minute more');
    assert.equal(config.policies[0]?.rules.length, 3);
    const c = config.connections[0];
    assert.ok(c !== undefined && c.type === 'postgres');
    assert.equal(c.upstream.password?.reveal(), 's3cr3t-value');
  });

  it('never prints a resolved secret', () => {
    const config = loadConfigFile(examplePath, { env: { APPDB_PASSWORD: 's3cr3t-value' } });
    const shown = JSON.stringify(config.connections) + inspect(config, { depth: 10 }) + String(config.connections[0]?.type === 'postgres' ? config.connections[0].upstream.password : '');
    assert.ok(!shown.includes('s3cr3t-value'), 'secret leaked into output');
    assert.match(shown, /\[secret env:APPDB_PASSWORD\]/);
  });

  it('names the path to the bad key and what was expected', () => {
    rejects(minimal('connections:\n  - name: db\n    type: postgres\n    upstream: { host: h, port: "x", database: d, user: u }\n'), /connections\[0\]\.upstream\.port: .*number/);
    rejects(minimal('listen: { postgres: "nope" }\n'), /listen\.postgres: expected host:port/);
    rejects(minimal('bogus: 1\n'), /Unrecognized key.*bogus|bogus/);
    rejects(minimal('policies:\n  - role: r\n    connection: x\n    rules: [ { allow: [select], deny: [ddl] } ]\n'), /policies\[0\]\.rules\[0\]: a rule has exactly one of allow, deny or review/);
    rejects('identity: [\n', /YAML syntax error/);
  });

  it('resolves env: and file: references and reports missing ones without their values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cfg-'));
    writeFileSync(join(dir, 'pw'), 'from-a-file\n');
    const conn = (pw: string): string =>
      minimal(`connections:\n  - name: db\n    type: postgres\n    upstream: { host: h, database: d, user: u, password: "${pw}" }\n`);
    const c = parseConfig(conn(`file:${join(dir, 'pw')}`), 'test.yaml', { env: {} }).connections[0];
    assert.ok(c?.type === 'postgres');
    assert.equal(c.upstream.password?.reveal(), 'from-a-file', 'trailing newline of a secret file is dropped');
    rejects(conn('env:NOT_SET_ANYWHERE'), /environment variable NOT_SET_ANYWHERE is not set/);
    rejects(conn(`file:${join(dir, 'missing')}`), /cannot read secret file .*missing \(ENOENT\)/);
    rejects(conn('env:bad name'), /not a valid env: reference/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses unsafe identity settings', () => {
    rejects('identity:\n  issuers: [ { issuer: "http://issuer.example.com", audience: a } ]\n', /must use https:\/\/ \(http:\/\/ is allowed only on loopback\)/);
    assert.doesNotThrow(() => parseConfig('identity:\n  issuers: [ { issuer: "http://127.0.0.1:9000", audience: a } ]\n', 'x.yaml', { env: {} }));
    rejects(minimal('').replace('issuers: [ { local: true } ]', 'issuers: [ { local: true } ]\n  clockSkew: 5m'), /clockSkew: at most 60s/);
    rejects('identity:\n  issuers: [ { issuer: "https://a.example", audience: a, algorithms: [HS256] } ]\n', /HS256 is not allowed/);
    rejects('identity:\n  issuers: [ { local: true }, { local: true } ]\n', /local issuer is listed more than once/);
    rejects(minimal('').replace('issuers: [ { local: true } ]', 'issuers: [ { local: true } ]\n  onTokenExpiry: never'), /identity\.onTokenExpiry/);
    rejects(minimal('').replace('issuers: [ { local: true } ]', 'issuers: [ { local: true } ]\n  tokenExpiryGrace: 25h'), /identity\.tokenExpiryGrace: at most 24h/);
    rejects(minimal('').replace('issuers: [ { local: true } ]', 'issuers: [ { local: true } ]\n  tokenExpiryGrace: soon'), /identity\.tokenExpiryGrace/);
    rejects(minimal('').replace('issuers: [ { local: true } ]', 'issuers: [ { local: true } ]\n  tokenExpiryDrain: 2h'), /identity\.tokenExpiryDrain: at most 1h/);
    rejects(minimal('').replace('roles: [ { name: r } ]', 'roles: [ { name: ci, tokenExpiryGrace: 2d } ]'), /identity\.roles\[0\]\.tokenExpiryGrace: at most 24h/);
    assert.equal(parseConfig(minimal('').replace('issuers: [ { local: true } ]', 'issuers: [ { local: true } ]\n  onTokenExpiry: keep'), 'x.yaml', { env: {} }).identity.onTokenExpiry, 'keep');
  });

  it('checks names across sections', () => {
    rejects(minimal('connections:\n  - { name: db, type: postgres, upstream: { host: h, database: d, user: u } }\n  - { name: db, type: postgres, upstream: { host: h, database: d, user: u } }\n'), /connection db is defined twice/);
    rejects(minimal('policies: [ { role: ghost, connection: "*", rules: [ { allow: [select] } ] } ]\n'), /role ghost is not defined/);
    rejects(minimal('policies: [ { role: r, connection: nowhere, rules: [ { allow: [select] } ] } ]\n'), /connection nowhere is not defined/);
  });

  it('parses durations', () => {
    assert.equal(parseDuration('15m', 'x'), 900_000);
    assert.equal(parseDuration('1h30m', 'x'), 5_400_000);
    assert.equal(parseDuration('250ms', 'x'), 250);
    assert.equal(parseDuration(2, 'x'), 2000);
    assert.throws(() => parseDuration('soon', 'ttl'), /ttl: "soon" is not a duration/);
    assert.throws(() => parseDuration(-1, 'ttl'), /non-negative/);
  });

  it('formats durations in their largest whole unit, zero as 0s', () => {
    assert.deepEqual([3_600_000, 5_400_000, 15_000, 250, 0].map(formatDuration), ['1h', '90m', '15s', '250ms', '0s']);
  });
});
