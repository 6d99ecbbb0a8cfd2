/** `sluice serve --config F`: run the gateway until SIGINT/SIGTERM; SIGHUP reloads its policies. */
import { defaultConfigPath, loadConfigFile } from '../../config/index.js';
import { startGateway } from '../../server/gateway.js';
import { parseFlags, type CliIo } from '../io.js';

const HELP = `Usage: sluice serve [--config F]

Runs the gateway with the listeners named under 'listen:' in the config.
Stops gracefully on SIGINT or SIGTERM (sessions get a FATAL "shutting down").
SIGHUP re-reads the config: a change to 'policies' applies at once, to sessions already
open too; a change to any other section needs a restart, and the reload is refused with
nothing applied. Each attempt is recorded (config.change) and logged on stderr.
`;

export async function run(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { config: { type: 'string' }, help: { type: 'boolean' } });
  if (values.help === true) {
    io.stdout.write(HELP);
    return 0;
  }
  const path = defaultConfigPath(values.config, io.env);
  const config = loadConfigFile(path, { env: io.env });
  const gw = await startGateway(config, { log: (line) => io.stderr.write(line + '\n') });
  const reload = (): void => {
    gw.reload(() => loadConfigFile(path, { env: io.env })).then(
      (r) => io.stderr.write(`sluice: ${r.message}\n`),
      (err: unknown) => io.stderr.write(`sluice: config reload failed: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  };
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', reload);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', reload);
    // Announced only once the signals are handled: a supervisor that reloads as soon as it reads
    // this line must not hit SIGHUP's default action (exit).
    const a = gw.addresses;
    if (a.postgres !== undefined) io.stdout.write(`sluice: postgres listener on ${a.postgres.host}:${a.postgres.port}\n`);
    if (a.http !== undefined) {
      const scheme = gw.config.tls !== undefined ? 'https' : 'http';
      io.stdout.write(`sluice: http listener on ${scheme}://${a.http.host}:${a.http.port} (web console at /console/)\n`);
    }
  });
  io.stdout.write('sluice: shutting down\n');
  await gw.close();
  return 0;
}
