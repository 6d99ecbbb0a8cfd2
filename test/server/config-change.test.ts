/**
 * AU-2 "configuration loads and changes": each start records config.load with a fingerprint; a
 * start whose configuration differs from the previous load records config.change naming the
 * changed sections, and never a secret's value.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/index.js';
import { startGateway } from '../../src/server/gateway.js';
import { openAuditStore, parseRecord, verifyConfiguredLog } from '../../src/audit/index.js';
import { filesUnder } from '../helpers/files.js';

const yaml = (dir: string, rules: string): string => `
listen: { http: 127.0.0.1:0 }
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
identity:
  issuers: [ { local: true } ]
  roles: [ { name: agent } ]
connections:
  - { name: api, type: http, upstream: { url: http://127.0.0.1:9, auth: { bearer: "env:SLUICE_TEST_UPSTREAM_TOKEN" } } }
policies:
  - { role: agent, connection: api, rules: [ ${rules} ] }
`;

describe('config.load and config.change', () => {
  it('records what changed between two runs, by section', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-change-'));
    const path = join(dir, 'sluice.yaml');
    process.env.SLUICE_TEST_UPSTREAM_TOKEN = 'upstream-token-value-0001';
    try {
      const start = async (): Promise<void> => {
        const gw = await startGateway(loadConfigFile(path), { log: () => undefined });
        await gw.close();
      };
      writeFileSync(path, yaml(dir, '{ allow: [get] }'));
      await start();
      await start(); // unchanged: no config.change
      writeFileSync(path, yaml(dir, '{ allow: [get] }, { review: [post] }'));
      process.env.SLUICE_TEST_UPSTREAM_TOKEN = 'upstream-token-value-0002'; // a secret's value is not configuration text
      await start();

      const store = await openAuditStore(loadConfigFile(path), { readonly: true });
      const records = (await store.readEvents(0, 1000)).map((e) => parseRecord(e.body));
      await store.close();
      const loads = records.filter((r) => r.type === 'config.load');
      const changes = records.filter((r) => r.type === 'config.change');
      assert.equal(loads.length, 3);
      assert.equal(changes.length, 1, 'one change, after the third load');
      const d = changes[0]?.details as { changed: string[]; from: string; to: string; policyVersion: { from: string; to: string } };
      assert.deepEqual(d.changed, ['policies']);
      assert.equal(d.from, (loads[1]?.details as { configHash: string }).configHash);
      assert.equal(d.to, (loads[2]?.details as { configHash: string }).configHash);
      assert.notEqual(d.policyVersion.from, d.policyVersion.to);
      for (const f of filesUnder(join(dir, 'data'))) {
        assert.ok(!readFileSync(f).includes('upstream-token-value-000'), `the upstream token is in ${f}`);
      }
      assert.equal((await verifyConfiguredLog(loadConfigFile(path))).ok, true);
    } finally {
      delete process.env.SLUICE_TEST_UPSTREAM_TOKEN;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
