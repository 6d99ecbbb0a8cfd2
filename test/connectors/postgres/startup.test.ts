import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readStartupPacket } from '../../../src/connectors/postgres/startup.js';
import { cancelRequest, sslRequest, startupMessage } from '../../../src/connectors/postgres/protocol.js';
import { SluiceError } from '../../../src/errors.js';

describe('readStartupPacket', () => {
  it('reads SSLRequest, CancelRequest and StartupMessage', () => {
    assert.deepEqual(readStartupPacket(sslRequest())?.packet, { name: 'ssl-request' });
    assert.deepEqual(readStartupPacket(cancelRequest(42, -7))?.packet, { name: 'cancel-request', pid: 42, secret: -7 });
    const got = readStartupPacket(startupMessage({ user: 'reader@appdb', database: 'appdb', application_name: 'psql' }));
    assert.equal(got?.packet.name, 'startup');
    const params = (got?.packet as { params: ReadonlyMap<string, string> }).params;
    assert.equal(params.get('user'), 'reader@appdb');
    assert.equal(params.get('application_name'), 'psql');
  });

  it('waits for more bytes when the packet is incomplete', () => {
    const full = startupMessage({ user: 'u' });
    for (let i = 0; i < full.length; i++) assert.equal(readStartupPacket(full.subarray(0, i)), null);
  });

  it('refuses oversized, malformed and userless packets', () => {
    const huge = Buffer.alloc(8);
    huge.writeInt32BE(1_000_000, 0);
    assert.throws(() => readStartupPacket(huge), SluiceError);
    assert.throws(() => readStartupPacket(startupMessage({ database: 'x' })), /no PostgreSQL user/);
    const v2 = Buffer.from(startupMessage({ user: 'u' }));
    v2.writeInt32BE(0x00020000, 4);
    assert.throws(() => readStartupPacket(v2), /unsupported frontend protocol/);
    const unterminated = Buffer.from(startupMessage({ user: 'u' }));
    unterminated[unterminated.length - 1] = 0x41;
    assert.throws(() => readStartupPacket(unterminated), SluiceError);
  });

  it('answers random bytes with a packet, null or a SluiceError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          readStartupPacket(Buffer.from(bytes));
        } catch (err) {
          assert.ok(err instanceof SluiceError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
