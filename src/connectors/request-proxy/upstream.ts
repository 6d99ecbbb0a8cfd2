/**
 * The upstream of an HTTP or Kubernetes connection: one keep-alive agent (HTTP/1.1), TLS verified
 * against the configured CA, the client certificate if any, and the credential Sluice injects.
 * Everything is read and validated once at startup, so a bad path or secret stops `sluice serve`.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type OutgoingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isAbsolute, resolve } from 'node:path';
import { parseDuration, type SluiceConfig } from '../../config/index.js';
import type { RawConnection } from '../../config/index.js';
import { SluiceError } from '../../errors.js';
import { HOP_BY_HOP } from './hop-by-hop.js';

export type RequestConnection = Extract<RawConnection, { type: 'http' | 'kubernetes' }>;

export interface Upstream {
  /** `https://api.internal:8443/base` without a trailing slash on the path. */
  readonly url: URL;
  /** Headers that carry the credential (set after the agent's headers, so they always win). */
  readonly credentialHeaders: Readonly<Record<string, string>>;
  /** Lower-cased names of the credential headers, dropped from what the agent sends. */
  readonly credentialHeaderNames: ReadonlySet<string>;
  /** Strings that must never reach the agent or the audit log (the credential in every encoding sent). */
  readonly secrets: readonly string[];
  readonly timeoutMs: number;
  /** Open a request to `pathAndQuery` (already prefixed with the base path). */
  request(method: string, pathAndQuery: string, headers: OutgoingHttpHeaders): ClientRequest;
  /** TLS options for a WebSocket client to the same upstream (ca, cert, key, verification). */
  readonly tls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer; readonly rejectUnauthorized: boolean };
  readonly agent: HttpAgent;
  destroy(): void;
}

/** Credentials shorter than this are not scrubbed from bodies (they would match ordinary text); configure longer ones. */
export const MIN_SCRUB_LENGTH = 6;
const DEFAULT_TIMEOUT_MS = 30_000;

function invalid(message: string): never {
  throw new SluiceError('SLUICE_CONFIG_INVALID', message);
}

export function createUpstream(config: SluiceConfig, connection: RequestConnection, where: string): Upstream {
  const u = connection.upstream;
  let url: URL;
  try {
    url = new URL(u.url);
  } catch {
    invalid(`${where}.upstream.url: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid(`${where}.upstream.url: expected http:// or https://, got ${url.protocol}`);
  if (url.search !== '' || url.hash !== '') invalid(`${where}.upstream.url: must not have a query or fragment`);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(config.baseDir, p));
  const readFile = (p: string, at: string): Buffer => {
    try {
      return readFileSync(abs(p));
    } catch (err) {
      invalid(`${at}: cannot read ${abs(p)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const https = url.protocol === 'https:';
  if (!https && (u.ca !== undefined || u.auth?.hasOwnProperty('clientCert') === true)) {
    invalid(`${where}.upstream: ca and clientCert need an https:// upstream`);
  }
  const ca = u.ca !== undefined ? readFile(u.ca, `${where}.upstream.ca`) : undefined;
  const credentialHeaders: Record<string, string> = {};
  const secrets: string[] = [];
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  const auth = u.auth;
  if (auth !== undefined) {
    if ('bearer' in auth) {
      const token = config.secret(auth.bearer, `${where}.upstream.auth.bearer`).reveal();
      if (token === '' || /[\r\n]/.test(token)) invalid(`${where}.upstream.auth.bearer: the token is empty or has a line break`);
      credentialHeaders.authorization = `Bearer ${token}`;
      secrets.push(token);
    } else if ('basic' in auth) {
      const password = config.secret(auth.basic.password, `${where}.upstream.auth.basic.password`).reveal();
      if (auth.basic.user.includes(':')) invalid(`${where}.upstream.auth.basic.user: must not contain ":" (RFC 7617)`);
      const encoded = Buffer.from(`${auth.basic.user}:${password}`).toString('base64');
      credentialHeaders.authorization = `Basic ${encoded}`;
      secrets.push(encoded, password);
    } else if ('header' in auth) {
      const name = auth.header.name.toLowerCase();
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) invalid(`${where}.upstream.auth.header.name: "${auth.header.name}" is not a header name`);
      if (HOP_BY_HOP.has(name) || name === 'host' || name === 'content-length') invalid(`${where}.upstream.auth.header.name: ${name} cannot carry a credential`);
      const value = config.secret(auth.header.value, `${where}.upstream.auth.header.value`).reveal();
      if (value === '' || /[\r\n]/.test(value)) invalid(`${where}.upstream.auth.header.value: the value is empty or has a line break`);
      credentialHeaders[name] = value;
      secrets.push(value);
    } else if ('clientCert' in auth) {
      cert = readFile(auth.clientCert.cert, `${where}.upstream.auth.clientCert.cert`);
      key = readFile(auth.clientCert.key, `${where}.upstream.auth.clientCert.key`);
    }
  }
  const timeoutMs = u.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(u.timeout, `${where}.upstream.timeout`);
  const rejectUnauthorized = u.insecureSkipVerify !== true;
  const agentOptions = { keepAlive: true, keepAliveMsecs: 15_000, maxSockets: 512, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent: HttpAgent = https
    ? new HttpsAgent({ ...agentOptions, rejectUnauthorized, ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) })
    : new HttpAgent(agentOptions);
  const basePath = url.pathname.replace(/\/+$/, '');
  const send = https ? httpsRequest : httpRequest;
  return {
    url,
    credentialHeaders,
    credentialHeaderNames: new Set(Object.keys(credentialHeaders)),
    secrets: secrets.filter((s) => s.length >= MIN_SCRUB_LENGTH),
    timeoutMs,
    tls: { rejectUnauthorized, ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) },
    agent,
    request(method, pathAndQuery, headers) {
      return send({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
        method,
        path: basePath + pathAndQuery,
        headers: { ...headers, host: url.host, ...credentialHeaders },
        agent,
        ...(https ? { servername: isIp(url.hostname) ? undefined : url.hostname } : {}),
      });
    },
    destroy: () => agent.destroy(),
  };
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':') || host.startsWith('[');
}

export type { IncomingMessage };
