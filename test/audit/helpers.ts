/** Shared fixtures for audit tests: a config in a temp dir, a masker, a realistic session. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { CliIo } from '../../src/cli/io.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type SluiceConfig } from '../../src/config/index.js';
import type { SessionInfo } from '../../src/pipeline/session.js';

export interface TempConfig {
  readonly dir: string;
  readonly path: string;
  readonly config: SluiceConfig;
  cleanup(): void;
}

/** `store` may use `$DIR` for the temp dir. */
export function tempConfig(audit = '', store?: string): TempConfig {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-'));
  const path = join(dir, 'sluice.yaml');
  const yaml = [
    `dataDir: ${join(dir, 'data')}`,
    `store: ${(store ?? '{ sqlite: $DIR/data/sluice.db }').replaceAll('$DIR', dir)}`,
    'node: test-node',
    'identity:',
    '  issuers:',
    '    - local: true',
    audit === '' ? '' : `audit: ${audit}`,
  ].join('\n');
  writeFileSync(path, yaml + '\n');
  return { dir, path, config: parseConfig(yaml, path), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A stand-in for the masking stage: card numbers (13-19 digits) become a marker. */
export function testMask(text: string): string {
  return text.replace(/\b\d(?:[ -]?\d){12,18}\b/g, '[CARD]');
}

export function session(id = 'sess-1', overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id,
    connection: 'appdb',
    protocol: 'postgres',
    identity: {
      issuer: 'https://token.actions.githubusercontent.com',
      subject: 'repo:acme/app:ref:refs/heads/main',
      claims: { repository: 'acme/app', run_id: '9001', workflow: 'release', job_workflow_ref: 'acme/app/.github/workflows/release.yml@refs/heads/main', secret_claim: 'not-recorded' },
      roles: ['ci-readonly'],
      model: 'claude-sonnet',
      sponsor: 'alice@example.com',
      expiresAt: 2_000_000_000,
    },
    role: 'ci-readonly',
    source: '10.0.0.7:51234',
    upstreamTarget: '127.0.0.1:5432/app',
    upstreamUser: 'app_ro',
    startedAt: 1_700_000_000_000,
    client: 'psql',
    ...overrides,
  };
}

/** A clock that advances 10 ms per reading. */
export function steppingClock(start = 1_767_225_600_000, step = 10): () => number {
  let t = start;
  return () => (t += step);
}

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
}

export function captureIo(stdin = ''): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const input = new PassThrough();
  input.end(stdin);
  return { stdout, stderr, stdin: input, env: {}, out: () => out, err: () => err };
}

/** A session with every event kind a replay shows, with real gaps between events. */
export async function recordScenario(log: { append: (e: import('../../src/audit/index.js').AuditEventInput) => Promise<unknown> }, advance: (ms: number) => void, id = 'sess-1'): Promise<void> {
  const s = session(id);
  await log.append({ type: 'auth.success', session: s, outcome: 'success' });
  await log.append({ type: 'session.start', session: s, outcome: 'success' });
  advance(1200);
  await log.append({ type: 'command', session: s, command: { text: 'SELECT id, card FROM payments LIMIT 2', kind: 'select', verb: 'select', objects: ['payments'] }, decision: { effect: 'allow', rule: 'ci-readonly/appdb#1', reason: 'select is allowed' }, policyVersion: 'p-1', outcome: 'success', rows: 2, bytes: 64, durationMs: 3, mask: [{ detector: 'credit_card', column: 'card', count: 2 }], preview: { columns: ['id', 'card'], rows: [['1', '4111 1111 1111 1111'], ['2', '5500 0000 0000 0004']] } });
  advance(800);
  await log.append({ type: 'command', session: s, command: { text: 'DELETE FROM payments', kind: 'delete', verb: 'delete' }, decision: { effect: 'deny', rule: 'ci-readonly/appdb#3', reason: 'delete is denied' }, policyVersion: 'p-1', outcome: 'denied' });
  advance(500);
  await log.append({ type: 'approval.requested', session: s, approval: { id: 'apr-1', approvers: ['dba'] }, command: { text: 'UPDATE t SET a = 1 WHERE id = 2' }, decision: { effect: 'review', rule: 'ci-readonly/appdb#2' }, outcome: 'pending' });
  advance(2000);
  await log.append({ type: 'approval.approved', session: s, approval: { id: 'apr-1', approver: 'bob@example.com', reason: 'ok for release' } });
  await log.append({ type: 'command', session: s, command: { text: 'UPDATE t SET a = 1 WHERE id = 2', verb: 'update' }, decision: { effect: 'review', rule: 'ci-readonly/appdb#2' }, outcome: 'success', rows: 1, durationMs: 2 });
  advance(100);
  await log.append({ type: 'upstream.error', session: s, error: { code: '57014', message: 'canceling statement due to statement timeout' } });
  advance(100);
  await log.append({ type: 'session.end', session: s, outcome: 'success', details: { reason: 'client closed' } });
}
