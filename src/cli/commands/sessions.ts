/** `sluice sessions list`: recorded sessions, newest first, read from the audit store (AU-6). */
import { defaultConfigPath, loadConfigFile } from '../../config/index.js';
import { listSessions, openAuditStore, parseSince, type SessionSummary } from '../../audit/index.js';
import { parseFlags, reportError, UsageError, writeJson, type CliIo } from '../io.js';

const HELP = `Usage: sluice sessions list [--json] [--subject S] [--connection C] [--since T] [--limit N] [--config F]

List recorded sessions, newest first.
  --subject S     only sessions of this token subject
  --connection C  only sessions to this connection
  --since T       a date (2026-11-01, 2026-11-01T08:00:00Z) or a duration back from now (24h, 7d)
  --limit N       at most N sessions (default 100)
  --json          JSON array instead of a table
  --config F      sluice.yaml (default: $SLUICE_CONFIG or ./sluice.yaml)
`;

export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
      io.stdout.write(HELP);
      return sub === undefined ? 2 : 0;
    }
    if (sub !== 'list') throw new UsageError(`unknown sessions command "${sub}" (see sluice sessions --help)`);
    const { values } = parseFlags(rest, {
      config: { type: 'string' },
      json: { type: 'boolean' },
      subject: { type: 'string' },
      connection: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help === true) {
      io.stdout.write(HELP);
      return 0;
    }
    let since: number | undefined;
    try {
      since = values.since === undefined ? undefined : parseSince(values.since, Date.now());
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const limit = values.limit === undefined ? 100 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer');
    const config = loadConfigFile(defaultConfigPath(values.config, io.env), { env: io.env });
    const store = await openAuditStore(config, { readonly: true });
    let sessions: SessionSummary[];
    try {
      sessions = await listSessions(store, {
        ...(values.subject !== undefined ? { subject: values.subject } : {}),
        ...(values.connection !== undefined ? { connection: values.connection } : {}),
        ...(since !== undefined ? { since } : {}),
        limit,
      });
    } finally {
      await store.close();
    }
    if (values.json === true) {
      writeJson(io, sessions);
      return 0;
    }
    io.stdout.write(formatTable(sessions));
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}

function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function formatTable(sessions: readonly SessionSummary[]): string {
  if (sessions.length === 0) return 'no sessions recorded\n';
  const header = ['SESSION', 'STARTED (UTC)', 'DURATION', 'SUBJECT', 'ROLE', 'CONNECTION', 'SOURCE', 'CMDS', 'DENIED', 'ERRORS', 'ENDED'];
  const rows = sessions.map((s) => [
    s.id,
    new Date(s.startedAt).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z'),
    s.endedAt === undefined ? 'open' : formatDurationMs(s.endedAt - s.startedAt),
    s.subject ?? '-',
    s.role ?? '-',
    s.connection ?? '-',
    s.source ?? '-',
    String(s.commands),
    String(s.denied),
    String(s.errors),
    s.endedAt === undefined ? '-' : (s.endReason ?? '?'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}
