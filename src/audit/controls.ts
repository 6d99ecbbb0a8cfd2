/**
 * `sluice audit controls`: the NIST SP 800-53 controls Sluice helps meet, each with how it does,
 * what the running configuration says about it, and what the audit log shows over a window, so an
 * auditor reads one report instead of chasing scripts. Every figure comes from the config and the
 * verified log; nothing is asserted that the data does not show.
 *
 * Statuses: `ok`; `attention` (the configuration weakens the control: a literal credential, an
 * unencrypted hop, an unconditional allow-everything rule); `failed` (the evidence itself is
 * broken: the log does not verify); `off` (the feature is not configured: no approver roles).
 */
import { formatDuration } from '../config/duration.js';
import { isSecretReference } from '../config/secret.js';
import { isLoopbackHost, type SluiceConfig } from '../config/load-config.js';
import { splitHostPort } from '../connectors/engine.js';
import { AUDIT_EVENT_TYPES, parseRecord, type AuditRecord } from './event.js';
import type { AuditSettings } from './open-store.js';
import type { AuditStore } from './store/types.js';
import type { VerifyReport } from './verify.js';

export type ControlStatus = 'ok' | 'attention' | 'failed' | 'off';

export interface ControlReport {
  readonly id: string;
  readonly title: string;
  readonly status: ControlStatus;
  /** How Sluice implements the control. */
  readonly how: string;
  /** What the configuration and the log show; the reasons for `attention`/`failed` come first. */
  readonly findings: readonly string[];
  /** The figures behind the findings, for machines. */
  readonly evidence: Readonly<Record<string, unknown>>;
  /** How to look for yourself. */
  readonly check: string;
}

export interface ControlsReport {
  readonly generatedAt: number;
  readonly config: string;
  readonly node: string;
  /** The window the log's figures cover (ms since the epoch); `since` absent: the whole log. */
  readonly window: { readonly since?: number; readonly until: number };
  readonly log: { readonly ok: boolean; readonly records: number; readonly pruned: number; readonly checkpoints: number; readonly problem?: string };
  readonly controls: readonly ControlReport[];
}

export interface ControlsInput {
  readonly config: SluiceConfig;
  readonly settings: AuditSettings;
  readonly store: AuditStore;
  readonly verify: VerifyReport;
  /** Whether a role's rules on a connection allow only reads (the policy engine's answer). */
  readonly readOnly: (role: string, connection: string) => boolean;
  readonly since?: number;
  readonly now: number;
}

/** What the log holds in the window, counted in one pass. */
interface Tally {
  records: number;
  readonly byType: Map<string, number>;
  readonly decisions: { allow: number; deny: number; review: number };
  readonly subjects: Set<string>;
  readonly authFailures: Map<string, number>;
  commands: number;
  /** Command records missing an AU-3 field, by field. */
  readonly missing: Map<string, number>;
  auditReadsDenied: number;
  configChanges: number;
}

const PAGE = 1000;
/** AU-3 content every `command` record carries. */
const COMMAND_FIELDS: readonly [string, (r: AuditRecord) => unknown][] = [
  ['ts', (r) => r.ts],
  ['node', (r) => r.node],
  ['session', (r) => r.session],
  ['connection', (r) => r.connection],
  ['source', (r) => r.source],
  ['identity.issuer', (r) => r.identity?.issuer],
  ['identity.subject', (r) => r.identity?.subject],
  ['role', (r) => r.role],
  ['command.text', (r) => r.command?.text],
  ['decision.rule', (r) => r.decision?.rule],
  ['policyVersion', (r) => r.policyVersion],
  ['outcome', (r) => r.outcome],
];

async function tally(store: AuditStore, since: number | undefined): Promise<Tally> {
  const t: Tally = {
    records: 0,
    byType: new Map(),
    decisions: { allow: 0, deny: 0, review: 0 },
    subjects: new Set(),
    authFailures: new Map(),
    commands: 0,
    missing: new Map(),
    auditReadsDenied: 0,
    configChanges: 0,
  };
  const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
  let after = 0;
  for (;;) {
    const page = since === undefined ? await store.readEvents(after, PAGE) : await store.readEventsSince(since, after, PAGE);
    if (page.length === 0) break;
    for (const ev of page) {
      after = ev.seq;
      let r: AuditRecord;
      try {
        r = parseRecord(ev.body);
      } catch {
        continue; // verification names a record that does not parse
      }
      t.records++;
      bump(t.byType, r.type);
      if (r.type === 'auth.success' && r.identity !== undefined) t.subjects.add(`${r.identity.issuer} ${r.identity.subject}`);
      if (r.type === 'auth.failure') bump(t.authFailures, r.error?.code ?? 'unknown');
      if (r.type === 'audit.read' && r.outcome === 'denied') t.auditReadsDenied++;
      if (r.type === 'config.change') t.configChanges++;
      if (r.type === 'command') {
        t.commands++;
        const effect = r.decision?.effect;
        if (effect !== undefined) t.decisions[effect]++;
        for (const [field, get] of COMMAND_FIELDS) {
          const v = get(r);
          if (v === undefined || v === null || v === '') bump(t.missing, field);
        }
      }
    }
    if (page.length < PAGE) break;
  }
  return t;
}

