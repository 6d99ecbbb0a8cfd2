/**
 * `sluice deny ID --reason R`: end a held request; the agent's statement fails with the reason.
 */
import { callApprovalsApi, resolveGatewayTarget } from '../../approvals/api-client.js';
import type { ApprovalView } from '../../approvals/index.js';
import { parseFlags, reportError, UsageError, writeJson, type CliIo } from '../io.js';
import { GATEWAY_FLAGS_HELP } from './approvals.js';

const HELP = `Usage:
  sluice deny ID --reason R [--json]

Deny the held request ID. One denial by any allowed reviewer ends the request, whatever
approvals it already has; the agent gets an error naming the reason, and its session
stays usable. --reason is required and is recorded in the audit log.

${GATEWAY_FLAGS_HELP}`;

export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseFlags(
      args,
      { url: { type: 'string' }, config: { type: 'string' }, token: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      true,
    );
    if (values.help === true) {
      io.stdout.write(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(`deny takes exactly one request ID\n${HELP}`);
    if (values.reason === undefined || values.reason.trim() === '') throw new UsageError('deny needs --reason "why" (it is shown to the agent and recorded)');
    const id = positionals[0] as string;
    const target = resolveGatewayTarget(values, io.env);
    const view = (await callApprovalsApi(target, 'POST', `/${encodeURIComponent(id)}/deny`, { reason: values.reason })) as ApprovalView;
    if (values.json === true) writeJson(io, view);
    else io.stdout.write(`denied ${view.id}: ${view.reason ?? values.reason}\n`);
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
