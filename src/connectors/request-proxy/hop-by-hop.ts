/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded, nor are
 * the headers a `Connection` header names — an agent could otherwise name `Authorization` there
 * and have a naive proxy drop the injected credential, or smuggle its own framing.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Names listed in `Connection` (lower-cased), which are hop-by-hop for this message. */
export function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const out = new Set<string>();
  const raw = headers.connection;
  if (raw === undefined) return out;
  for (const t of String(raw).split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '') out.add(name);
  }
  return out;
}

/**
 * A copy of `headers` without hop-by-hop headers, those named in `Connection`, and any name in
 * `drop` or starting with a prefix in `dropPrefixes`.
 */
export function stripHopByHop(headers: IncomingHttpHeaders, drop: ReadonlySet<string> = new Set(), dropPrefixes: readonly string[] = []): OutgoingHttpHeaders {
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || named.has(name) || drop.has(name)) continue;
    if (dropPrefixes.some((p) => name.startsWith(p))) continue;
    out[name] = value;
  }
  return out;
}
