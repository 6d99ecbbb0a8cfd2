/**
 * A running gateway enforces audit.retention (AU-11) by itself: sealed segments older than the
 * period are removed at start, their hashes kept, and the log still verifies.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/index.js';
import { startGateway } from '../../src/server/gateway.js';
import { verifyConfiguredLog } from '../../src/audit/index.js';

describe('gateway retention', () => {
  it('prunes sealed segments past audit.retention at start, and the log still verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-retention-'));
    try {
      writeFileSync(
        join(dir, 'sluice.yaml'),
        `
listen: { http: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
audit: { retention: 1h, checkpointEvery: 2 }
identity:
  issuers: [ { local: true } ]
  roles: [ { name: r } ]
`,
      );
      const config = loadConfigFile(join(dir, 'sluice.yaml'));
      let now = Date.parse('2026-01-01T00:00:00Z');
      const clock = (): number => now;
      // Day one: a few records, sealed by checkpoints.
      const first = await startGateway(config, { clock, log: () => undefined });
      for (let i = 0; i < 4; i++) await first.pipeline.record({ type: 'config.load', details: { i } });
      await first.close();
      const before = (await verifyConfiguredLog(config)).records;
      // Two hours later the gateway starts again and applies retention by itself.
      now += 2 * 3_600_000;
      const second = await startGateway(config, { clock, log: () => undefined });
      await new Promise((r) => setTimeout(r, 200));
      await second.close();
      const report = await verifyConfiguredLog(config);
      assert.equal(report.ok, true, JSON.stringify(report.problem));
      assert.ok(report.pruned > 0, `nothing was pruned (${JSON.stringify(report)})`);
      assert.ok(report.records < before + 10, 'old records are gone');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
