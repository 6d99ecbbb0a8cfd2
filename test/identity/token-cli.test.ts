/**
 * `sluice token mint|inspect` run in-process through run(args, io).
 * (Lives here rather than under test/cli/ because this piece owns test/identity/ only.)
 */
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { decodeJwt } from 'jose';
import { run } from '../../src/cli/commands/token.js';
import type { CliIo } from '../../src/cli/io.js';
import { tempConfig } from './helpers/config.js';

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
}

function captureIo(env: NodeJS.ProcessEnv = {}, stdin = ''): Captured {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  return {
    io: { stdout, stderr, stdin: Readable.from([stdin]), env },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}

const IDENTITY = `  issuers:
    - local: true
      maxTokenLifetime: 1h
  roles:
    - name: ops
    - name: analyst
`;

test('mint prints a token and a newline; inspect verifies it and exits 0', async () => {
  const cfg = tempConfig(IDENTITY);
  try {
    const mint = captureIo();
    const code = await run(['mint', '--config', cfg.path, '--role', 'ops', '--role', 'analyst', '--subject', 'ci@acme', '--ttl', '10m', '--model', 'claude'], mint.io);
    assert.equal(code, 0, mint.stderr());
    assert.match(mint.stdout(), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const token = mint.stdout().trim();
    const claims = decodeJwt(token);
    assert.equal((claims.exp as number) - (claims.iat as number), 600);

    const inspect = captureIo();
    assert.equal(await run(['inspect', '--config', cfg.path, token], inspect.io), 0, inspect.stderr());
    const verdict = JSON.parse(inspect.stdout()) as Record<string, unknown>;
    assert.equal(verdict.valid, true);
    assert.equal(verdict.subject, 'ci@acme');
    assert.equal(verdict.issuer, 'sluice:local');
    assert.deepEqual(verdict.roles, ['ops', 'analyst']);
    assert.equal(verdict.model, 'claude');
    assert.equal(verdict.expiresAt, new Date((claims.exp as number) * 1000).toISOString());
    assert.equal(verdict.error, undefined);
  } finally {
    cfg.cleanup();
  }
});

test('inspect reads the token from stdin with "-" and finds the config through SLUICE_CONFIG', async () => {
  const cfg = tempConfig(IDENTITY);
  try {
    const mint = captureIo({ SLUICE_CONFIG: cfg.path });
    assert.equal(await run(['mint', '--role', 'ops'], mint.io), 0, mint.stderr());
    const inspect = captureIo({ SLUICE_CONFIG: cfg.path }, mint.stdout());
    assert.equal(await run(['inspect', '-'], inspect.io), 0, inspect.stderr());
    assert.equal((JSON.parse(inspect.stdout()) as { valid: boolean }).valid, true);
  } finally {
    cfg.cleanup();
  }
});

test('inspect of a bad token prints valid:false with the reason and exits 1', async () => {
  const cfg = tempConfig(IDENTITY);
  try {
    const inspect = captureIo();
    const garbage = 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJzbHVpY2U6bG9jYWwifQ.';
    assert.equal(await run(['inspect', '--config', cfg.path, garbage], inspect.io), 1);
    const verdict = JSON.parse(inspect.stdout()) as Record<string, unknown>;
    assert.equal(verdict.valid, false);
    assert.deepEqual(verdict.roles, []);
    assert.equal(verdict.code, 'SLUICE_TOKEN_INVALID');
    assert.match(String(verdict.error), /algorithm "none" is not allowed/);
    assert.ok(!inspect.stdout().includes(garbage), 'the verdict never echoes the token');
  } finally {
    cfg.cleanup();
  }
});

test('mint errors: unknown role names the defined roles (exit 1); usage errors exit 2', async () => {
  const cfg = tempConfig(IDENTITY);
  try {
    const unknown = captureIo();
    assert.equal(await run(['mint', '--config', cfg.path, '--role', 'admin'], unknown.io), 1);
    assert.match(unknown.stderr(), /^sluice: SLUICE_BAD_REQUEST: role "admin" is not defined .*defined roles: ops, analyst\n$/);
    assert.equal(unknown.stdout(), '');

    const tooLong = captureIo();
    assert.equal(await run(['mint', '--config', cfg.path, '--role', 'ops', '--ttl', '2h'], tooLong.io), 1);
    assert.match(tooLong.stderr(), /SLUICE_TOKEN_TOO_LONG_LIVED/);

    for (const args of [['mint', '--config', cfg.path], ['mint', '--config', cfg.path, '--role', 'ops', '--ttl', 'soon'], ['mint', '--bogus'], ['inspect', '--config', cfg.path], ['frobnicate']]) {
      const io = captureIo();
      assert.equal(await run(args, io.io), 2, args.join(' '));
      assert.match(io.stderr(), /^sluice: usage: /);
    }
  } finally {
    cfg.cleanup();
  }
});

test('no subcommand prints usage on stderr and exits 2', async () => {
  const io = captureIo();
  assert.equal(await run([], io.io), 2);
  assert.match(io.stderr(), /sluice token mint/);
  assert.equal(io.stdout(), '');
});

test('--help prints usage and exits 0', async () => {
  for (const args of [['--help'], ['mint', '--help'], ['inspect', '-h']]) {
    const io = captureIo();
    assert.equal(await run(args, io.io), 0);
    assert.match(io.stdout(), /sluice token mint --config F --role R/);
    assert.match(io.stdout(), /sluice token inspect --config F TOKEN/);
  }
});

test('a missing config file is reported, not crashed on', async () => {
  const io = captureIo();
  assert.equal(await run(['mint', '--config', '/nonexistent/sluice.yaml', '--role', 'ops'], io.io), 1);
  assert.match(io.stderr(), /SLUICE_CONFIG_INVALID: cannot read config/);
});
