/**
 * `sluice replay SESSION_ID`: a session's timeline with its real timing — who connected, every
 * statement with its decision and rule, approvals, masked result previews, errors and the end.
 */
import { defaultConfigPath, loadConfigFile } from '../../config/index.js';
import { getSessionTimeline, openAuditStore, sessionRecords, type AuditRecord, type SessionSummary } from '../../audit/index.js';
import { parseFlags, reportError, UsageError, writeJson, type CliIo } from '../io.js';

const HELP = `Usage: sluice replay SESSION_ID [--speed N] [--max-gap SECONDS] [--json] [--config F]

Replay a recorded session in order, pausing as long as the session did between events.
  --speed N        play N times faster (default 1); 0 prints everything at once
  --max-gap S      never pause longer than S seconds between two events (default 10)
  --json           print the session summary and its records as JSON (no pauses)
  --config F       sluice.yaml (default: $SLUICE_CONFIG or ./sluice.yaml)
`;

export interface ReplayDeps {
  /** Injected so tests can observe the pauses without waiting. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export async function run(args: string[], io: CliIo, deps: ReplayDeps = {}): Promise<number> {
  try {
    const { values, positionals } = parseFlags(
      args,
      {
        config: { type: 'string' },
        speed: { type: 'string' },
        'max-gap': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      true,
    );
    if (values.help === true) {
      io.stdout.write(HELP);
      return 0;
    }
    const [id] = positionals;
    if (id === undefined || positionals.length !== 1) throw new UsageError('replay takes one SESSION_ID (see sluice sessions list)');
    const speed = values.speed === undefined ? 1 : Number(values.speed);
    if (!Number.isFinite(speed) || speed < 0) throw new UsageError('--speed must be a number >= 0');
    const maxGapMs = values['max-gap'] === undefined ? 10_000 : Number(values['max-gap']) * 1000;
    if (!Number.isFinite(maxGapMs) || maxGapMs < 0) throw new UsageError('--max-gap must be a number of seconds >= 0');
    const config = loadConfigFile(defaultConfigPath(values.config, io.env), { env: io.env });
    const store = await openAuditStore(config, { readonly: true });
    try {
      // The header's figures are counted by the store; the records are read a page at a time,
      // so a session of any length replays in bounded memory.
      const timeline = await getSessionTimeline(store, id, 1);
      if (timeline === undefined) {
        io.stderr.write(`sluice: no recorded session ${id}\n`);
        return 1;
      }
      if (values.json === true) {
        const events: AuditRecord[] = [];
        for await (const ev of sessionRecords(store, id)) events.push(ev);
        writeJson(io, { session: timeline.session, events });
        return 0;
      }
      const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
      io.stdout.write(formatHeader(timeline.session));
      const t0 = timeline.events[0]?.ts ?? 0;
      let last = t0;
      for await (const ev of sessionRecords(store, id)) {
        if (speed > 0 && ev.ts > last) await sleep(Math.min(ev.ts - last, maxGapMs) / speed);
        last = ev.ts;
        io.stdout.write(formatEvent(ev, t0));
      }
    } finally {
      await store.close();
    }
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}

function formatHeader(s: SessionSummary): string {
  const claims = s.claims ?? {};
  const lines = [
    `session ${s.id}`,
    `  started    ${new Date(s.startedAt).toISOString()}${s.endedAt !== undefined ? `   ended ${new Date(s.endedAt).toISOString()}` : '   (no end recorded)'}`,
    `  identity   ${s.subject ?? '?'}  (issuer ${s.issuer ?? '?'})`,
    `  role       ${s.role ?? '?'}${s.roles !== undefined ? `  (granted: ${s.roles.join(', ')})` : ''}`,
  ];
  if (s.model !== undefined || s.sponsor !== undefined) lines.push(`  agent      model ${s.model ?? '-'}  sponsor ${s.sponsor ?? '-'}`);
  const ci = ['repository', 'workflow', 'run_id', 'run_attempt', 'job_workflow_ref', 'ref'].filter((k) => claims[k] !== undefined).map((k) => `${k}=${String(claims[k])}`);
  if (ci.length > 0) lines.push(`  ci         ${ci.join('  ')}`);
  lines.push(`  source     ${s.source ?? '?'}${s.client !== undefined ? `  client ${s.client}` : ''}`);
  lines.push(`  target     ${s.connection ?? '?'} (${s.protocol ?? '?'}) → ${s.upstream?.target ?? '?'} as ${s.upstream?.account ?? '?'}`);
  lines.push(`  summary    ${s.commands} commands, ${s.denied} denied, ${s.errors} errors, ${s.approvals} approvals`);
  return lines.join('\n') + '\n\n';
}

function indent(text: string, pad: string): string {
  return text.split('\n').map((l) => pad + l).join('\n');
}

/** `2 rows, 64 bytes, 3 ms`, plus what the connector noted: PostgreSQL command tags, the HTTP status, a stream's byte counts. */
function resultStats(ev: AuditRecord): string {
  const d = ev.details;
  const parts = [ev.rows !== undefined ? `${ev.rows} rows` : '', ev.bytes !== undefined ? `${ev.bytes} bytes` : '', ev.durationMs !== undefined ? `${ev.durationMs} ms` : ''];
  if (d !== undefined) {
    if (Array.isArray(d.tags) && d.tags.length > 0) parts.push(d.tags.map(String).join(', '));
    if (typeof d.status === 'number') parts.push(`HTTP ${d.status}`);
    if (d.stream === 'end' && typeof d.requestBytes === 'number' && typeof d.responseBytes === 'number') parts.push(`stream closed after ${d.requestBytes} bytes in, ${d.responseBytes} out`);
  }
  return parts.filter((x) => x !== '').join(', ');
}

/** A result's error, mask counts and masked preview, one per line. */
function resultLines(ev: AuditRecord, pad: string): string[] {
  const out: string[] = [];
  if (ev.error !== undefined) out.push(`${pad}error ${ev.error.code ?? ''} ${ev.error.message}`.replace(/\s+$/, ''));
  if (ev.mask !== undefined && ev.mask.length > 0) out.push(`${pad}masked: ${ev.mask.map((m) => `${m.detector}${m.column !== undefined ? `@${m.column}` : ''}×${m.count}`).join(', ')}`);
  if (ev.preview !== undefined) {
    out.push(`${pad}${ev.preview.columns.join(' | ')}`);
    for (const row of ev.preview.rows) out.push(`${pad}${row.map((c) => (c === null ? 'NULL' : c)).join(' | ')}`);
    if (ev.preview.truncated === true) out.push(`${pad}… (preview truncated)`);
  }
  return out;
}

function offset(ts: number, t0: number): string {
  return `+${(Math.max(0, ts - t0) / 1000).toFixed(3)}s`.padStart(10);
}

export function formatEvent(ev: AuditRecord, t0: number): string {
  const at = offset(ev.ts, t0);
  const pad = ' '.repeat(12);
  const out: string[] = [];
  switch (ev.type) {
    case 'session.start':
      out.push(`${at}  CONNECT   ${ev.identity?.subject ?? '?'} as ${ev.role ?? '?'} from ${ev.source ?? '?'}`);
      break;
    case 'session.end':
      out.push(`${at}  END       ${[ev.outcome ?? '', ev.error?.message ?? '', ev.details !== undefined ? JSON.stringify(ev.details) : ''].filter((x) => x !== '').join(' ')}`.trimEnd());
      break;
    case 'command': {
      const d = ev.decision;
      const verdict = d === undefined ? '' : `${d.effect.toUpperCase()} by ${d.rule}${d.reason !== undefined ? ` (${d.reason})` : ''}`;
      // `pending`: decided and on its way upstream; its RESULT follows. A pure read's record
      // carries its result as well (rows counted): shown as the same two lines.
      const withResult = ev.rows !== undefined && ev.outcome !== undefined && ev.outcome !== 'pending' && ev.outcome !== 'denied';
      const label = withResult || ev.outcome === undefined || ev.outcome === 'pending' ? 'COMMAND' : ev.outcome.toUpperCase();
      // Such a record is written when the result is in: the command started durationMs before.
      const sent = withResult && ev.durationMs !== undefined ? offset(ev.ts - ev.durationMs, t0) : at;
      out.push(`${sent}  ${label.padEnd(9)} ${verdict}`);
      if (ev.command !== undefined) out.push(indent(ev.command.text, pad + '> '));
      const stats = resultStats(ev);
      if (withResult) out.push(`${at}  RESULT    ${ev.outcome}${stats !== '' ? `  ${stats}` : ''}`);
      else if (stats !== '') out.push(`${pad}${stats}`);
      out.push(...resultLines(ev, pad));
      break;
    }
    case 'command.result': {
      // A stream's recorded text (Kubernetes exec/attach: stdin, stdout, stderr, error channels).
      const d = ev.details;
      if (d !== undefined && typeof d.stream === 'string' && typeof d.data === 'string') {
        const head = `${at}  ${d.stream.toUpperCase().padEnd(9)} `;
        out.push(head + indent(d.data.replace(/\n$/, ''), ' '.repeat(head.length)).slice(head.length));
        break;
      }
      const stats = resultStats(ev);
      out.push(`${at}  RESULT    ${ev.outcome ?? ''}${stats !== '' ? `  ${stats}` : ''}`.trimEnd());
      out.push(...resultLines(ev, pad));
      break;
    }
    case 'approval.requested':
    case 'approval.approved':
    case 'approval.denied':
    case 'approval.expired':
    case 'approval.withdrawn': {
      const a = ev.approval;
      const what = ev.type.slice('approval.'.length).toUpperCase();
      out.push(`${at}  APPROVAL  ${what} ${a?.id ?? ''}${a?.approver !== undefined ? ` by ${a.approver}` : ''}${a?.approvers !== undefined ? ` (approvers: ${a.approvers.join(', ')})` : ''}${a?.reason !== undefined ? `: ${a.reason}` : ''}`);
      break;
    }
    case 'mask.summary':
      out.push(`${at}  MASKED    ${(ev.mask ?? []).map((m) => `${m.detector}${m.column !== undefined ? `@${m.column}` : ''}×${m.count}`).join(', ')}`);
      break;
    case 'upstream.error':
      out.push(`${at}  UPSTREAM  ${ev.error?.code ?? ''} ${ev.error?.message ?? ''}`.trimEnd());
      break;
    default:
      out.push(`${at}  ${ev.type}${ev.outcome !== undefined ? ` ${ev.outcome}` : ''}${ev.error !== undefined ? ` ${ev.error.message}` : ''}`);
  }
  return out.join('\n') + '\n';
}
