/**
 * `audit.stream` entries checked and resolved once, at startup: a bad destination stops the
 * gateway with SLUICE_CONFIG_INVALID naming its config path, never fails later on a record.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { SluiceError } from '../../errors.js';
import { isLoopbackHost, type SluiceConfig } from '../../config/load-config.js';
import type { Secret } from '../../config/secret.js';
import type { ExportFormat } from '../export/export-records.js';

export interface HttpDestination {
  readonly kind: 'http';
  /** `audit.stream[i]`, for messages. */
  readonly where: string;
  /** Safe to log: scheme, host and port only (a path or query may carry a token). */
  readonly label: string;
  /** Name of the store cursor that remembers the last acknowledged seq. */
  readonly cursor: string;
  readonly format: ExportFormat;
  readonly url: URL;
  readonly headers: ReadonlyMap<string, Secret>;
}

export interface SyslogDestination {
  readonly kind: 'syslog';
  readonly where: string;
  readonly label: string;
  readonly cursor: string;
  readonly format: ExportFormat;
  readonly protocol: 'udp' | 'tcp';
  readonly host: string;
  readonly port: number;
}

export type StreamDestination = HttpDestination | SyslogDestination;

/** RFC 9110 §5.6.2 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Set by fetch from the body and target; a configured value would be wrong or smuggling. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect']);

function invalid(message: string): never {
  throw new SluiceError('SLUICE_CONFIG_INVALID', message);
}

export function resolveDestinations(config: SluiceConfig): StreamDestination[] {
  const entries = config.audit.stream ?? [];
  const seen = new Map<string, string>();
  return entries.map((entry, i): StreamDestination => {
    const where = `audit.stream[${i}]`;
    const dest = 'http' in entry ? resolveHttp(config, entry, where) : resolveSyslog(entry, where);
    const other = seen.get(dest.cursor);
    if (other !== undefined) invalid(`${where}: the same destination as ${other} (each destination keeps one cursor; list it once)`);
    seen.set(dest.cursor, where);
    return dest;
  });
}

type RawStream = NonNullable<SluiceConfig['audit']['stream']>[number];

function resolveHttp(config: SluiceConfig, entry: Extract<RawStream, { http: string }>, where: string): HttpDestination {
  let url: URL;
  try {
    url = new URL(entry.http);
  } catch {
    invalid(`${where}.http: not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') invalid(`${where}.http: expected an https:// URL (got ${url.protocol}//)`);
  if (url.hostname === '') invalid(`${where}.http: the URL has no host`);
  // fetch refuses URLs with credentials; they would also end up in logs. Headers take secrets.
  if (url.username !== '' || url.password !== '') invalid(`${where}.http: put credentials in headers (as env:/file: references), not in the URL`);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && entry.insecure !== true) {
    invalid(`${where}.http: http:// is allowed only to loopback; use https:// or set insecure: true to send records in cleartext`);
  }
  url.hash = '';
  const headers = new Map<string, Secret>();
  for (const [name, raw] of Object.entries(entry.headers ?? {})) {
    const hwhere = `${where}.headers.${name}`;
    if (!HEADER_NAME.test(name)) invalid(`${hwhere}: not a valid header name`);
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) invalid(`${hwhere}: ${lower} is set by the stream itself`);
    if (headers.has(lower)) invalid(`${hwhere}: header ${lower} is listed twice`);
    const value = config.secret(raw, hwhere);
    // Checked on the resolved value: a secret file must not smuggle a second header line.
    if (/[\r\n\0]/.test(value.reveal())) invalid(`${hwhere}: the value contains a line break or NUL`);
    headers.set(lower, value);
  }
  const digest = createHash('sha256').update(url.href).digest('hex').slice(0, 16);
  return {
    kind: 'http',
    where,
    label: `${where} (${url.origin})`,
    // Origin plus a digest of the whole URL: distinct per endpoint without storing a path token.
    cursor: `stream:http:${url.origin}:${digest}`,
    format: entry.format ?? 'jsonl',
    url,
    headers,
  };
}

function resolveSyslog(entry: Extract<RawStream, { syslog: string }>, where: string): SyslogDestination {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry.syslog);
  if (m === null) invalid(`${where}.syslog: expected host:port, e.g. 127.0.0.1:514`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (m[1] !== undefined && isIP(host) !== 6) invalid(`${where}.syslog: [${host}] is not an IPv6 address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) invalid(`${where}.syslog: port ${m[3]} is out of range (1-65535)`);
  if (host.startsWith('.') || host.endsWith('-') || host.includes('..')) invalid(`${where}.syslog: ${host} is not a host name`);
  const protocol = entry.protocol ?? 'udp';
  const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  return {
    kind: 'syslog',
    where,
    label: `${where} (syslog ${protocol} ${target})`,
    cursor: `stream:syslog:${protocol}:${target.toLowerCase()}`,
    format: entry.format ?? 'jsonl',
    protocol,
    host,
    port,
  };
}
