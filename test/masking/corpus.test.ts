/**
 * Recall and false-positive rate on the labelled corpus (test/masking/corpus/corpus.jsonl, built
 * by corpus/generate.ts). Fails below recall 0.99 or above a 1 % false-positive rate, and prints
 * the figures per type.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createMasker, defaultMasker, MaskStats, type Masker } from '../../src/masking/index.js';
import type { CorpusRecord } from './corpus/generate.js';

const records: CorpusRecord[] = readFileSync(new URL('./corpus/corpus.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as CorpusRecord);

const maskers = new Map<string, Masker>();
function maskerFor(r: CorpusRecord): Masker {
  if (r.detectors === undefined) return defaultMasker();
  const key = r.detectors.join(',');
  let m = maskers.get(key);
  if (m === undefined) {
    m = createMasker({ detectors: [...r.detectors] });
    maskers.set(key, m);
  }
  return m;
}

test('corpus: recall ≥ 0.99 and false-positive rate ≤ 1 %', () => {
  const perType = new Map<string, { n: number; ok: number; label: string }>();
  const misses: string[] = [];
  const falsePositives: string[] = [];
  for (const r of records) {
    const stats = new MaskStats();
    const out = maskerFor(r).maskText(r.text, stats);
    const row = perType.get(r.type) ?? { n: 0, ok: 0, label: r.label };
    row.n++;
    if (r.label === 'positive') {
      const found = !out.includes(r.value) && stats.toJSON().some((e) => e.detector === r.type);
      if (found) row.ok++;
      else misses.push(`#${r.id} ${r.type}: ${JSON.stringify(r.text)} → ${JSON.stringify(out)}`);
    } else if (out === r.text) {
      row.ok++;
    } else {
      falsePositives.push(`#${r.id} ${r.type}: ${JSON.stringify(r.text)} → ${JSON.stringify(out)}`);
    }
    perType.set(r.type, row);
  }
  const pos = records.filter((r) => r.label === 'positive').length;
  const neg = records.length - pos;
  const recall = (pos - misses.length) / pos;
  const fpRate = falsePositives.length / neg;
  const lines = [...perType.entries()].map(([type, { n, ok, label }]) => `  ${label === 'positive' ? 'recall' : 'clean '} ${type.padEnd(26)} ${ok}/${n}`);
  console.log(`masking corpus: ${pos} positives, ${neg} hard negatives\n${lines.join('\n')}`);
  console.log(`recall ${recall.toFixed(4)} (${misses.length} missed), false-positive rate ${(fpRate * 100).toFixed(2)} % (${falsePositives.length})`);
  if (misses.length > 0) console.log(`missed:\n  ${misses.slice(0, 20).join('\n  ')}`);
  if (falsePositives.length > 0) console.log(`false positives:\n  ${falsePositives.slice(0, 20).join('\n  ')}`);
  // Every built-in detector is represented.
  for (const type of ['credit_card', 'us_ssn', 'iban', 'email', 'phone', 'jwt', 'private_key', 'aws_access_key', 'aws_secret_key', 'github_token', 'gitlab_token', 'slack_token', 'slack_webhook', 'stripe_key', 'google_api_key', 'npm_token', 'url_password', 'password', 'generic_secret', 'ipv4', 'ipv6', 'uk_nino', 'ca_sin', 'in_aadhaar', 'br_cpf', 'es_dni', 'openai_key', 'anthropic_key', 'huggingface_token', 'vendor_token', 'password_hash', 'personal_data']) {
    assert.ok((perType.get(type)?.n ?? 0) >= 10, `corpus has positives for ${type}`);
  }
  assert.ok(recall >= 0.99, `recall ${recall} < 0.99`);
  assert.ok(fpRate <= 0.01, `false-positive rate ${fpRate} > 1 %`);
});
