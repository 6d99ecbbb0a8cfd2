/**
 * kill -9 during load: every append the writer saw acknowledged must be in the log afterwards,
 * and the log must verify (AU-9; "a crash loses nothing that a client saw succeed").
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openAuditLog, openAuditStore, verifyConfiguredLog } from '../../src/audit/index.js';
import { tempConfig } from './helpers.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

test('kill -9 under load loses no acknowledged record and the log still verifies', async () => {
  const t = tempConfig('{ checkpointEvery: 500 }');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, t.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, string>();
    let tail = '';
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`writer exited early (${String(code)})`)));
      child.stdout.on('data', (d: Buffer) => {
        const text = tail + d.toString();
        const lines = text.split('\n');
        tail = lines.pop() ?? '';
        for (const l of lines) {
          const [seq, id] = l.split(' ');
          acked.set(Number(seq), id as string);
        }
        if (acked.size >= 3000) resolve();
      });
    });
    child.removeAllListeners('exit');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.ok(acked.size >= 3000);

    const report = await verifyConfiguredLog(t.config);
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.ok(report.records >= acked.size, `${report.records} records, ${acked.size} acknowledged`);
    const store = await openAuditStore(t.config, { readonly: true });
    const present = new Map((await store.readEvents(0, 1_000_000)).map((e) => [e.seq, e.id]));
    await store.close();
    const missing = [...acked].filter(([seq, id]) => present.get(seq) !== id);
    assert.deepEqual(missing, [], 'every acknowledged record is present with its id');

    // The log carries on after the crash from where the store says it is.
    const log = await openAuditLog(t.config, { mask: (s) => s });
    const next = await log.append({ type: 'gateway.start' });
    assert.equal(next.seq, report.records + 1);
    await log.close();
    assert.equal((await verifyConfiguredLog(t.config)).ok, true);
  } finally {
    t.cleanup();
  }
});