function isLoopback(host: string): boolean {
  return isLoopbackHost(host.toLowerCase());
}

function top(m: ReadonlyMap<string, number>, n = 5): string {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ');
}

function count(t: Tally, type: string): number {
  return t.byType.get(type) ?? 0;
}

/** A rule's effect and its verb list, as written. */
function effectOf(rule: SluiceConfig['policies'][number]['rules'][number]): { effect: 'allow' | 'deny' | 'review'; verbs: '*' | readonly string[] } {
  if (rule.allow !== undefined) return { effect: 'allow', verbs: rule.allow };
  if (rule.deny !== undefined) return { effect: 'deny', verbs: rule.deny };
  return { effect: 'review', verbs: rule.review as '*' | readonly string[] };
}

/** Credentials written into the config itself rather than referenced (`env:`, `file:`). */
function inlineCredentials(config: SluiceConfig): string[] {
  const out: string[] = [];
  const inline = (value: string | undefined, where: string): void => {
    if (value !== undefined && !isSecretReference(value)) out.push(where);
  };
  for (const c of config.raw.connections) {
    const at = `connections.${c.name}`;
    if (c.type === 'postgres') inline(c.upstream.password, `${at}.upstream.password`);
    else {
      const auth = c.upstream.auth;
      if (auth !== undefined && 'bearer' in auth) inline(auth.bearer, `${at}.upstream.auth.bearer`);
      if (auth !== undefined && 'basic' in auth) inline(auth.basic.password, `${at}.upstream.auth.basic.password`);
      if (auth !== undefined && 'header' in auth) inline(auth.header.value, `${at}.upstream.auth.header.value`);
    }
    inline(c.mask?.hashKey, `${at}.mask.hashKey`);
  }
  if ('postgres' in config.raw.store) inline(config.raw.store.postgres, 'store.postgres');
  return out;
}

/** Hops that carry tokens, credentials or data in clear off this machine. */
function cleartextHops(config: SluiceConfig): string[] {
  const out: string[] = [];
  const { postgres, http } = config.listen;
  if (postgres !== undefined && !isLoopback(splitHostPort(postgres).host) && config.tls === undefined) {
    out.push(config.allowInsecureRemote ? `the PostgreSQL listener ${postgres} takes tokens in clear from remote clients (allowInsecureRemote: true, no tls)` : `the PostgreSQL listener ${postgres} has no tls: remote clients are refused until it does`);
  }
  if (http !== undefined && !isLoopback(splitHostPort(http).host) && config.tls === undefined) out.push(`the HTTP listener ${http} (bearer tokens, the approvals API and the console) has no tls`);
  for (const c of config.connections) {
    if (c.type === 'postgres') {
      if (!isLoopback(c.upstream.host) && (c.upstream.sslmode === 'disable' || c.upstream.sslmode === 'prefer')) out.push(`connection ${c.name} reaches ${c.upstream.host} with sslmode ${c.upstream.sslmode}`);
      else if (!isLoopback(c.upstream.host) && c.upstream.sslmode === 'require') out.push(`connection ${c.name} encrypts to ${c.upstream.host} but does not verify its certificate (sslmode require)`);
      continue;
    }
    const url = new URL(c.upstream.url);
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) out.push(`connection ${c.name} reaches ${url.host} over http://`);
    if (c.upstream.insecureSkipVerify === true) out.push(`connection ${c.name} does not verify ${url.host}'s certificate (insecureSkipVerify)`);
  }
  return out;
}

