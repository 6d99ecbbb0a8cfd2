import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader } from '../../../src/connectors/postgres/frame-reader.js';
import { frame } from '../../../src/connectors/postgres/protocol.js';
import { SluiceError } from '../../../src/errors.js';

function collect(reader: FrameReader, chunks: Buffer[]): { type: number; body: string }[] {
  const out: { type: number; body: string }[] = [];
  for (const c of chunks) {
    reader.feed(c);
    while (reader.next()) out.push({ type: reader.type, body: reader.body().toString('latin1') });
  }
  return out;
}

describe('FrameReader', () => {
  it('splits frames across arbitrary chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.integer({ min: 0x20, max: 0x7e }), body: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
        (frames, cuts) => {
          const stream = Buffer.concat(frames.map((f) => frame(f.type, Buffer.from(f.body))));
          const chunks: Buffer[] = [];
          let at = 0;
          let i = 0;
          while (at < stream.length) {
            const n = cuts[i++ % cuts.length] as number;
            chunks.push(stream.subarray(at, at + n));
            at += n;
          }
          const got = collect(new FrameReader(1 << 20, 'test'), chunks);
          assert.deepEqual(got, frames.map((f) => ({ type: f.type, body: Buffer.from(f.body).toString('latin1') })));
        },
      ),
    );
  });

  it('rejects a declared length below 4 or above the cap before buffering it', () => {
    const r = new FrameReader(1024, 'client');
    const bad = Buffer.from([0x51, 0, 0, 0, 3]);
    r.feed(bad);
    assert.throws(() => r.next(), (e: SluiceError) => e.code === 'SLUICE_PROTOCOL_VIOLATION');
    const big = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
    const r2 = new FrameReader(1024, 'client');
    r2.feed(big);
    assert.throws(() => r2.next(), (e: SluiceError) => e.code === 'SLUICE_MESSAGE_TOO_LARGE');
  });

  it('never throws anything but a SluiceError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const r = new FrameReader(4096, 'fuzz');
        try {
          r.feed(Buffer.from(bytes));
          while (r.next()) {
            assert.ok(r.end <= r.buffer.length);
          }
        } catch (err) {
          assert.ok(err instanceof SluiceError, String(err));
        }
      }),
    );
  });
});
