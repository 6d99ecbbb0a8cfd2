/**
 * Live policy reload (`sluice serve` on SIGHUP, `Gateway.reload`): a change to `policies` applies
 * at once, to a session already open too, and is recorded before it takes effect; a change to
 * any other section, an invalid file or an invalid rule is refused with nothing applied.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, standardConfig, type Fixture } from '../helpers/gateway.js';

const READER_ALLOW = '      - allow: [select, explain, show, set, transaction]';
/** The reader's rules without `select`: SELECT falls through to its `deny: '*'` rule. */
const withoutSelect = (yaml: string): string => yaml.replace(READER_ALLOW, '      - allow: [explain, show, set, transaction]');

describe('policy reload', () => {
  let f: Fixture;
  let gw: Gateway;
  let yaml: string;

  before(async () => {
    f = await createFixture();
    yaml = standardConfig(f);
    assert.ok(yaml.includes(READER_ALLOW));
    gw = await startGateway(loadConfigFile(f.writeConfig(yaml)), { log: () => undefined });
  });
  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const events = async (type: string) => (await gw.audit.store.readEvents(0, 100_000)).filter((e) => e.type === type).map((e) => JSON.parse(e.body) as Record<string, any>);

  it('applies a policy change to an open session at once, recorded first; refuses anything else and keeps running as before', async () => {
    const token = await mintLocalToken(gw.config, { role: 'reader', subject: 'reload@acme' });
    const c = new pg.Client({ host: '127.0.0.1', port: gw.addresses.postgres?.port, user: 'reader', password: token, database: 'appdb' });
    await c.connect();
    try {
      assert.equal((await c.query('SELECT count(*)::int AS n FROM customers')).rows[0].n, 2);
      const v1 = gw.pipeline.policyVersion;

      // Unchanged file: nothing to do, nothing recorded.
      const same = await gw.reload(() => loadConfigFile(f.configPath));
      assert.deepEqual([same.applied, same.changed], [false, []]);

      // A connection changed: refused, nothing applied, the attempt recorded.
      writeFileSync(f.configPath, withoutSelect(yaml).replace('database: app, user: app_ro', 'database: app, user: app_rw'));
      const refused = await gw.reload(() => loadConfigFile(f.configPath));
      assert.equal(refused.applied, false);
      assert.match(refused.message, /connections changed, which takes a restart; nothing was applied/);
      assert.equal(gw.pipeline.policyVersion, v1);
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'the old policy still applies');

      // A broken file and a rule that does not compile: refused the same way.
      writeFileSync(f.configPath, `${yaml}\n  - role: [unclosed`);
      assert.match((await gw.reload(() => loadConfigFile(f.configPath))).message, /config reload refused: .*running configuration is unchanged/);
      writeFileSync(f.configPath, yaml.replace("        name: reader-no-writes", "        name: reader-no-writes\n        when: 'sql.kind =='"));
      assert.match((await gw.reload(() => loadConfigFile(f.configPath))).message, /config reload refused/);
      assert.equal(gw.pipeline.policyVersion, v1);

      // Only policies changed: applied, and the open session's next statement is decided by it.
      writeFileSync(f.configPath, withoutSelect(yaml));
      const applied = await gw.reload(() => loadConfigFile(f.configPath));
      assert.deepEqual([applied.applied, applied.changed], [true, ['policies']]);
      assert.notEqual(applied.policyVersion, v1);
      await assert.rejects(c.query('SELECT count(*) FROM customers'), /denied by rule "reader-no-writes"/);
      assert.equal((await c.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only, 'on', 'the session lives on');

      const changes = (await events('config.change')).filter((e) => e.details?.reload === true);
      assert.deepEqual(
        changes.map((e) => [e.outcome, e.details.changed]),
        [
          ['failure', ['connections', 'policies']],
          ['failure', []],
          ['failure', ['policies']],
          ['success', ['policies']],
        ],
      );
      assert.deepEqual(changes[3]?.details.policyVersion, { from: v1, to: applied.policyVersion });
      const loads = (await events('config.load')).filter((e) => e.details?.reload === true);
      assert.equal(loads.length, 1);
      assert.equal(loads[0]?.details.policyVersion, applied.policyVersion);
      const denied = (await events('command')).filter((e) => e.outcome === 'denied' && e.identity?.subject === 'reload@acme');
      assert.equal(denied[0]?.policyVersion, applied.policyVersion, 'the decision names the policy it came from');
    } finally {
      await c.end();
      writeFileSync(f.configPath, yaml);
    }
  });
});

describe('sluice serve', () => {
  it('reloads its policies on SIGHUP', async () => {
    const f = await createFixture();
    const yaml = standardConfig(f);
    f.writeConfig(yaml);
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--config', f.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    const until = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 600 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(cond(), `timed out; stdout: ${out} stderr: ${err}`);
    };
    try {
      await until(() => /postgres listener on /.test(out));
      writeFileSync(f.configPath, withoutSelect(yaml));
      child.kill('SIGHUP');
      await until(() => /config reloaded: policies now sha256:/.test(err));
      child.kill('SIGTERM');
      await exited;
      assert.match(out, /shutting down/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await f.cleanup();
    }
  });
});
