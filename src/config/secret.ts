/**
 * Secret references (`env:NAME`, `file:/path`) resolved inside the gateway. A resolved value is
 * wrapped so that printing, logging or JSON-serialising a config never shows it.
 */
import { readFileSync } from 'node:fs';
import { SluiceError } from '../errors.js';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

export class Secret {
  readonly #value: string;
  /** Where the secret came from, safe to show (`env:APPDB_PASSWORD`, `file:/run/secrets/x`, `inline`). */
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }

  /** The only way to read the value. Call it where the secret is used, never to log. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return `[secret ${this.source}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspectSymbol](): string {
    return this.toString();
  }
}

/** Largest secret file read; secrets are short and a huge file is a misconfiguration. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Whether a config string refers to a secret (`env:`, `file:`) rather than holding it inline. */
export function isSecretReference(raw: string): boolean {
  return raw.startsWith('env:') || raw.startsWith('file:');
}

/**
 * Resolve a config string that may be a reference. `where` is the config path, used in errors.
 * Plain strings are allowed (they become `inline` secrets) so a first config works, but the
 * docs steer users to `env:`/`file:`.
 */
export function resolveSecret(raw: string, where: string, env: NodeJS.ProcessEnv = process.env): Secret {
  if (raw.startsWith('env:')) {
    const name = raw.slice(4);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: "${raw}" is not a valid env: reference (expected env:NAME)`);
    }
    const value = env[name];
    if (value === undefined) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: environment variable ${name} is not set`);
    }
    return new Secret(value, raw);
  }
  if (raw.startsWith('file:')) {
    const path = raw.slice(5);
    let text: string;
    try {
      const buf = readFileSync(path);
      if (buf.length > MAX_SECRET_FILE_BYTES) {
        throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: secret file ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
      }
      text = buf.toString('utf8');
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: cannot read secret file ${path} (${code})`);
    }
    // Files written by editors and secret mounts usually end with a newline that is not part of the secret.
    return new Secret(text.replace(/\r?\n$/, ''), raw);
  }
  return new Secret(raw, 'inline');
}
