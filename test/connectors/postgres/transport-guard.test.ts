import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertTokenTransport } from '../../../src/connectors/postgres/transport-guard.js';
import { SluiceError } from '../../../src/errors.js';

describe('token transport guard', () => {
  const refused = (remoteAddress: string | undefined): void =>
    assert.throws(() => assertTokenTransport({ tls: false, remoteAddress, allowInsecureRemote: false }), (e: SluiceError) => e.code === 'SLUICE_TLS_REQUIRED' && e.sqlstate === '28000');

  it('refuses cleartext tokens from non-loopback addresses', () => {
    for (const a of ['10.1.2.3', '192.168.0.7', '::ffff:10.0.0.1', '2001:db8::1', '128.0.0.1', undefined, '']) refused(a);
  });

  it('allows loopback, TLS, and an explicit opt-out', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assertTokenTransport({ tls: false, remoteAddress: a, allowInsecureRemote: false });
    assertTokenTransport({ tls: true, remoteAddress: '10.1.2.3', allowInsecureRemote: false });
    assertTokenTransport({ tls: false, remoteAddress: '10.1.2.3', allowInsecureRemote: true });
  });
});
