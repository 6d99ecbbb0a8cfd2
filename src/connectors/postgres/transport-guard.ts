/**
 * The token travels as a cleartext password message: refuse that over the network unless the
 * connection is TLS. Loopback clients are exempt (nothing crosses a wire), and an operator may
 * opt out with `allowInsecureRemote` (e.g. behind a TLS-terminating load balancer).
 */
import { isLoopbackHost } from '../../config/index.js';
import { SluiceError } from '../../errors.js';

export function assertTokenTransport(t: { readonly tls: boolean; readonly remoteAddress: string | undefined; readonly allowInsecureRemote: boolean }): void {
  if (t.tls || t.allowInsecureRemote) return;
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
  const address = (t.remoteAddress ?? '').replace(/^::ffff:/i, '');
  if (address !== '' && isLoopbackHost(address)) return;
  throw new SluiceError('SLUICE_TLS_REQUIRED', 'TLS is required to send a token from a non-loopback address (use sslmode=require)');
}
