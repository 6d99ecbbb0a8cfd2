/**
 * The CLI side of the approvals REST API: find the running gateway and the reviewer's token, call
 * it, and turn problem bodies back into SluiceErrors. The gateway address comes from --url,
 * --config (approvals.publicUrl, else listen.http), SLUICE_URL, then SLUICE_CONFIG / ./sluice.yaml.
 *
 * The config is read for those two keys only, not loaded: a reviewer's machine usually lacks the
 * gateway's secrets (env:APPDB_PASSWORD …), and the full loader would refuse the file for that.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { ERROR_TABLE, SluiceError, type SluiceErrorCode } from '../errors.js';
import { APPROVALS_API_PREFIX } from './service.js';

export interface GatewayTarget {
  readonly baseUrl: string;
  readonly token: string;
}

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

function readAddress(path: string): string {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_CONFIG_BYTES) throw new SluiceError('SLUICE_CONFIG_INVALID', `${path}: config is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot read config ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${path}: YAML syntax error: ${(err as Error).message.split('\n')[0]}`);
  }
  const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const publicUrl = obj(obj(doc).approvals).publicUrl;
  if (typeof publicUrl === 'string' && publicUrl !== '') return publicUrl;
  const http = obj(obj(doc).listen).http;
  if (typeof http === 'string' && http !== '') {
    // A wildcard listen address is reachable on loopback from the gateway's own host.
    const addr = http.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
    return `http://${addr}`;
  }
  throw new SluiceError('SLUICE_CONFIG_INVALID', `${path} sets neither approvals.publicUrl nor listen.http; set SLUICE_URL to the gateway's HTTP address`);
}

function checkUrl(raw: string, where: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new SluiceError('SLUICE_BAD_REQUEST', `${where}: "${raw}" is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new SluiceError('SLUICE_BAD_REQUEST', `${where}: expected an http:// or https:// URL`);
  return u.toString().replace(/\/+$/, '');
}

export function resolveGatewayTarget(flags: { readonly url?: string; readonly config?: string; readonly token?: string }, env: NodeJS.ProcessEnv): GatewayTarget {
  let baseUrl: string;
  if (flags.url !== undefined) baseUrl = checkUrl(flags.url, '--url');
  else if (flags.config !== undefined) baseUrl = checkUrl(readAddress(resolve(flags.config)), flags.config);
  else if (env.SLUICE_URL !== undefined && env.SLUICE_URL !== '') baseUrl = checkUrl(env.SLUICE_URL, 'SLUICE_URL');
  else {
    const path = resolve(env.SLUICE_CONFIG ?? 'sluice.yaml');
    if (env.SLUICE_CONFIG === undefined && !existsSync(path)) {
      throw new SluiceError('SLUICE_BAD_REQUEST', 'no gateway address: set SLUICE_URL (e.g. http://127.0.0.1:8080), or pass --config pointing at the gateway\'s sluice.yaml');
    }
    baseUrl = checkUrl(readAddress(path), path);
  }
  const token = flags.token ?? env.SLUICE_TOKEN;
  if (token === undefined || token.trim() === '') {
    throw new SluiceError('SLUICE_TOKEN_MISSING', 'no reviewer token: pass --token or set SLUICE_TOKEN (a token of a role with approver: true, e.g. from `sluice token mint --role dba`)');
  }
  return { baseUrl, token: token.trim() };
}

function errorFromProblem(status: number, body: unknown): SluiceError {
  const p = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const code = typeof p.title === 'string' && p.title in ERROR_TABLE ? (p.title as SluiceErrorCode) : status === 401 ? 'SLUICE_TOKEN_INVALID' : status === 404 ? 'SLUICE_APPROVAL_NOT_FOUND' : 'SLUICE_INTERNAL';
  const detail = typeof p.detail === 'string' ? p.detail : `the gateway answered HTTP ${status}`;
  return new SluiceError(code, detail);
}

/** Call the approvals API; `path` is relative to /api/v1/approvals. Returns the parsed JSON. */
export async function callApprovalsApi(target: GatewayTarget, method: 'GET' | 'POST', path: string, body?: Record<string, unknown>, fetchImpl: typeof fetch = fetch): Promise<unknown> {
  const url = `${target.baseUrl}${APPROVALS_API_PREFIX}${path}`;
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method,
      headers: { authorization: `Bearer ${target.token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
      redirect: 'error',
    });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `cannot reach the gateway at ${target.baseUrl} (${code}); is it running? (set SLUICE_URL or --config)`);
  }
  const text = Buffer.from(await res.arrayBuffer()).subarray(0, MAX_RESPONSE_BYTES).toString('utf8');
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) throw errorFromProblem(res.status, parsed);
  if (parsed === undefined) throw new SluiceError('SLUICE_INTERNAL', `the gateway at ${target.baseUrl} did not answer with JSON (is this the Sluice HTTP listener?)`);
  return parsed;
}
