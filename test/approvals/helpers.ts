/** Shared fixtures for the approval tests: a real config on disk, sessions, identities and an audit recorder. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type SluiceConfig } from '../../src/config/index.js';
import type { ApprovalAuditEvent, ApprovalRequestInput, ApprovalSpec } from '../../src/approvals/index.js';
import type { SessionInfo } from '../../src/pipeline/session.js';
import type { Identity } from '../../src/pipeline/types.js';

export interface TempConfig {
  readonly config: SluiceConfig;
  readonly dir: string;
  readonly path: string;
  cleanup(): void;
}

export const ROLES = `  roles:
    - name: agent
    - name: viewer
    - name: dba
      approver: true
    - name: sre
      approver: true
`;

/** `extra` is appended as top-level YAML (approvals:, policies:, store: …). */
export function tempConfig(extra = '', options: { env?: NodeJS.ProcessEnv; store?: string; dir?: string } = {}): TempConfig {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sluice-approvals-'));
  const store = options.store ?? `store: { sqlite: ${JSON.stringify(join(dir, 'sluice.db'))} }`;
  const text = `dataDir: ${JSON.stringify(join(dir, 'data'))}\n${store}\nidentity:\n  issuers:\n    - local: true\n${ROLES}${extra}`;
  const path = join(dir, 'sluice.yaml');
  writeFileSync(path, text);
  return {
    config: parseConfig(text, path, options.env !== undefined ? { env: options.env } : {}),
    dir,
    path,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function identity(subject: string, roles: readonly string[], extra: Partial<Identity> = {}): Identity {
  return { issuer: 'sluice:local', subject, claims: { sub: subject }, roles, expiresAt: Math.floor(Date.now() / 1000) + 3600, ...extra };
}

let sessions = 0;
export function session(ident: Identity = identity('ci-bot', ['agent']), role = 'agent', connection = 'appdb'): SessionInfo {
  sessions += 1;
  return {
    id: `sess-${sessions}`,
    connection,
    protocol: 'postgres',
    identity: ident,
    role,
    source: '127.0.0.1:40000',
    upstreamTarget: '127.0.0.1:5432/app',
    upstreamUser: 'app_rw',
    startedAt: Date.now(),
  };
}

export const SPEC: ApprovalSpec = { approvers: ['dba', 'sre'], required: 1, timeoutMs: 60_000 };

export function requestInput(s: SessionInfo, overrides: Partial<ApprovalRequestInput> = {}): ApprovalRequestInput {
  const text = overrides.text ?? "DELETE FROM orders WHERE created_at < '2020-01-01'";
  return {
    session: s,
    text,
    statementHash: createHash('sha256').update(text).digest('hex'),
    fingerprint: 'fp-delete-orders-by-date',
    facts: { kind: 'delete', tablesWritten: ['orders'], hasWhere: true },
    rule: 'agent/appdb#2',
    spec: SPEC,
    ...overrides,
  };
}

export interface Recorder {
  readonly events: ApprovalAuditEvent[];
  /** While set, record() rejects (an unavailable audit log). */
  fail: boolean;
  record(event: ApprovalAuditEvent): Promise<void>;
  ofType(type: ApprovalAuditEvent['type']): ApprovalAuditEvent[];
}

export function recorder(): Recorder {
  const r: Recorder = {
    events: [],
    fail: false,
    async record(event) {
      if (r.fail) throw new Error('disk full');
      r.events.push(event);
    },
    ofType: (type) => r.events.filter((e) => e.type === type),
  };
  return r;
}

/** Resolves to 'pending' if `p` has not settled after a macrotask turn (so a test can assert "still waiting"). */
export async function stateOf<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), 20))]);
}

export function manualClock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}
