/**
 * Masking engine throughput, one core: MB/s on clean, mixed and dense text, and ns per short
 * DB cell (string and byte paths). Run: `npx tsx bench/masking.ts` (figures in bench/README-masking.md).
 * Text is ASCII, so MB/s counts characters = bytes.
 */
import { createMasker, defaultMasker, MaskStats } from '../src/masking/index.js';

const SIZE = 4 * 1024 * 1024;
const MIN_MS = 1500;

/** Deterministic pseudo-random source so every run measures the same text. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

const WORDS = (
  'the agent ran a query against the orders table and the gateway recorded each step before it returned rows to the ' +
  'client while the approver reviewed a request for a schema change in staging after the release notes were merged'
).split(' ');

const LOG_TEMPLATES = [
  (r: () => number) => `2024-05-${10 + Math.floor(r() * 18)}T10:${10 + Math.floor(r() * 49)}:07.${Math.floor(r() * 900) + 100}Z INFO request done method=GET path=/api/v1/orders/${Math.floor(r() * 99999)} status=200 duration_ms=${Math.floor(r() * 400)}`,
  (r: () => number) => `order ${Math.floor(r() * 9e8)} shipped; invoice INV-2024-${Math.floor(r() * 99999)}; sha 3f9a2c1${Math.floor(r() * 1e6)}b; v1.${Math.floor(r() * 20)}.3`,
  (r: () => number) => `SELECT id, name, created_at FROM public.orders WHERE status = 'open' AND total > ${Math.floor(r() * 500)} LIMIT 100;`,
];

const SENSITIVE = [
  () => '4111 1111 1111 1111',
  () => '378282246310005',
  () => '123-45-6789',
  () => 'jane.roe@example.org',
  () => '+1 415 555 2671',
  () => 'DE89 3704 0044 0532 0130 00',
  () => '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',
  () => 'AKIAIOSFODNN7EXAMPLE',
  () => 'password=hunter2',
  () => 'postgres://app:s3cret@db:5432/app',
  () => 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
];

function prose(r: () => number, size: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const w = WORDS[Math.floor(r() * WORDS.length)]!;
    const piece = r() < 0.07 ? `${w}. ` : `${w} `;
    parts.push(piece);
    n += piece.length;
  }
  return parts.join('');
}

function logs(r: () => number, size: number, sensitiveEvery: number): string {
  const parts: string[] = [];
  let n = 0;
  let line = 0;
  while (n < size) {
    let l = LOG_TEMPLATES[Math.floor(r() * LOG_TEMPLATES.length)]!(r);
    if (sensitiveEvery > 0 && line % sensitiveEvery === 0) l += ` user=${SENSITIVE[Math.floor(r() * SENSITIVE.length)]!()}`;
    parts.push(l, '\n');
    n += l.length + 1;
    line++;
  }
  return parts.join('');
}

function dense(r: () => number, size: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const piece = `${WORDS[Math.floor(r() * WORDS.length)]!} ${SENSITIVE[Math.floor(r() * SENSITIVE.length)]!()}, `;
    parts.push(piece);
    n += piece.length;
  }
  return parts.join('');
}

function measure(label: string, fn: () => void, bytesPerCall: number): number {
  fn(); // warm up
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let ms = 0;
  while (ms < MIN_MS) {
    fn();
    calls++;
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const mbs = (bytesPerCall * calls) / (ms / 1000) / 1e6;
  console.log(`${label.padEnd(44)} ${mbs.toFixed(0).padStart(6)} MB/s`);
  return mbs;
}

function perCell(label: string, fn: () => void, cells: number): number {
  for (let i = 0; i < 3; i++) fn();
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let ns = 0;
  while (ns < MIN_MS * 1e6) {
    fn();
    calls++;
    ns = Number(process.hrtime.bigint() - t0);
  }
  const per = ns / (calls * cells);
  console.log(`${label.padEnd(44)} ${per.toFixed(0).padStart(6)} ns/${cells === 1 ? 'call' : 'cell'}`);
  return per;
}

const m = defaultMasker();
const r = rng(42);
const texts = {
  'clean prose': prose(r, SIZE),
  'clean logs (digits, key=value, timestamps)': logs(r, SIZE, 0),
  'mixed logs (1 sensitive value per 20 lines)': logs(r, SIZE, 20),
  'dense (a sensitive value every ~40 bytes)': dense(r, SIZE),
};

console.log(`node ${process.version}, ${SIZE / 1024 / 1024} MiB per text, default detector set`);
for (const [label, text] of Object.entries(texts)) {
  const stats = new MaskStats();
  measure(label, () => void m.maskText(text, stats), text.length);
}
{
  // Line by line, as the CLI, COPY and audit paths call it.
  const lines = texts['mixed logs (1 sensitive value per 20 lines)'].split('\n');
  measure('mixed logs, one maskText call per line', () => {
    for (const l of lines) m.maskText(l);
  }, texts['mixed logs (1 sensitive value per 20 lines)'].length);
}

// Short DB cells: a customers-like row mix, 1 in 8 sensitive.
const cellValues = ['Alice Johnson', 'alice@example.com', '2024-01-15 10:23:45+00', '42', 'Springfield', 'active', '4111 1111 1111 1111', '19.99', 'Premium plan, renews monthly', 'f47ac10b-58cc-4372-a567-0e02b2c3d479', 'US', '+1 415 555 2671', 'true', 'order-88412', 'N/A', 'Main St 12'];
const cols = cellValues.map((_, i) => ({ schema: 'public', table: 'customers', column: `c${i}` }));
const plan = m.planColumns(cols);
const N = 4096;
const rows = Array.from({ length: N }, (_, k) => cellValues.map((v, i) => (i === 1 && k % 2 === 0 ? `user${k}@example.org` : v)));
const bufRows = rows.map((row) => row.map((v) => Buffer.from(v)));
const clean = rows.map((row) => row.filter((_, i) => i !== 1 && i !== 6 && i !== 11));
perCell('short cells, maskValue (mix incl. PII)', () => {
  for (const row of rows) for (let i = 0; i < row.length; i++) plan.maskValue(i, row[i]!);
}, N * cellValues.length);
perCell('short cells, maskValue (no PII)', () => {
  for (const row of clean) for (let i = 0; i < row.length; i++) plan.maskValue(i, row[i]!);
}, N * (cellValues.length - 3));
perCell('short cells, maskBytes (mix incl. PII)', () => {
  for (const row of bufRows) for (let i = 0; i < row.length; i++) plan.maskBytes(i, row[i]!);
}, N * cellValues.length);
perCell('planColumns, same column array (cached)', () => void m.planColumns(cols), 1);
perCell('planColumns, equal new array (cached by names)', () => void m.planColumns([...cols]), 1);
const ruled = createMasker({ columns: { '*.c6': 'partial', '*.c1': 'hash' }, hashKey: 'bench-key-0123456789abcdef' });
const rplan = ruled.planColumns(cols);
perCell('short cells, column rules (partial + hash)', () => {
  for (const row of rows) for (let i = 0; i < row.length; i++) rplan.maskValue(i, row[i]!);
}, N * cellValues.length);
