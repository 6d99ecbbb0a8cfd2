import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

function capture(): { io: Parameters<typeof main>[1]; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d) => (o += d));
  stderr.on('data', (d) => (e += d));
  return { io: { stdout, stderr, stdin: new PassThrough(), env: { ...process.env } }, out: () => o, err: () => e };
}

describe('sluice demo', () => {
  it('serves the seeded embedded database through the gateway: masked reads, denied DDL, a delete held until approved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
    const c = capture();
    try {
      const code = await main(['demo', '--self-test', '--port', '0', '--dir', dir], c.io);
      assert.equal(code, 0, c.out() + c.err());
      const out = c.out();
      assert.match(out, /allowed: SELECT returned 3 rows/);
      assert.match(out, /4111 \*\*\*\* \*\*\*\* 1111/, 'card masked, last four kept');
      assert.match(out, /\*\*\*-\*\*-6789/, 'SSN masked');
      assert.match(out, /\[REDACTED:github_token\]/);
      assert.ok(!out.includes('123-45-6789') && !out.includes('4111 1111 1111 1111'), 'no raw values reach the agent');
      assert.match(out, /denied: DROP TABLE orders → sluice: statement denied by rule "agent-no-ddl"/);
      assert.match(out, /held: DELETE FROM orders WHERE id = 1 → sluice: statement held for approval/);
      assert.match(out, /approved: the held DELETE ran and removed 1 row/);
      assert.match(out, /console: http:\/\/127\.0\.0\.1:\d+\/console\/ → HTTP 200; the reviewer token signs in as reviewer and auditor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints usage for unknown commands and flags', async () => {
    const c = capture();
    assert.equal(await main(['nope'], c.io), 2);
    assert.match(c.err(), /unknown command "nope"/);
    const d = capture();
    assert.equal(await main(['demo', '--bogus'], d.io), 2);
    assert.match(d.err(), /usage/);
  });
});
