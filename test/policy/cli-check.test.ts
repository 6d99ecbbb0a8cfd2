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
