/**
 * `sluice approvals list`: the review queue of the running gateway, through its REST API.
 */
import { callApprovalsApi, resolveGatewayTarget } from '../../approvals/api-client.js';
import { APPROVAL_STATES, type ApprovalView } from '../../approvals/index.js';
import { parseFlags, reportError, UsageError, writeJson, type CliIo } from '../io.js';

export const GATEWAY_FLAGS_HELP = `Gateway and reviewer:
  --url U      gateway HTTP address (else --config, SLUICE_URL, SLUICE_CONFIG, ./sluice.yaml)
  --config F   read approvals.publicUrl or listen.http from the gateway's sluice.yaml
  --token T    reviewer token (else SLUICE_TOKEN); mint one with
               sluice token mint --config F --role <role with approver: true>
`;

const HELP = `Usage:
  sluice approvals list [--state pending|approved|denied|expired|withdrawn|all] [--json]

List approval requests held by the running gateway, newest first. --state defaults to
pending; "all" lists every state. Reviewers see every request; any other token sees only
its own. --json prints the full requests (statement, parsed facts, approvals so far).

${GATEWAY_FLAGS_HELP}
Approve or deny with: sluice approve ID [--comment C]  ·  sluice deny ID --reason R
`;

const gatewayFlags = {
  url: { type: 'string' },
  config: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

export function formatTable(items: readonly ApprovalView[], now: number): string {
  const rows = items.map((v) => [
    v.id,
    v.state,
    `${v.requester.subject} (${v.requester.role})`,
    v.connection,
    `${v.approvals.length}/${v.required}`,
    v.state === 'pending' ? `in ${ago(v.expiresAt - now)}` : `${ago(now - (v.decidedAt ?? v.createdAt))} ago`,
    oneLine(v.text, 60),
  ]);
  const head = ['ID', 'STATE', 'REQUESTER', 'CONNECTION', 'APPROVALS', 'EXPIRES/DECIDED', 'STATEMENT'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const fmt = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  return [fmt(head), ...rows.map(fmt)].join('\n') + '\n';
}

export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    const [sub, ...rest] = args;
    if (sub === undefined) {
      io.stderr.write(HELP);
      return 2;
    }
    if (sub === 'help' || sub === '--help' || sub === '-h') {
      io.stdout.write(HELP);
      return 0;
    }
    if (sub !== 'list') throw new UsageError(`unknown approvals subcommand "${sub}" (expected list)`);
    const { values } = parseFlags(rest, { ...gatewayFlags, state: { type: 'string' }, json: { type: 'boolean' } });
    if (values.help === true) {
      io.stdout.write(HELP);
      return 0;
    }
    const state = values.state ?? 'pending';
    if (state !== 'all' && !(APPROVAL_STATES as readonly string[]).includes(state)) {
      throw new UsageError(`--state must be one of ${APPROVAL_STATES.join(', ')} or all`);
    }
    const target = resolveGatewayTarget(values, io.env);
    const query = state === 'all' ? '' : `?state=${encodeURIComponent(state)}`;
    const result = (await callApprovalsApi(target, 'GET', query)) as { items?: ApprovalView[] };
    const items = Array.isArray(result.items) ? result.items : [];
    if (values.json === true) {
      writeJson(io, items);
      return 0;
    }
    if (items.length === 0) {
      io.stdout.write(state === 'all' ? 'no approval requests\n' : `no ${state} approval requests\n`);
      return 0;
    }
    io.stdout.write(formatTable(items, Date.now()));
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
