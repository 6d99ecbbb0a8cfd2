/** `sluice mask` in-process: default set without a config, a connection's config, PEM across chunks, --stats. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, test } from 'node:test';
import { run } from '../../src/cli/commands/mask.js';
import type { CliIo } from '../../src/cli/io.js';

async function sluiceMask(args: string[], input: string | string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const chunks = (typeof input === 'string' ? [input] : input).map((s) => Buffer.from(s));
  const io: CliIo = { stdin: Readable.from(chunks), stdout, stderr, env };
  const code = await run(args, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const here = mkdtempSync(join(tmpdir(), 'sluice-mask-'));
const cwd = process.cwd();
after(() => rmSync(here, { recursive: true, force: true }));

test('no config: the default set (everything but IP addresses), line by line', async () => {
  process.chdir(here);
  try {
    const r = await sluiceMask([], 'card 4111 1111 1111 1111\nip 10.0.0.1\nclean line\n');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'card 4111 **** **** 1111\nip 10.0.0.1\nclean line\n');
  } finally {
    process.chdir(cwd);
  }
});

test('a PEM key split across input chunks is masked whole; --stats goes to stderr', async () => {
  process.chdir(here);
  try {
    const input = ['before\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n', 'BKcwggSjAgEAAoIBAQC7\n-----END PRI', 'VATE KEY-----\nafter a@example.com'];
    const r = await sluiceMask(['--stats'], input);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'before\n[REDACTED:private_key]\nafter a***@example.com');
    assert.deepEqual(JSON.parse(r.stderr), { total: 2, detections: [{ detector: 'email', count: 1 }, { detector: 'private_key', count: 1 }] });
  } finally {
    process.chdir(cwd);
  }
});

test('--config and --connection select that connection\'s detectors and styles', async () => {
  const config = join(here, 'sluice.yaml');
  writeFileSync(
    config,
    [
      'identity:',
      '  issuers: [{ local: true }]',
      'connections:',
      '  - name: appdb',
      '    type: postgres',
      '    upstream: { host: 127.0.0.1, database: app, user: app }',
      '    mask: { columns: { "*.password*": redact }, detectors: [credit_card, us_ssn, email, secrets] }',
      '  - name: hashed',
      '    type: postgres',
      '    upstream: { host: 127.0.0.1, database: app, user: app }',
      '    mask: { detectors: [email], styles: { email: hash }, hashKey: env:MASK_KEY }',
      '',
    ].join('\n'),
  );
  const input = 'call 415-555-2671, mail a@example.com, ssn 123-45-6789\n';
  const a = await sluiceMask(['--config', config, '--connection', 'appdb'], input);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, 'call 415-555-2671, mail a***@example.com, ssn ***-**-6789\n', 'phone is not in this connection\'s set');
  const b = await sluiceMask(['--config', config, '--connection', 'hashed'], input, { MASK_KEY: 'k'.repeat(32) });
  assert.match(b.stdout, /^call 415-555-2671, mail hash:[0-9a-f]{16}, ssn 123-45-6789\n$/);
  const several = await sluiceMask(['--config', config], input);
  assert.equal(several.code, 2);
  assert.match(several.stderr, /several connections; pass --connection \(one of appdb, hashed\)/);
  const unknown = await sluiceMask(['--config', config, '--connection', 'nope'], input);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /SLUICE_CONNECTION_UNKNOWN/);
  const noKey = await sluiceMask(['--config', config, '--connection', 'hashed'], input);
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /SLUICE_CONFIG_INVALID: connections\[1\]\.mask\.hashKey/);
});

test('./sluice.yaml is used when present; bad flags are usage errors', async () => {
  const dir = join(here, 'cwd');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'sluice.yaml'),
    'identity:\n  issuers: [{ local: true }]\nconnections:\n  - name: only\n    type: postgres\n    upstream: { host: 127.0.0.1, database: app, user: app }\n    mask: { detectors: [email] }\n',
  );
  process.chdir(dir);
  try {
    const r = await sluiceMask([], 'a@example.com 4111111111111111\n');
    assert.equal(r.stdout, 'a***@example.com 4111111111111111\n');
    const bad = await sluiceMask(['--bogus'], '');
    assert.equal(bad.code, 2);
  } finally {
    process.chdir(cwd);
  }
});
