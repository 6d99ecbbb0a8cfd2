/**
 * Load and validate `sluice.yaml`. Every problem is reported with the path to the bad key and
 * what was expected; secret references are resolved here and never printed.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { SluiceError } from '../errors.js';
import { parseDuration } from './duration.js';
import { resolveSecret, Secret } from './secret.js';
import { configSchema, type RawConfig, type RawConnection, type RawIssuer } from './schema.js';

/** Config files are small; a huge one is a mistake or an attack on the YAML parser. */
const MAX_CONFIG_BYTES = 1024 * 1024;

export const DEFAULTS = {
  clockSkewMs: 30_000,
  maxClockSkewMs: 60_000,
  maxTokenLifetimeMs: 12 * 3_600_000,
  /**
   * How long a session may run past its token's expiry. CI tokens are short (GitHub Actions'
   * live 5 minutes) and a migration is many statements on one connection: an hour lets a job
   * finish while still bounding what a stolen or leaked session can do.
   */
  tokenExpiryGraceMs: 3_600_000,
  maxTokenExpiryGraceMs: 24 * 3_600_000,
  /**
   * How long a PostgreSQL statement still running when its session's deadline comes may go on
   * before it is cancelled: long enough for a query that was nearly done, short enough that a
   * session cannot outlive its deadline by a statement of any length.
   */
  tokenExpiryDrainMs: 60_000,
  maxTokenExpiryDrainMs: 3_600_000,
  maxTokenBytes: 8192,
  maxConnections: 1000,
  maxMessageBytes: 64 * 1024 * 1024,
  localAudience: 'sluice',
} as const;

export interface ResolvedRemoteIssuer {
  readonly kind: 'remote';
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly jwksUri?: string;
  readonly algorithms: readonly string[];
  readonly maxTokenLifetimeMs: number;
  readonly subjectClaim?: string;
}

export interface ResolvedLocalIssuer {
  readonly kind: 'local';
  readonly audience: string;
  readonly maxTokenLifetimeMs: number;
}

export type ResolvedIssuer = ResolvedRemoteIssuer | ResolvedLocalIssuer;

export interface PostgresUpstream {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: Secret;
  readonly sslmode: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  readonly ca?: string;
  readonly connectTimeoutMs: number;
}

export type ResolvedConnection =
  | (Omit<Extract<RawConnection, { type: 'postgres' }>, 'upstream'> & { readonly upstream: PostgresUpstream })
  | Exclude<RawConnection, { type: 'postgres' }>;

export interface SluiceConfig {
  /** Absolute path of the file this came from (or `<inline>`). */
  readonly path: string;
  readonly baseDir: string;
  readonly raw: RawConfig;
  readonly node: string;
  readonly dataDir: string;
  readonly listen: { readonly postgres?: string; readonly http?: string };
  readonly store: { readonly sqlite: string } | { readonly postgres: Secret };
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly allowInsecureRemote: boolean;
  readonly limits: { readonly maxConnections: number; readonly maxMessageBytes: number; readonly idleTimeoutMs: number };
  readonly identity: {
    readonly issuers: readonly ResolvedIssuer[];
    readonly roles: RawConfig['identity']['roles'];
    readonly clockSkewMs: number;
    readonly maxTokenBytes: number;
    /** `end`: sessions end `tokenExpiryGraceMs` after their token expires (plus the clock skew); `keep`: they live on. */
    readonly onTokenExpiry: 'end' | 'keep';
    readonly tokenExpiryGraceMs: number;
    /** Roles with a grace of their own (`identity.roles[].tokenExpiryGrace`). */
    readonly roleTokenExpiryGraceMs: ReadonlyMap<string, number>;
    /** How long a statement running at the deadline may go on before it is cancelled upstream. */
    readonly tokenExpiryDrainMs: number;
  };
  readonly connections: readonly ResolvedConnection[];
  readonly policies: RawConfig['policies'];
  readonly audit: NonNullable<RawConfig['audit']>;
  readonly approvals: NonNullable<RawConfig['approvals']>;
  /** Resolve any further secret reference (mask keys, upstream auth) with the same rules. */
  readonly secret: (raw: string, where: string) => Secret;
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
}

/** Default config path: `--config`, else `SLUICE_CONFIG`, else `./sluice.yaml`. */
export function defaultConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.SLUICE_CONFIG ?? 'sluice.yaml');
}

