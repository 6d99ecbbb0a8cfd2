/**
 * `sluice token mint` and `sluice token inspect`: the local issuer from the command line.
 * Minting prints only the token, so `export SLUICE_TOKEN=$(sluice token mint ...)` works;
 * inspect prints a JSON verdict and exits 0 only for a token the gateway would accept.
 */
import { defaultConfigPath, loadConfigFile, parseDuration } from '../../config/index.js';
import { SluiceError } from '../../errors.js';
import { inspectToken, mintLocalToken } from '../../identity/index.js';
import { parseFlags, runSubcommand, UsageError, writeJson, type CliIo } from '../io.js';

const HELP = `Usage:
  sluice token mint --config F --role R [--role R2] [--subject S] [--ttl 15m] [--model M]
  sluice token inspect --config F TOKEN|-

mint     Sign a short-lived token with the local issuer (identity.issuers: - local: true)
         and print it on stdout. --role may be repeated; each role must be defined under
         identity.roles. --subject defaults to <os user>@local, --ttl to 15m (at most the
         local issuer's maxTokenLifetime). --model names the AI model the token is for.
inspect  Verify TOKEN as the gateway would and print a JSON verdict
         {"valid", "subject", "issuer", "roles", "expiresAt", "error"?}.
         Exit 0 if valid, 1 if not. Pass - to read the token from stdin (keeps it out
         of shell history and the process list).

--config defaults to $SLUICE_CONFIG, else ./sluice.yaml.
`;

/** A token on stdin is one line; anything far larger is not a token. */
const MAX_STDIN_BYTES = 128 * 1024;

export async function run(args: string[], io: CliIo): Promise<number> {
  return runSubcommand('token', args, io, HELP, { mint: runMint, inspect: runInspect });
}

async function runMint(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, {
    config: { type: 'string' },
    role: { type: 'string', multiple: true },
    subject: { type: 'string' },
    ttl: { type: 'string' },
    model: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    io.stdout.write(HELP);
    return 0;
  }
  const roles = values.role ?? [];
  if (roles.length === 0) throw new UsageError('token mint needs at least one --role');
  const ttlMs = values.ttl === undefined ? undefined : parseTtl(values.ttl);
  const config = loadConfigFile(defaultConfigPath(values.config, io.env), { env: io.env });
  const token = await mintLocalToken(config, {
    role: roles,
    ...(values.subject !== undefined ? { subject: values.subject } : {}),
    ...(ttlMs !== undefined ? { ttlMs } : {}),
    ...(values.model !== undefined ? { model: values.model } : {}),
  });
  io.stdout.write(`${token}\n`);
  return 0;
}

async function runInspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help === true) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('token inspect takes exactly one TOKEN (or - for stdin)');
  const arg = positionals[0] as string;
  const token = arg === '-' ? await readStdinToken(io) : arg;
  const config = loadConfigFile(defaultConfigPath(values.config, io.env), { env: io.env });
  const verdict = await inspectToken(config, token);
  writeJson(io, verdict);
  return verdict.valid ? 0 : 1;
}

function parseTtl(text: string): number {
  try {
    return parseDuration(text, '--ttl');
  } catch (err) {
    throw new UsageError(err instanceof SluiceError ? err.message : `--ttl: "${text}" is not a duration`);
  }
}

async function readStdinToken(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of io.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > MAX_STDIN_BYTES) throw new SluiceError('SLUICE_TOKEN_TOO_LARGE', `token on stdin is larger than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}
