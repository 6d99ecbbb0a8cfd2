/**
 * `sluice approvals list`, `sluice approve` and `sluice deny` run in-process against the REST API
 * on a real HTTP listener.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { run as runApprovals } from '../../src/cli/commands/approvals.js';
import { run as runApprove } from '../../src/cli/commands/approve.js';
import { run as runDeny } from '../../src/cli/commands/deny.js';
import type { CliIo } from '../../src/cli/io.js';
import { requestInput, session } from './helpers.js';
import { startApi, type ApiFixture } from './api-server.js';

let api: ApiFixture;
let dbaToken: string;
let sreToken: string;
let requester: Awaited<ReturnType<ApiFixture['user']>>;

before(async () => {
  api = await startApi();
  dbaToken = (await api.user('alice@example.com', ['dba'])).token;
  sreToken = (await api.user('bob@example.com', ['sre'])).token;
  requester = await api.user('ci-bot', ['agent']);
});
after(async () => {
  await api.close();
});

async function sluice(run: (args: string[], io: CliIo) => Promise<number>, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  const code = await run(args, { stdout, stderr, stdin: Readable.from(['']), env });
  return { code, out: out.join(''), err: err.join('') };
}

const newRequest = (text?: string) => api.svc.request(requestInput(session(requester.identity), text !== undefined ? { text } : {}));

test('approvals list: table and --json, from SLUICE_URL and SLUICE_TOKEN', async () => {
  const h = await newRequest('DELETE FROM orders\n   WHERE id = 7');
  const env = { SLUICE_URL: api.baseUrl, SLUICE_TOKEN: dbaToken };
  const table = await sluice(runApprovals, ['list'], env);
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /^ID\s+STATE\s+REQUESTER/);
  assert.match(table.out, new RegExp(`${h.id}\\s+pending\\s+ci-bot \\(agent\\)\\s+appdb\\s+0/1\\s+in \\d+s\\s+DELETE FROM orders WHERE id = 7`));
  const json = await sluice(runApprovals, ['list', '--json', '--state', 'pending'], env);
  assert.equal(json.code, 0, json.err);
  const items = JSON.parse(json.out) as { id: string; text: string }[];
  assert.ok(items.some((v) => v.id === h.id && v.text === 'DELETE FROM orders\n   WHERE id = 7'));
  const none = await sluice(runApprovals, ['list', '--state', 'expired'], env);
  assert.equal(none.code, 0);
  assert.equal(none.out, 'no expired approval requests\n');
  assert.equal((await sluice(runApprovals, ['list', '--state', 'bogus'], env)).code, 2);
});

test('approve ID: --token and --url flags; the waiter is released; a second approve is a clear 409 error', async () => {
  const h = await newRequest();
  const r = await sluice(runApprove, [h.id, '--comment', 'ok by me', '--token', dbaToken, '--url', api.baseUrl]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `approved ${h.id}: the statement is released (approvers: alice@example.com)\n`);
  assert.deepEqual(await h.outcome, { state: 'approved', approvers: ['alice@example.com'] });
  assert.equal((await api.svc.get(h.id))?.approvals[0]?.comment, 'ok by me');
  const again = await sluice(runApprove, [h.id, '--token', sreToken, '--url', api.baseUrl]);
  assert.equal(again.code, 1);
  assert.match(again.err, new RegExp(`^sluice: SLUICE_APPROVAL_FORBIDDEN: approval request ${h.id} is approved, not pending`));
});

test('approve: the requester itself is refused with the separation-of-duties reason', async () => {
  const h = await newRequest();
  const r = await sluice(runApprove, [h.id], { SLUICE_URL: api.baseUrl, SLUICE_TOKEN: requester.token });
  assert.equal(r.code, 1);
  assert.match(r.err, /SLUICE_APPROVAL_FORBIDDEN: .*may not review/);
  assert.equal((await api.svc.get(h.id))?.state, 'pending');
});

test('deny ID --reason: address from --config (listen.http); --reason is required', async () => {
  const h = await newRequest();
  const cfgPath = join(api.cfg.dir, 'reviewer.yaml');
  // A reviewer's copy of the config: its secret references need not resolve on this machine.
  writeFileSync(cfgPath, `listen:\n  http: ${new URL(api.baseUrl).host}\nconnections:\n  - name: appdb\n    upstream: { password: env:NOT_SET_HERE }\n`);
  const missing = await sluice(runDeny, [h.id, '--config', cfgPath], { SLUICE_TOKEN: dbaToken });
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--reason/);
  const r = await sluice(runDeny, [h.id, '--config', cfgPath, '--reason', 'use a batch job'], { SLUICE_TOKEN: dbaToken });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `denied ${h.id}: use a batch job\n`);
  assert.deepEqual(await h.outcome, { state: 'denied', approvers: ['alice@example.com'], reason: 'use a batch job' });
});

test('clear errors without a token, without an address, or with the gateway down; --help', async () => {
  const noToken = await sluice(runApprove, ['apr_x00000000000000000'], { SLUICE_URL: api.baseUrl });
  assert.equal(noToken.code, 1);
  assert.match(noToken.err, /SLUICE_TOKEN_MISSING: no reviewer token: pass --token or set SLUICE_TOKEN/);
  const noAddr = await sluice(runApprovals, ['list'], { SLUICE_TOKEN: dbaToken, SLUICE_CONFIG: join(api.cfg.dir, 'nope.yaml') });
  assert.equal(noAddr.code, 1);
  assert.match(noAddr.err, /cannot read config .*nope\.yaml/);
  const bare = await sluice(runApprovals, ['list', '--config', api.cfg.path], { SLUICE_TOKEN: dbaToken });
  assert.equal(bare.code, 1);
  assert.match(bare.err, /sets neither approvals\.publicUrl nor listen\.http; set SLUICE_URL/);
  const down = await sluice(runApprovals, ['list'], { SLUICE_URL: 'http://127.0.0.1:9', SLUICE_TOKEN: dbaToken });
  assert.equal(down.code, 1);
  assert.match(down.err, /cannot reach the gateway at http:\/\/127\.0\.0\.1:9/);
  const unknown = await sluice(runApprove, ['apr_x00000000000000000'], { SLUICE_URL: api.baseUrl, SLUICE_TOKEN: dbaToken });
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /SLUICE_APPROVAL_NOT_FOUND/);
  for (const [run, args, pattern] of [
    [runApprovals, ['--help'], /sluice approvals list/],
    [runApprove, ['--help'], /sluice approve ID \[--comment C\]/],
    [runDeny, ['--help'], /sluice deny ID --reason R/],
  ] as const) {
    const help = await sluice(run, [...args]);
    assert.equal(help.code, 0);
    assert.match(help.out, pattern);
    assert.match(help.out, /SLUICE_TOKEN/);
  }
  assert.equal((await sluice(runApprove, [], { SLUICE_URL: api.baseUrl, SLUICE_TOKEN: dbaToken })).code, 2);
});
