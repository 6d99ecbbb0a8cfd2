/**
 * `sluice mask [--config F] [--connection C] [--stats]`: filter stdin to stdout through the
 * masking engine — the configured detectors of one connection, or the default set (everything
 * but IP addresses) when there is no config.
 *
 * Input is masked in runs of whole lines (LineCarry, as exec output is): a PEM private key block
 * is held back until its END line arrives or `MAX_HOLD` is reached; at the cap the held text is
 * masked as it stands, and an unterminated key block is masked to the end of the run (fail
 * closed).
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { SluiceError } from '../../errors.js';
import { defaultConfigPath, loadConfigFile } from '../../config/index.js';
import { createMasker, defaultMasker, LineCarry, MaskStats, type CarryOut, type Masker } from '../../masking/index.js';
import { parseFlags, reportError, UsageError, type CliIo } from '../io.js';

/** Largest run held back waiting for a line end or a PEM END line. */
const MAX_HOLD = 1024 * 1024;

const HELP = `Usage: sluice mask [--config F] [--connection C] [--stats]

Copies stdin to stdout through the masking detectors, line by line (a PEM block is held until
its END line). With a config, the connection's mask settings apply (--connection picks one when
there are several); with no config (and no ./sluice.yaml), every built-in detector except IP
addresses. --stats writes the counts per detector to stderr as JSON, never the values.
`;

export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    const { values } = parseFlags(args, {
      config: { type: 'string' },
      connection: { type: 'string' },
      stats: { type: 'boolean' },
      help: { type: 'boolean' },
    });
    if (values.help === true) {
      io.stdout.write(HELP);
      return 0;
    }
    const masker = chooseMasker(values.config, values.connection, io.env);
    const stats = values.stats === true ? new MaskStats() : undefined;
    await filter(io, masker, stats);
    if (stats !== undefined) io.stderr.write(`${JSON.stringify({ total: stats.total, detections: stats.toJSON() })}\n`);
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}

function chooseMasker(configFlag: string | undefined, connection: string | undefined, env: NodeJS.ProcessEnv): Masker {
  const explicit = configFlag !== undefined || env.SLUICE_CONFIG !== undefined;
  const path = defaultConfigPath(configFlag, env);
  if (!explicit && !existsSync(path)) {
    if (connection !== undefined) throw new UsageError('--connection needs a config (--config F or ./sluice.yaml)');
    return defaultMasker();
  }
  const config = loadConfigFile(path, { env });
  const conns = config.connections;
  let index: number;
  if (connection !== undefined) {
    index = conns.findIndex((c) => c.name === connection);
    if (index < 0) throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `connection ${connection} is not defined in ${config.path}`);
  } else if (conns.length === 1) {
    index = 0;
  } else if (conns.length === 0) {
    return defaultMasker();
  } else {
    throw new UsageError(`${config.path} defines several connections; pass --connection (one of ${conns.map((c) => c.name).join(', ')})`);
  }
  const conn = conns[index]!;
  return createMasker(conn.mask, { secret: config.secret, where: `connections[${index}].mask` });
}

async function filter(io: CliIo, masker: Masker, stats: MaskStats | undefined): Promise<void> {
  const carry = new LineCarry((text) => masker.maskText(text, stats), MAX_HOLD);
  const write = async (out: CarryOut | undefined): Promise<void> => {
    if (out === undefined || out.data.length === 0) return;
    if (!io.stdout.write(out.data)) await once(io.stdout, 'drain');
  };
  for await (const chunk of io.stdin) await write(carry.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer)));
  await write(carry.flush(true));
}
