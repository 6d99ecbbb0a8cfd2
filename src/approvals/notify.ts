/**
 * Reviewer notifications: a Slack incoming-webhook message and a generic JSON webhook signed with
 * HMAC-SHA256 (`X-Sluice-Signature: sha256=<hex of HMAC(secret, body)>`, the scheme GitHub uses
 * for its webhooks). Deliveries run in the background with bounded exponential backoff: a slow or
 * broken receiver never delays holding the statement, and never approves anything.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SluiceConfig } from '../config/index.js';
import type { Secret } from '../config/index.js';
import { APPROVALS_API_PREFIX, type ApprovalView } from './types.js';

export interface NotifierOptions {
  readonly fetch?: typeof fetch;
  readonly log?: (line: string) => void;
  /** Attempts per delivery (first try included). Default 5. */
  readonly attempts?: number;
  /** First retry delay; doubles each time. Default 1000 ms. */
  readonly baseDelayMs?: number;
  /** Per-attempt timeout. Default 10 s. */
  readonly timeoutMs?: number;
}

export interface Notifier {
  /** Send the "approval needed" message to every configured target, in the background. */
  notify(view: ApprovalView): void;
  /** Resolves when every delivery started so far has finished (succeeded or given up). */
  idle(): Promise<void>;
  /** Abort retries and in-flight deliveries. */
  close(): void;
}

type Target = { readonly kind: 'slack'; readonly url: string } | { readonly kind: 'webhook'; readonly url: string; readonly secret?: Secret };

/** Slack's section text limit is 3000 characters. */
const SLACK_TEXT_MAX = 2900;
const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export function approveCommand(id: string): string {
  return `sluice approve ${id}`;
}

export function denyCommand(id: string): string {
  return `sluice deny ${id} --reason "..."`;
}

function ciLink(view: ApprovalView): string | undefined {
  const { context } = view.requester;
  if (view.requester.issuer !== GITHUB_ISSUER || typeof context.repository !== 'string' || context.run_id === undefined) return undefined;
  return `https://github.com/${context.repository}/actions/runs/${String(context.run_id)}`;
}

/** The request's page in the web console (/console/), at the same public address as its API URL. */
export function consoleUrl(view: Pick<ApprovalView, 'id' | 'url'>): string | undefined {
  const at = view.url.lastIndexOf(`${APPROVALS_API_PREFIX}/`);
  return at < 0 ? undefined : `${view.url.slice(0, at)}/console/#/approvals/${encodeURIComponent(view.id)}`;
}

/** The generic webhook body: everything a reviewer (or a bot) needs, as plain JSON. */
export function webhookPayload(view: ApprovalView, sentAt: number): Record<string, unknown> {
  const link = ciLink(view);
  const page = consoleUrl(view);
  return {
    type: 'approval.requested',
    sentAt,
    id: view.id,
    url: view.url,
    ...(page !== undefined ? { consoleUrl: page } : {}),
    approveCommand: approveCommand(view.id),
    denyCommand: denyCommand(view.id),
    createdAt: view.createdAt,
    expiresAt: view.expiresAt,
    requester: { ...view.requester, ...(link !== undefined ? { ciRun: link } : {}) },
    connection: view.connection,
    protocol: view.protocol,
    sessionId: view.sessionId,
    statement: view.text,
    statementHash: view.statementHash,
    facts: view.facts,
    ...(view.estimatedRows !== undefined ? { estimatedRows: view.estimatedRows } : {}),
    rule: view.rule,
    approverRoles: view.approverRoles,
    required: view.required,
    ...(view.grantMs !== undefined ? { grantMs: view.grantMs } : {}),
  };
}

