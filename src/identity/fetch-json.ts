/**
 * Fetches an issuer's metadata (discovery document, JWKS) the way an untrusted peer deserves:
 * only https:// (http:// on loopback, for tests and sidecars), no redirects, a timeout and a
 * byte cap enforced while streaming, so a slow or huge response can't pin the gateway.
 */
import { isLoopbackHost } from '../config/index.js';
import { SluiceError } from '../errors.js';

export interface FetchLimits {
  /** Abort the whole request (headers and body) after this long. */
  readonly timeoutMs: number;
  /** Refuse bodies larger than this many bytes. */
  readonly maxBytes: number;
  /** Caller-supplied cancellation (jose passes its own timeout signal). */
  readonly signal?: AbortSignal;
}

/**
 * Throws SLUICE_ISSUER_UNREACHABLE unless `url` is https://, or http:// to a loopback host.
 * The same rule load-config applies to configured URLs, applied here to URLs an issuer hands us.
 */
export function assertFetchableUrl(url: string, what: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SluiceError('SLUICE_ISSUER_UNREACHABLE', `${what} is not a valid URL`);
  }
  const loopbackHttp = parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname);
  if (parsed.protocol !== 'https:' && !loopbackHttp) {
    throw new SluiceError('SLUICE_ISSUER_UNREACHABLE', `${what} ${parsed.origin} must use https:// (http:// is allowed only on loopback)`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new SluiceError('SLUICE_ISSUER_UNREACHABLE', `${what} must not carry credentials in the URL`);
  }
  return parsed;
}

/** GET `url` and parse its body as a JSON object. Every failure is SLUICE_ISSUER_UNREACHABLE naming `what`. */
export async function fetchJsonObject(url: string, what: string, limits: FetchLimits): Promise<Record<string, unknown>> {
  const target = assertFetchableUrl(url, what);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const signal = limits.signal === undefined ? timeout : AbortSignal.any([timeout, limits.signal]);
  const unreachable = (why: string, cause?: unknown): SluiceError =>
    new SluiceError('SLUICE_ISSUER_UNREACHABLE', `cannot fetch ${what} from ${target.origin}${target.pathname}: ${why}`, cause === undefined ? undefined : { cause });

  let response: Response;
  try {
    // redirect: 'manual' — a redirect could lead to a plain-http or internal URL we never vetted.
    response = await fetch(target, { method: 'GET', redirect: 'manual', signal, headers: { accept: 'application/json' } });
  } catch (err) {
    throw unreachable(signal.aborted ? `no response within ${limits.timeoutMs} ms` : describeNetworkError(err), err);
  }
  try {
    if (response.status !== 200) throw unreachable(`HTTP ${response.status} (expected 200)`);
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > limits.maxBytes) throw unreachable(`response is larger than ${limits.maxBytes} bytes`);
    const body = await readCapped(response, limits.maxBytes).catch((err: unknown) => {
      if (err instanceof SluiceError) throw err;
      throw unreachable(signal.aborted ? `no complete response within ${limits.timeoutMs} ms` : 'connection failed while reading the response', err);
    });
    if (body === undefined) throw unreachable(`response is larger than ${limits.maxBytes} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw unreachable('response is not JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw unreachable('response is not a JSON object');
    return json as Record<string, unknown>;
  } finally {
    // Release the socket even when we stopped reading early.
    if (response.body !== null && !response.bodyUsed) await response.body.cancel().catch(() => undefined);
  }
}

/** Read the body as UTF-8, or return undefined as soon as it exceeds `maxBytes`. */
async function readCapped(response: Response, maxBytes: number): Promise<string | undefined> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function describeNetworkError(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (cause !== undefined && typeof cause.code === 'string') return `connection failed (${cause.code})`;
  return 'connection failed';
}