export async function controlsReport(input: ControlsInput): Promise<ControlsReport> {
  const { config, settings, store, verify, since, now } = input;
  const t = await tally(store, since);
  const window = since === undefined ? 'in the whole log' : `since ${new Date(since).toISOString()}`;
  const sinceFlag = since === undefined ? '' : ` --since ${new Date(since).toISOString()}`;
  const roles = config.identity.roles;
  const approverRoles = roles.filter((r) => r.approver === true).map((r) => r.name);
  const auditorRoles = roles.filter((r) => r.auditor === true).map((r) => r.name);
  const policies = config.policies;
  const controls: ControlReport[] = [];
  const add = (c: ControlReport): void => void controls.push(c);

  // AC-2: accounts are tokens, not standing credentials.
  {
    const findings: string[] = [];
    if (config.identity.onTokenExpiry === 'keep') findings.push('identity.onTokenExpiry is keep: sessions outlive the tokens that opened them');
    findings.push(`${config.identity.issuers.length} token issuer(s); ${roles.length} role(s), granted by claim mappings (CEL) or to local tokens minted for them`);
    if (config.identity.onTokenExpiry === 'end') {
      const own = [...config.identity.roleTokenExpiryGraceMs].map(([r, ms]) => `${r} ${formatDuration(ms)}`);
      findings.push(`sessions end ${formatDuration(config.identity.tokenExpiryGraceMs)} after their token expires${own.length > 0 ? ` (roles with their own grace: ${own.join(', ')})` : ''}; a statement still running ${formatDuration(config.identity.tokenExpiryDrainMs)} later is cancelled`);
    }
    findings.push(`${t.subjects.size} distinct subject(s) authenticated, ${count(t, 'auth.success')} authentication(s), ${count(t, 'auth.failure')} refused, ${window}`);
    add({
      id: 'AC-2',
      title: 'Account management',
      status: config.identity.onTokenExpiry === 'keep' ? 'attention' : 'ok',
      how: 'Agents hold no standing accounts: each connection authenticates with a short-lived OIDC token whose claims map to a role; sessions end with their token (plus a bounded grace).',
      findings,
      evidence: { issuers: config.identity.issuers.length, roles: roles.length, subjects: t.subjects.size, authSuccess: count(t, 'auth.success'), authFailure: count(t, 'auth.failure'), onTokenExpiry: config.identity.onTokenExpiry, tokenExpiryGraceMs: config.identity.tokenExpiryGraceMs },
      check: `sluice sessions list${sinceFlag}`,
    });
  }

  // AC-3: every command decided, default deny.
  {
    const rules = policies.reduce((n, p) => n + p.rules.length, 0);
    add({
      id: 'AC-3',
      title: 'Access enforcement',
      status: 'ok',
      how: 'Every statement and request is parsed (the PostgreSQL parser, Kubernetes RequestInfo, HTTP method and path) and decided by ordered rules per role and connection; no matching rule denies, and what cannot be parsed is denied.',
      findings: [`${policies.length} policy block(s), ${rules} rule(s)`, `${t.commands} command(s) decided ${window}: ${t.decisions.allow} allowed, ${t.decisions.deny} denied, ${t.decisions.review} held for review`],
      evidence: { policies: policies.length, rules, commands: t.commands, ...t.decisions },
      check: `sluice audit export --format jsonl${sinceFlag} (each command record names its decision and rule); sluice policy check --role R --connection C --sql "…"`,
    });
  }

  // AC-5: separation of duties on approvals.
  {
    const reviewRules = policies.flatMap((p) => p.rules.filter((r) => r.review !== undefined).map(() => p));
    const doubled = approverRoles.filter((r) => policies.some((p) => p.role === r || p.role === '*'));
    const findings: string[] = [];
    for (const r of doubled) findings.push(`approver role ${r} also has policies on connections: one holder could ask and approve (the same subject or sponsor is still refused)`);
    if (approverRoles.length > 0) findings.push(`approver roles: ${approverRoles.join(', ')}; ${reviewRules.length} review rule(s)`);
    findings.push(
      `${count(t, 'approval.requested')} request(s) ${window}: ${count(t, 'approval.approved')} approval(s), ${count(t, 'approval.denied')} denied, ${count(t, 'approval.expired')} expired, ${count(t, 'approval.withdrawn')} withdrawn`,
    );
    add({
      id: 'AC-5',
      title: 'Separation of duties',
      status: approverRoles.length === 0 ? 'off' : doubled.length > 0 ? 'attention' : 'ok',
      how: 'A review rule holds the command until holders of an approver role decide (N of M); the requester, its sponsor and anyone sharing its sponsor can never approve, and agent roles never approve.',
      findings,
      evidence: { approverRoles, reviewRules: reviewRules.length, requested: count(t, 'approval.requested'), approved: count(t, 'approval.approved'), denied: count(t, 'approval.denied'), expired: count(t, 'approval.expired'), withdrawn: count(t, 'approval.withdrawn') },
      check: `sluice approvals list --state all; sluice audit export --format jsonl${sinceFlag} | grep '"type":"approval.'`,
    });
  }

  // AC-6: least privilege.
  {
    const broad: string[] = [];
    const readOnly: string[] = [];
    for (const p of policies) {
      p.rules.forEach((r, i) => {
        const { effect, verbs } = effectOf(r);
        if (effect === 'allow' && verbs === '*' && r.when === undefined && r.paths === undefined) broad.push(`role ${p.role} on ${p.connection} (rule ${r.name ?? `#${i}`}) allows every verb with no condition`);
      });
      const postgres = config.connections.some((c) => c.name === p.connection && c.type === 'postgres');
      if (postgres && p.role !== '*' && input.readOnly(p.role, p.connection)) readOnly.push(`${p.role}@${p.connection}`);
    }
    const reveal = policies.flatMap((p) => p.rules.filter((r) => r.reveal === true).map((r) => `${p.role}@${p.connection}${r.name !== undefined ? ` (${r.name})` : ''}`));
    const findings = [...broad];
    findings.push(readOnly.length > 0 ? `read-only role/connection pairs (PostgreSQL sessions opened read-only upstream): ${readOnly.join(', ')}` : 'no role/connection pair is read-only');
    if (reveal.length > 0) findings.push(`rules that reveal Kubernetes Secret values: ${reveal.join(', ')}`);
    findings.push(`${t.decisions.deny} command(s) denied ${window}`);
    add({
      id: 'AC-6',
      title: 'Least privilege',
      status: broad.length > 0 ? 'attention' : 'ok',
      how: 'Rules name verbs (select, write, ddl, get, list, exec, …) per role and connection, so a role gets what its job needs; roles that only read get upstream sessions with default_transaction_read_only, and the upstream credential is the gateway\'s, never the agent\'s.',
      findings,
      evidence: { unconditionalAllowAll: broad.length, readOnly, reveal, denied: t.decisions.deny },
      check: 'sluice policy check --role R --connection C --sql "DROP TABLE t" (exit 3 when denied)',
    });
  }

  // AU-2: the event catalogue.
  {
    const seen = AUDIT_EVENT_TYPES.filter((e) => count(t, e) > 0).map((e) => `${e} ×${count(t, e)}`);
    add({
      id: 'AU-2',
      title: 'Event logging',
      status: 'ok',
      how: 'A fixed catalogue of event types (docs/audit-events.md): authentication, sessions, every command with its decision, approvals, masking, upstream errors, configuration loads and changes, key rotation, retention, reads of the log, gateway start and stop.',
      findings: [`${t.records} record(s) ${window}`, seen.length > 0 ? `by type: ${seen.join(', ')}` : 'no records'],
      evidence: { records: t.records, byType: Object.fromEntries(t.byType) },
      check: `sluice audit export --format jsonl${sinceFlag}`,
    });
  }

  // AU-3: record content.
  {
    const missing = [...t.missing].map(([f, n]) => `${f} missing on ${n}`);
    add({
      id: 'AU-3',
      title: 'Content of audit records',
      status: missing.length > 0 ? 'attention' : 'ok',
      how: 'Each record carries UTC time in ms, type, gateway node, session, connection and upstream target and account, source address, the identity (issuer, subject, roles, model, sponsor, CI claims), the masked command, the decision and rule, the policy version, the outcome, rows, bytes and duration.',
      findings: missing.length > 0 ? [`of ${t.commands} command record(s): ${missing.join(', ')}`] : [`all ${t.commands} command record(s) ${window} carry ${COMMAND_FIELDS.map(([f]) => f).join(', ')}`],
      evidence: { commands: t.commands, missing: Object.fromEntries(t.missing) },
      check: `sluice replay SESSION_ID --json`,
    });
  }

  // AU-6: review and reporting.
  {
    const streams = config.audit.stream ?? [];
    const findings: string[] = [];
    findings.push(auditorRoles.length > 0 ? `auditor roles (HTTP API and web console): ${auditorRoles.join(', ')}; ${count(t, 'audit.read')} read(s) of the log recorded ${window}, ${t.auditReadsDenied} refused` : 'no auditor role: the log is read with the CLI on the gateway\'s host');
    findings.push(streams.length > 0 ? `${streams.length} live stream(s) to a SIEM: ${streams.map((s) => ('syslog' in s ? `syslog ${s.syslog}` : `http ${new URL(s.http).host}`) + ` (${s.format ?? 'jsonl'})`).join(', ')}` : 'no live stream to a SIEM (audit.stream); exports are on demand');
    add({
      id: 'AU-6',
      title: 'Audit record review, analysis and reporting',
      status: 'ok',
      how: 'Sessions are listed and replayed with their timing (sluice sessions list, sluice replay, the console); records export as JSON lines, OCSF 1.3.0 or CEF, and stream live to HTTP or syslog receivers.',
      findings,
      evidence: { auditorRoles, streams: streams.length, reads: count(t, 'audit.read'), readsDenied: t.auditReadsDenied },
      check: `sluice sessions list${sinceFlag}; sluice audit export --format ocsf${sinceFlag}`,
    });
  }

  // AU-9: protection of audit information.
  {
    const findings: string[] = [];
    const agentAuditors = auditorRoles.filter((r) => policies.some((p) => p.role === r || p.role === '*'));
    for (const r of agentAuditors) findings.push(`auditor role ${r} also has policies on connections: an agent holding it could read the log, masked results included`);
    if (!verify.ok) findings.unshift(`the log does NOT verify: record ${verify.problem?.seq ?? '?'}: ${verify.problem?.kind ?? ''}: ${verify.problem?.message ?? ''}`);
    else findings.push(`the log verifies: ${verify.records} record(s) hash-chained in an RFC 6962 Merkle tree${verify.pruned > 0 ? `, ${verify.pruned} removed by retention with their hashes kept` : ''}`);
    findings.push(`the store refuses UPDATE and DELETE of records; the signing key is a separate file (${settings.signingKeyPath})`);
    if (auditorRoles.length > 0) findings.push(`reads over HTTP are limited to ${auditorRoles.join(', ')} and recorded`);
    add({
      id: 'AU-9',
      title: 'Protection of audit information',
      status: !verify.ok ? 'failed' : agentAuditors.length > 0 ? 'attention' : 'ok',
      how: 'An append-only log: canonical JSON records (RFC 8785) in a hash chain and a Merkle tree, checkpoints signed with a key kept outside the store, and triggers that refuse changes; sluice audit verify recomputes all of it and names the first bad record.',
      findings,
      evidence: { verified: verify.ok, records: verify.records, pruned: verify.pruned, agentAuditors, ...(verify.problem !== undefined ? { problem: verify.problem } : {}) },
      check: 'sluice audit verify',
    });
  }

  // AU-10: non-repudiation.
  {
    const cp = verify.latestCheckpoint;
    add({
      id: 'AU-10',
      title: 'Non-repudiation',
      status: !verify.ok ? 'failed' : 'ok',
      how: 'Ed25519 checkpoints in the C2SP signed-note format commit to the whole log every audit.checkpointEvery records or checkpointInterval; a receipt (inclusion proof) shows one record is in a signed tree, checkable offline with the public key.',
      findings: [
        `${verify.checkpoints} signed checkpoint(s)${cp !== undefined ? `, the latest over ${cp.size} records at ${new Date(cp.ts).toISOString()} by ${cp.signedBy.join(', ')}` : ''}`,
        `${verify.unsigned} record(s) after it, chained but not yet signed (a checkpoint every ${settings.checkpointEvery} records or ${formatDuration(settings.checkpointIntervalMs)})`,
      ],
      evidence: { checkpoints: verify.checkpoints, unsigned: verify.unsigned, ...(cp !== undefined ? { latest: cp } : {}) },
      check: 'sluice audit receipt --config F EVENT_ID > r.json; sluice audit verify-receipt r.json',
    });
  }

  // AU-11: retention.
  add({
    id: 'AU-11',
    title: 'Audit record retention',
    status: 'ok',
    how: 'audit.retention removes only whole sealed segments past the retention time, keeping their leaf hashes, so the log still verifies; the removal is itself recorded.',
    findings: [settings.retentionMs === undefined ? 'no audit.retention: records are kept indefinitely' : `records are kept ${formatDuration(settings.retentionMs)}, then removed by whole sealed segments`, `${verify.pruned} record(s) removed so far, ${count(t, 'audit.retention')} retention run(s) recorded ${window}`],
    evidence: { retentionMs: settings.retentionMs ?? null, pruned: verify.pruned },
    check: 'sluice audit verify (counts records removed by retention)',
  });

  // AU-12: generation.
  add({
    id: 'AU-12',
    title: 'Audit record generation',
    status: 'ok',
    how: 'Every connector records through the one pipeline; a command whose record cannot be made durable is refused (audit.onFailure accepts only refuse), and a pure read\'s result is held until its record is durable.',
    findings: [`${config.connections.length} connection(s) recording: ${config.connections.map((c) => `${c.name} (${c.type})`).join(', ') || 'none'}`, `${count(t, 'gateway.start')} gateway start(s), ${count(t, 'gateway.stop')} stop(s), ${t.configChanges} configuration change(s) ${window}`],
    evidence: { connections: config.connections.length, starts: count(t, 'gateway.start'), stops: count(t, 'gateway.stop'), configChanges: t.configChanges },
    check: 'test/e2e/postgres-crash.test.ts kills the gateway under load and counts: nothing acknowledged is missing',
  });

  // IA-2: identification and authentication.
  {
    const issuers = config.identity.issuers.map((i) => `${i.kind === 'local' ? 'the local issuer' : i.issuer} (tokens at most ${formatDuration(i.maxTokenLifetimeMs)})`);
    add({
      id: 'IA-2',
      title: 'Identification and authentication',
      status: 'ok',
      how: 'Tokens are verified with the issuer\'s published keys (asymmetric algorithms only), audience, expiry, not-before and a maximum lifetime; the subject and claims identify the agent, its CI run and its sponsor in every record.',
      findings: [`issuers: ${issuers.join(', ')}`, count(t, 'auth.failure') > 0 ? `refused ${window}: ${top(t.authFailures)}` : `no refused authentication ${window}`],
      evidence: { issuers, authFailures: Object.fromEntries(t.authFailures) },
      check: 'sluice token inspect --config F TOKEN',
    });
  }

  // IA-5: authenticator management.
  {
    const inline = inlineCredentials(config);
    const findings = inline.map((w) => `${w} is written in the config; reference it (env:NAME, file:/path)`);
    const longest = Math.max(...config.identity.issuers.map((i) => i.maxTokenLifetimeMs));
    findings.push(`agent tokens: at most ${formatDuration(longest)} of lifetime, ${formatDuration(config.identity.clockSkewMs)} of clock skew`);
    findings.push('upstream credentials are injected by the gateway and scrubbed from every response: agents never hold them');
    add({
      id: 'IA-5',
      title: 'Authenticator management',
      status: inline.length > 0 ? 'attention' : 'ok',
      how: 'Agents authenticate with short-lived tokens instead of stored passwords; the upstream credentials live only in the gateway, resolved from env: or file: references, and never reach an agent or a record.',
      findings,
      evidence: { inlineCredentials: inline },
      check: 'grep the config for literal credentials; sluice audit export | grep the upstream password (no match)',
    });
  }

  // SC-8: transmission confidentiality.
  {
    const hops = cleartextHops(config);
    add({
      id: 'SC-8',
      title: 'Transmission confidentiality and integrity',
      status: hops.length > 0 ? 'attention' : 'ok',
      how: 'TLS on the listeners (tls:) and to upstreams (sslmode verify-full, https with a CA); tokens are refused in clear from remote clients unless allowInsecureRemote is set.',
      findings: hops.length > 0 ? hops : ['every hop off this machine is encrypted and verified'],
      evidence: { cleartextHops: hops },
      check: 'the listeners\' and upstreams\' settings in the config',
    });
  }

  // SC-13: cryptographic protection.
  add({
    id: 'SC-13',
    title: 'Cryptographic protection',
    status: 'ok',
    how: 'SHA-256 for record and tree hashes (RFC 6962), Ed25519 for checkpoint signatures and the local issuer\'s tokens, HMAC-SHA-256 for the hash masking style and webhook signatures; TLS from Node\'s OpenSSL.',
    findings: [`checkpoint origin ${settings.origin ?? 'sluice.local/audit/<log id>'}`],
    evidence: {},
    check: 'sluice audit verify --json (checkpoint signers)',
  });

  return {
    generatedAt: now,
    config: config.path,
    node: config.node,
    window: { ...(since !== undefined ? { since } : {}), until: now },
    log: { ok: verify.ok, records: verify.records, pruned: verify.pruned, checkpoints: verify.checkpoints, ...(verify.problem !== undefined ? { problem: `${verify.problem.kind} at record ${verify.problem.seq}` } : {}) },
    controls,
  };
}
