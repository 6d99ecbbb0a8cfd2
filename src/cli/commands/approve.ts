/**
 * `sluice approve ID [--comment C]`: add the reviewer's approval to a held request through the
 * running gateway's REST API. The gateway checks the reviewer's role and separation of duties.
 */
import { callApprovalsApi, resolveGatewayTarget } from '../../approvals/api-client.js';
import type { ApprovalView } from '../../approvals/index.js';
import { parseFlags, reportError, UsageError, writeJson, type CliIo } from '../io.js';
import { GATEWAY_FLAGS_HELP } from './approvals.js';

const HELP = `Usage:
  sluice approve ID [--comment C] [--json]

Approve the held request ID (see sluice approvals list). When the rule needs N approvals,
each distinct reviewer counts once; the statement runs after the last one. You cannot approve
a request you (or your sponsor) made, and your token needs a role with approver: true.

${GATEWAY_FLAGS_HELP}`;

export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseFlags(
      args,
      { url: { type: 'string' }, config: { type: 'string' }, token: { type: 'string' }, comment: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      true,
    );
    if (values.help === true) {
      io.stdout.write(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(`approve takes exactly one request ID\n${HELP}`);
    const id = positionals[0] as string;
    const target = resolveGatewayTarget(values, io.env);
    const view = (await callApprovalsApi(target, 'POST', `/${encodeURIComponent(id)}/approve`, values.comment !== undefined ? { comment: values.comment } : {})) as ApprovalView;
    if (values.json === true) writeJson(io, view);
    else if (view.state === 'approved') io.stdout.write(`approved ${view.id}: the statement is released (approvers: ${view.approvals.map((a) => a.subject).join(', ')})\n`);
    else io.stdout.write(`approval of ${view.id} recorded: ${view.approvals.length} of ${view.required} approvals; still ${view.state}\n`);
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