export function loadConfigFile(path: string, options: LoadOptions = {}): SluiceConfig {
  const abs = resolve(path);
  let text: string;
  try {
    const buf = readFileSync(abs);
    if (buf.length > MAX_CONFIG_BYTES) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${abs}: config is larger than ${MAX_CONFIG_BYTES} bytes`);
    }
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file (pass --config or set SLUICE_CONFIG)' : code ?? String(err);
    throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot read config ${abs}: ${why}`);
  }
  return parseConfig(text, abs, options);
}

/** Parse YAML text. `path` names the source in errors and anchors relative paths. */
export function parseConfig(text: string, path: string, options: LoadOptions = {}): SluiceConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0] as { message: string };
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${path}: YAML syntax error: ${first.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${path}: invalid config:\n${formatIssues(parsed.error.issues)}`);
  }
  return resolveConfig(parsed.data, path, options.env ?? process.env);
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 20)
    .map((i) => `  - ${formatPath(i.path)}: ${i.message}`)
    .join('\n');
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function invalid(message: string): never {
  throw new SluiceError('SLUICE_CONFIG_INVALID', message);
}

function resolveConfig(raw: RawConfig, path: string, env: NodeJS.ProcessEnv): SluiceConfig {
  const baseDir = path === '<inline>' ? process.cwd() : dirname(path);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const secret = (value: string, where: string): Secret => resolveSecret(value, where, env);

  const clockSkewMs = raw.identity.clockSkew === undefined ? DEFAULTS.clockSkewMs : parseDuration(raw.identity.clockSkew, 'identity.clockSkew');
  if (clockSkewMs > DEFAULTS.maxClockSkewMs) invalid(`identity.clockSkew: at most 60s is allowed (got ${clockSkewMs / 1000}s)`);
  const tokenExpiryGraceMs =
    raw.identity.tokenExpiryGrace === undefined ? DEFAULTS.tokenExpiryGraceMs : parseDuration(raw.identity.tokenExpiryGrace, 'identity.tokenExpiryGrace');
  if (tokenExpiryGraceMs > DEFAULTS.maxTokenExpiryGraceMs) invalid(`identity.tokenExpiryGrace: at most 24h is allowed (got ${tokenExpiryGraceMs / 3_600_000}h); use onTokenExpiry: keep for sessions without an end`);
  const roleTokenExpiryGraceMs = new Map<string, number>();
  raw.identity.roles.forEach((r, i) => {
    if (r.tokenExpiryGrace === undefined) return;
    const ms = parseDuration(r.tokenExpiryGrace, `identity.roles[${i}].tokenExpiryGrace`);
    if (ms > DEFAULTS.maxTokenExpiryGraceMs) invalid(`identity.roles[${i}].tokenExpiryGrace: at most 24h is allowed (got ${ms / 3_600_000}h)`);
    roleTokenExpiryGraceMs.set(r.name, ms);
  });
  const tokenExpiryDrainMs =
    raw.identity.tokenExpiryDrain === undefined ? DEFAULTS.tokenExpiryDrainMs : parseDuration(raw.identity.tokenExpiryDrain, 'identity.tokenExpiryDrain');
  if (tokenExpiryDrainMs > DEFAULTS.maxTokenExpiryDrainMs) invalid(`identity.tokenExpiryDrain: at most 1h is allowed (got ${tokenExpiryDrainMs / 60_000}m); a longer statement belongs in a longer grace (identity.tokenExpiryGrace)`);
  const globalMaxLifetime =
    raw.identity.maxTokenLifetime === undefined ? DEFAULTS.maxTokenLifetimeMs : parseDuration(raw.identity.maxTokenLifetime, 'identity.maxTokenLifetime');

  let locals = 0;
  const seenIssuers = new Set<string>();
  const issuers = raw.identity.issuers.map((iss: RawIssuer, i): ResolvedIssuer => {
    const where = `identity.issuers[${i}]`;
    const maxTokenLifetimeMs = iss.maxTokenLifetime === undefined ? globalMaxLifetime : parseDuration(iss.maxTokenLifetime, `${where}.maxTokenLifetime`);
    if ('local' in iss) {
      locals += 1;
      return { kind: 'local', audience: iss.audience ?? DEFAULTS.localAudience, maxTokenLifetimeMs };
    }
    const url = new URL(iss.issuer);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      invalid(`${where}.issuer: ${iss.issuer} must use https:// (http:// is allowed only on loopback)`);
    }
    if (iss.jwksUri !== undefined) {
      const j = new URL(iss.jwksUri);
      if (j.protocol !== 'https:' && !(j.protocol === 'http:' && isLoopbackHost(j.hostname))) {
        invalid(`${where}.jwksUri: must use https:// (http:// is allowed only on loopback)`);
      }
    }
    if (seenIssuers.has(iss.issuer)) invalid(`${where}.issuer: ${iss.issuer} is listed twice`);
    seenIssuers.add(iss.issuer);
    const algorithms = iss.algorithms ?? ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
    for (const alg of algorithms) {
      if (alg === 'none' || alg.startsWith('HS')) invalid(`${where}.algorithms: ${alg} is not allowed (asymmetric algorithms only)`);
    }
    return {
      kind: 'remote',
      issuer: iss.issuer,
      audience: typeof iss.audience === 'string' ? [iss.audience] : iss.audience,
      ...(iss.jwksUri !== undefined ? { jwksUri: iss.jwksUri } : {}),
      algorithms,
      maxTokenLifetimeMs,
      ...(iss.subjectClaim !== undefined ? { subjectClaim: iss.subjectClaim } : {}),
    };
  });
  if (locals > 1) invalid('identity.issuers: the local issuer is listed more than once');

  const roleNames = new Set<string>();
  raw.identity.roles.forEach((r, i) => {
    if (roleNames.has(r.name)) invalid(`identity.roles[${i}].name: role ${r.name} is defined twice`);
    roleNames.add(r.name);
  });

  const connNames = new Set<string>();
  const connections = raw.connections.map((c, i): ResolvedConnection => {
    const where = `connections[${i}]`;
    if (connNames.has(c.name)) invalid(`${where}.name: connection ${c.name} is defined twice`);
    connNames.add(c.name);
    if (c.type !== 'postgres') return c;
    const u = c.upstream;
    return {
      ...c,
      upstream: {
        host: u.host,
        port: u.port,
        database: u.database,
        user: u.user,
        ...(u.password !== undefined ? { password: secret(u.password, `${where}.upstream.password`) } : {}),
        sslmode: u.sslmode,
        ...(u.ca !== undefined ? { ca: abs(u.ca) } : {}),
        connectTimeoutMs: u.connectTimeout === undefined ? 10_000 : parseDuration(u.connectTimeout, `${where}.upstream.connectTimeout`),
      },
    };
  });

  raw.policies.forEach((p, i) => {
    if (!roleNames.has(p.role) && p.role !== '*') invalid(`policies[${i}].role: role ${p.role} is not defined under identity.roles`);
    if (!connNames.has(p.connection) && p.connection !== '*') invalid(`policies[${i}].connection: connection ${p.connection} is not defined under connections`);
  });

  return {
    path,
    baseDir,
    raw,
    node: raw.node ?? process.env.HOSTNAME ?? 'sluice',
    dataDir: abs(raw.dataDir ?? './data'),
    listen: raw.listen,
    store: 'sqlite' in raw.store ? { sqlite: abs(raw.store.sqlite) } : { postgres: secret(raw.store.postgres, 'store.postgres') },
    ...(raw.tls !== undefined ? { tls: { cert: abs(raw.tls.cert), key: abs(raw.tls.key) } } : {}),
    allowInsecureRemote: raw.allowInsecureRemote ?? false,
    limits: {
      maxConnections: raw.limits?.maxConnections ?? DEFAULTS.maxConnections,
      maxMessageBytes: raw.limits?.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
      idleTimeoutMs: raw.limits?.idleTimeout === undefined ? 0 : parseDuration(raw.limits.idleTimeout, 'limits.idleTimeout'),
    },
    identity: {
      issuers,
      roles: raw.identity.roles,
      clockSkewMs,
      maxTokenBytes: raw.identity.maxTokenBytes ?? DEFAULTS.maxTokenBytes,
      onTokenExpiry: raw.identity.onTokenExpiry ?? 'end',
      tokenExpiryGraceMs,
      roleTokenExpiryGraceMs,
      tokenExpiryDrainMs,
    },
    connections,
    policies: raw.policies,
    audit: raw.audit ?? {},
    approvals: raw.approvals ?? {},
    secret,
  };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
