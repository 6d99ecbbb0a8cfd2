/**
 * What a CLI command gets: its arguments, streams and environment, injected so tests can run
 * commands in-process. Every command module exports `run(args, io): Promise<number>` (exit code).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SluiceError } from '../errors.js';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
}

export type CommandRun = (args: string[], io: CliIo) => Promise<number>;

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** Strict flag parsing: unknown flags are a usage error (exit 2), never ignored. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  allowPositionals = false,
): { values: { [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : T[K]['multiple'] extends true ? string[] : string }; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options, allowPositionals, strict: true });
    return parsed as never;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function writeJson(io: CliIo, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Print an error the way every command does: `sluice: CODE: message`. Returns the exit code. */
export function reportError(io: CliIo, err: unknown): number {
  if (err instanceof UsageError) {
    io.stderr.write(`sluice: usage: ${err.message}\n`);
    return 2;
  }
  if (err instanceof SluiceError) {
    io.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
    return 1;
  }
  io.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

/**
 * Run `sluice <group> <sub> …`: the named subcommand, help on `help`/`--help`/`-h` (exit 0), help
 * on stderr with exit 2 when none is given, a usage error for an unknown one. Errors are reported
 * the same way for every command.
 */
export async function runSubcommand(
  group: string,
  args: string[],
  io: CliIo,
  help: string,
  subcommands: Readonly<Record<string, (rest: string[], io: CliIo) => Promise<number>>>,
): Promise<number> {
  try {
    const [sub, ...rest] = args;
    if (sub === 'help' || sub === '--help' || sub === '-h') {
      io.stdout.write(help);
      return 0;
    }
    if (sub === undefined) {
      io.stderr.write(help);
      return 2;
    }
    const handler = Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
    if (handler === undefined) {
      throw new UsageError(`unknown ${group} subcommand "${sub}" (expected ${Object.keys(subcommands).join(', ')}; see sluice ${group} --help)`);
    }
    return await handler(rest, io);
  } catch (err) {
    return reportError(io, err);
  }
}
