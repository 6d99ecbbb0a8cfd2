/**
 * Server-sent events masked one event at a time (src/connectors/request-proxy/event-stream.ts):
 * the data of an event is masked as the client will read it, however the stream is cut into
 * chunks, and an event that is too long to hold still streams, masked as text.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { maskEvent, maskEventStream, type EventMask } from '../../../src/connectors/request-proxy/event-stream.js';

/** Data that is JSON has its `secret` fields replaced; every line has `SECRET` replaced. */
const mask: EventMask = {
  data(text) {
    try {
      const v = JSON.parse(text) as unknown;
      if (typeof v === 'object' && v !== null && 'secret' in v) return JSON.stringify({ ...v, secret: '[X]' });
      return text;
    } catch {
      return text.replaceAll('SECRET', '[X]');
    }
  },
  line: (text) => text.replaceAll('SECRET', '[X]'),
};

async function run(chunks: readonly (string | Buffer)[], maxEvent = 1 << 20): Promise<string> {
  const out: Buffer[] = [];
  const t = maskEventStream(mask, maxEvent);
  const done = new Promise<void>((resolve, reject) => {
    t.on('data', (c: Buffer) => out.push(c));
    t.on('end', resolve);
    t.on('error', reject);
  });
  Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))).pipe(t);
  await done;
  return Buffer.concat(out).toString('latin1');
}

describe('server-sent events masking', () => {
  test('an event’s data lines are joined, masked as one value and written back as data lines', () => {
    assert.deepEqual(maskEvent(['id: 7', 'data: {"a": 1,', 'data: "secret": "x"}'], mask), ['id: 7', 'data: {"a":1,"secret":"[X]"}']);
    // Unchanged data keeps its lines, its spacing and its `data:` spelling.
    assert.deepEqual(maskEvent(['data:{"a":', 'data', 'data:  1}'], mask), ['data:{"a":', 'data', 'data:  1}']);
    // Data that is not JSON is masked as text; other fields and comments are masked as lines.
    assert.deepEqual(maskEvent([': SECRET', 'event: SECRET', 'data: a SECRET'], mask), [': [X]', 'event: [X]', 'data: a [X]']);
    // `data` is the field only when spelled exactly: `Data:` and `database:` are other fields.
    assert.deepEqual(maskEvent(['Data: SECRET', 'database: {"secret":1}'], mask), ['Data: [X]', 'database: {"secret":1}']);
    // CRLF line ends are kept.
    assert.deepEqual(maskEvent(['data: {"secret": 1}\r'], mask), ['data: {"secret":"[X]"}\r']);
  });

  test('a stream: events go out masked, unchanged events byte for byte', async () => {
    const text = 'retry: 100\n\nevent: a\ndata: {"secret": "s1",\ndata: "n": 2}\n\n: keep-alive\n\ndata: plain SECRET\n\n';
    assert.equal(await run([text]), 'retry: 100\n\nevent: a\ndata: {"secret":"[X]","n":2}\n\n: keep-alive\n\ndata: plain [X]\n\n');
    const latin1 = Buffer.from('data: caf\xe9 SECRET\n\n', 'latin1');
    assert.equal(await run([latin1]), 'data: caf\xe9 [X]\n\n');
    // Ended inside an event: its lines still go out, masked, without a line end added.
    assert.equal(await run(['data: {"secret": 1}\ndata']), 'data: {"secret":"[X]"}');
    assert.equal(await run(['data: {"secret": 1}\n']), 'data: {"secret":"[X]"}\n');
  });

  test('an event longer than the limit streams line by line, masked as text, until its end', async () => {
    const long = `data: {"secret": "${'y'.repeat(80)}",\ndata: "z": "SECRET"}\n\ndata: {"secret": 2}\n\n`;
    const got = await run([long], 64);
    // The first event's lines went out as text (the field rule needs the whole value, SECRET
    // is still caught); the next event is held and masked as JSON again.
    assert.equal(got, `data: {"secret": "${'y'.repeat(80)}",\ndata: "z": "[X]"}\n\ndata: {"secret":"[X]"}\n\n`);
    // One line longer than the limit goes out in pieces, masked.
    const piece = await run(['data: SECRET ', 'y'.repeat(100), ' tail\n\n'], 16);
    assert.equal(piece, `data: [X] ${'y'.repeat(100)} tail\n\n`);
  });

  test('property: the output does not depend on how the stream is cut into chunks', async () => {
    const line = fc.oneof(
      fc.constantFrom('', 'data: {"secret": "a",', 'data: "b": 1}', 'data: SECRET', 'event: x', ': c', 'id: SECRET', 'data', 'data:{"secret":3}'),
      fc.string({ maxLength: 12, unit: 'grapheme' }).map((s) => s.replace(/[\r\n]/g, '')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.boolean(), fc.array(fc.nat(200), { maxLength: 6 }), async (lines, crlf, cuts) => {
        const text = Buffer.from(lines.map((l) => l + (crlf ? '\r\n' : '\n')).join(''));
        const whole = await run([text]);
        // Cut at byte offsets, so a multi-byte character may be split between chunks.
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of at) {
          chunks.push(text.subarray(prev, c));
          prev = c;
        }
        chunks.push(text.subarray(prev));
        assert.equal(await run(chunks.filter((c) => c.length > 0)), whole);
        // Nothing the line mask would replace survives.
        assert.ok(!whole.includes('SECRET'), whole);
      }),
      { numRuns: 300 },
    );
  });
});