/** Slack mrkdwn treats &, < and > as control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

function describeFact(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? '—' : value.map((v) => String(v)).join(', ');
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** A Slack incoming-webhook message (https://api.slack.com/messaging/webhooks): `text` fallback plus Block Kit blocks. */
export function slackMessage(view: ApprovalView): Record<string, unknown> {
  const r = view.requester;
  const kind = typeof view.facts.kind === 'string' ? view.facts.kind.toUpperCase() : 'command';
  const who = `${r.subject} (role ${r.role}${r.model !== undefined ? `, model ${r.model}` : ''})`;
  const page = consoleUrl(view);
  const fields: string[] = [
    `*Requester*\n${esc(who)}`,
    `*Connection*\n${esc(view.connection)}`,
    `*Rule*\n${esc(view.rule)}`,
    `*Approvals needed*\n${view.required} (roles: ${esc(view.approverRoles.join(', '))})`,
    `*Expires*\n<!date^${Math.floor(view.expiresAt / 1000)}^{date_short_pretty} {time_secs}|${new Date(view.expiresAt).toISOString()}>`,
  ];
  if (r.sponsor !== undefined) fields.push(`*Sponsor*\n${esc(r.sponsor)}`);
  if (view.estimatedRows !== undefined) fields.push(`*Estimated rows*\n${view.estimatedRows}`);
  const ctx = Object.entries(r.context)
    .filter(([k]) => k !== 'sponsor' && k !== 'model' && k !== 'sluice_model')
    .map(([k, v]) => `${k}=${String(v)}`);
  const link = ciLink(view);
  if (ctx.length > 0) fields.push(`*CI context*\n${esc(clip(ctx.join(' · '), 1800))}${link !== undefined ? `\n<${link}|CI run>` : ''}`);
  const facts = Object.entries(view.facts)
    .filter(([, v]) => v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `• ${k}: ${describeFact(v)}`)
    .join('\n');
  const statement = clip(view.text, SLACK_TEXT_MAX - 8).replace(/```/g, '`​``');
  return {
    text: `Sluice: ${who} asks to run a ${kind} on ${view.connection} — approve with \`${approveCommand(view.id)}\``,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(`Approval needed: ${kind} on ${view.connection}`, 150) } },
      { type: 'section', fields: fields.slice(0, 10).map((text) => ({ type: 'mrkdwn', text })) },
      { type: 'section', text: { type: 'mrkdwn', text: '```' + esc(statement) + '```' } },
      ...(facts !== '' ? [{ type: 'section', text: { type: 'mrkdwn', text: esc(clip(`Parsed facts:\n${facts}`, SLACK_TEXT_MAX)) } }] : []),
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `Approve: \`${approveCommand(view.id)}\`\nDeny: \`${esc(denyCommand(view.id))}\`\nAPI: <${view.url}|${esc(view.url)}>${page !== undefined ? `\nConsole: <${page}|review in the Sluice console>` : ''}`,
        },
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `request ${view.id} · statement sha256 ${view.statementHash.slice(0, 16)}…` }] },
    ],
  };
}

function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export function createNotifier(config: SluiceConfig, options: NotifierOptions = {}): Notifier {
  const targets: Target[] = (config.approvals.notify ?? []).map((n, i): Target => {
    if ('slack' in n) return { kind: 'slack', url: n.slack };
    return n.secret === undefined ? { kind: 'webhook', url: n.webhook } : { kind: 'webhook', url: n.webhook, secret: config.secret(n.secret, `approvals.notify[${i}].secret`) };
  });
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? (() => undefined);
  const attempts = options.attempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 20) throw new TypeError('notify attempts must be an integer from 1 to 20');
  const stop = new AbortController();
  const inflight = new Set<Promise<void>>();

  const deliver = async (target: Target, view: ApprovalView): Promise<void> => {
    const deliveryId = randomUUID();
    const body = JSON.stringify(target.kind === 'slack' ? slackMessage(view) : webhookPayload(view, Date.now()));
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'sluice-approvals', 'x-sluice-delivery': deliveryId };
    if (target.kind === 'webhook') {
      headers['x-sluice-event'] = 'approval.requested';
      if (target.secret !== undefined) headers['x-sluice-signature'] = signBody(target.secret.reveal(), body);
    }
    const where = `${target.kind} ${new URL(target.url).host}`;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (stop.signal.aborted) return;
      let why: string;
      try {
        const res = await doFetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)]), redirect: 'error' });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        why = `HTTP ${res.status}`;
        if (!retryable(res.status)) {
          log(`approvals: notification ${deliveryId} for ${view.id} to ${where} refused (${why}); not retried`);
          return;
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        why = (err as Error).name === 'TimeoutError' ? 'timeout' : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      }
      if (attempt === attempts) {
        log(`approvals: notification ${deliveryId} for ${view.id} to ${where} failed after ${attempts} attempts (${why})`);
        return;
      }
      // Exponential backoff with up to 25% jitter so a recovering receiver is not hit in lockstep.
      const delay = baseDelayMs * 2 ** (attempt - 1) * (1 + Math.random() * 0.25);
      try {
        await sleep(delay, undefined, { signal: stop.signal });
      } catch {
        return;
      }
    }
  };

  return {
    notify(view) {
      for (const t of targets) {
        const p = deliver(t, view).catch((err: unknown) => log(`approvals: notification error: ${String(err)}`));
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
    },
    async idle() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
    close() {
      stop.abort();
    },
  };
}
