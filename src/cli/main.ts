/**
 * `sluice` — one binary, subcommands loaded on demand so `sluice mask` does not pay for the SQL
 * parser and `sluice token` does not open the audit store.
 */
import { processIo, reportError, type CliIo, type CommandRun } from './io.js';

const COMMANDS: Readonly<Record<string, { readonly summary: string; readonly load: () => Promise<{ run: CommandRun }> }>> = {
  serve: { summary: 'run the gateway (--config F)', load: () => import('./commands/serve.js') },
  demo: { summary: 'embedded PostgreSQL + gateway + demo token, ready to try', load: () => import('./commands/demo.js') },
  token: { summary: 'mint or inspect tokens (local issuer)', load: () => import('./commands/token.js') },
  policy: { summary: 'check a statement against the policy, offline', load: () => import('./commands/policy.js') },
  mask: { summary: 'mask stdin to stdout with the detectors', load: () => import('./commands/mask.js') },
  sessions: { summary: 'list recorded sessions', load: () => import('./commands/sessions.js') },
  replay: { summary: 'replay a recorded session', load: () => import('./commands/replay.js') },
  audit: { summary: 'verify, export or report on the audit log (NIST SP 800-53 controls)', load: () => import('./commands/audit.js') },
  approvals: { summary: 'list approval requests (running gateway)', load: () => import('./commands/approvals.js') },
  approve: { summary: 'approve a held command: approve ID [--comment C]', load: () => import('./commands/approve.js') },
  deny: { summary: 'deny a held command: deny ID --reason R', load: () => import('./commands/deny.js') },
};

export const USAGE = `sluice — an access gateway for AI agents

Usage: sluice <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Every command takes --config F (default ./sluice.yaml, or SLUICE_CONFIG).
Run 'sluice <command> --help' for a command's options.
`;

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    io.stdout.write('sluice 0.1.0\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`sluice: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest, io);
  } catch (err) {
    return reportError(io, err);
  }
}

const isEntry = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sluice: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
