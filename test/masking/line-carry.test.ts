/** LineCarry: the streaming text masker shared by exec/attach output and `sluice mask`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultMasker, LineCarry, utf8Boundary } from '../../src/masking/index.js';

const masker = defaultMasker();

describe('LineCarry: masking text that arrives in chunks cut anywhere', () => {
  const mask = (t: string): string => masker.maskText(t);
  /** Push `pieces` through one carry, as frames arrive, then end the stream; the text the agent gets. */
  const through = (pieces: readonly (string | Buffer)[], maxHold?: number): { out: string; sends: string[] } => {
    const carry = new LineCarry(mask, maxHold);
    const sends: string[] = [];
    for (const p of pieces) {
      const r = carry.push(typeof p === 'string' ? Buffer.from(p) : p);
      if (r !== undefined) sends.push(r.data.toString('utf8'));
    }
    const last = carry.flush(true);
    if (last !== undefined) sends.push(last.data.toString('utf8'));
    return { out: sends.join(''), sends };
  };

  it('masks a value split across two frames, which frame-by-frame masking let through', () => {
    const { out, sends } = through(['id 7 card 4111 11', '11 1111 1111 ok\nnext line\n']);
    assert.equal(out, 'id 7 card 4111 **** **** 1111 ok\nnext line\n');
    assert.equal(sends.length, 1, 'the first frame had no complete line: it waited for the rest');
    assert.equal(through(['token ghp_abcdefghij', 'klmnopqrstuvwxyz0123456789\n']).out, 'token [REDACTED:github_token]\n');
    assert.ok(!(mask('card 4111 11') + mask('11 1111 1111\n')).includes('****'), 'each half alone is not a card');
  });

  it('sends complete lines at once, the original bytes when nothing matched, and keeps only the partial line', () => {
    const carry = new LineCarry(mask);
    const clean = Buffer.from('hello\nwor');
    const r = carry.push(clean);
    assert.equal(r?.data.toString(), 'hello\n');
    assert.equal(r?.changed, false);
    assert.equal(r?.data.buffer, clean.buffer, 'a view of the frame, not a re-encoding');
    assert.equal(carry.pending, 3);
    const p = carry.push(Buffer.from('ld ssn 123-45-6789\n'));
    assert.deepEqual([p?.data.toString(), p?.changed, carry.pending], ['world ssn ***-**-6789\n', true, 0]);
  });

  it('lets a prompt without a newline out on flush, keeping half a character back until the rest arrives', () => {
    const carry = new LineCarry(mask);
    assert.equal(carry.push(Buffer.from('$ ')), undefined);
    assert.equal(carry.flush()?.data.toString(), '$ ');
    const e = Buffer.from('café\n');
    assert.equal(carry.push(e.subarray(0, 4)), undefined); // 'caf' + the first byte of 'é'
    assert.equal(carry.flush()?.data.toString(), 'caf');
    assert.equal(carry.pending, 1);
    assert.equal(carry.push(e.subarray(4))?.data.toString(), 'é\n');
    assert.deepEqual([utf8Boundary(Buffer.from('ab')), utf8Boundary(e.subarray(0, 4)), utf8Boundary(Buffer.from('😀').subarray(0, 3)), utf8Boundary(Buffer.from('😀'))], [2, 3, 0, 4]);
  });

  it('holds a private key block from its BEGIN line to its END line, so it is masked whole', () => {
    const key = ['-----BEGIN PRIVATE KEY-----', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7', 'VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu', '-----END PRIVATE KEY-----'].join('\n');
    const text = `before\n${key}\nafter\n`;
    for (let cut = 1; cut < text.length; cut += 7) {
      const { out } = through([text.slice(0, cut), text.slice(cut)]);
      assert.equal(out, mask(text), `cut at ${cut}`);
      assert.ok(!out.includes('MIIEvQ') && !out.includes('VJTUt9'), `cut at ${cut}`);
    }
  });

  it('keeps a key block whose lines arrive slowly: a timed flush sends a prompt, never the start of a BEGIN header or an open block', () => {
    const carry = new LineCarry(mask);
    const sent: string[] = [];
    const take = (r: { data: Buffer } | undefined): void => void (r !== undefined && sent.push(r.data.toString()));
    take(carry.push(Buffer.from('$ cat key.pem\n--')));
    take(carry.flush()); // the tail could be the start of "-----BEGIN ": it stays
    take(carry.push(Buffer.from('---BEGIN PRIV')));
    take(carry.flush()); // an unclosed header stays too
    take(carry.push(Buffer.from('ATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n')));
    take(carry.flush()); // an open block stays
    take(carry.push(Buffer.from('BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n$ ')));
    take(carry.flush());
    assert.deepEqual(sent, ['$ cat key.pem\n', '[REDACTED:private_key]\n', '$ ']);
  });

  it('masks an overlong line in pieces instead of holding it without bound', () => {
    const carry = new LineCarry(mask, 64);
    const r = carry.push(Buffer.from('x'.repeat(100)));
    assert.equal(r?.data.length, 100);
    assert.equal(carry.pending, 0);
  });

  it('property: however a text is cut into frames, the agent gets exactly what masking it whole gives', () => {
    const secret = fc.constantFrom('4111 1111 1111 1111', '123-45-6789', 'ada@example.com', 'AKIAIOSFODNN7EXAMPLE', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'héllo wörld', '😀', 'plain words');
    const line = fc.array(fc.oneof(secret, fc.constantFrom(' ', ': ', 'value=', 'x')), { maxLength: 6 }).map((p) => p.join(''));
    const text = fc.array(line, { minLength: 1, maxLength: 8 }).map((ls) => ls.join('\n') + '\n');
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 6 }), (t, cuts) => {
        const bytes = Buffer.from(t);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces: Buffer[] = [];
        let from = 0;
        for (const p of points) {
          pieces.push(bytes.subarray(from, p));
          from = p;
        }
        pieces.push(bytes.subarray(from));
        // Line by line is how the text is masked once whole lines are known.
        assert.equal(through(pieces).out, t.split('\n').map(mask).join('\n'));
      }),
      { numRuns: 300 },
    );
  });
});
