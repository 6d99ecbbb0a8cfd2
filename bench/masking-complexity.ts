/**
 * Looks for masking inputs whose cost grows faster than their length (not part of `npm test`):
 * random periodic texts built from trigger snippets, each masked whole and as its first quarter
 * with the default and the `all` detector sets. Linear work takes ~4× as long for the whole; a
 * text that takes more than 8× (plus a floor) is printed as SUSPECT, and any quarter over a second
 * as SLOW. What it finds becomes an input of the pathological-input test
 * (test/masking/properties.test.ts).
 *
 *   npx tsx bench/masking-complexity.ts [--seed N] [--seconds S]
 */
import { createMasker, defaultMasker } from '../src/masking/index.js';

const arg = (name: string, dflt: number): number => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const maskers = [defaultMasker(), createMasker({ detectors: ['all'] })];
const SNIPPETS = [
  '%3D', '%22', '%3A', '\\"', '\\', '-----BEGIN ', 'PRIVATE KEY-----', '-----END ', 'password', '=', ':', ' ', '\n', '\\n', '"', "'", '@', 'a', '1', '12', '-', '_', '.', '$', '*', '<', '>', '</',
  'key', 'value', 'name', '{', '}', '[', ']', ',', 'ghp_', 'sk-', 'xox', 'eyJ', 'AKIA', 'AIza', '://', 'http', 'user', 'machine', 'login', 'secret', 'requirepass', 'enable', '\t',
  'SCRAM-SHA-256$', '$2b$', 'md5', 'dapi', 'hvs.', 'ya29.', 'DE89', 'AB', '4111', '+1', '(', ')', '#', ';', '&', '%', 'Bearer ', 'Authorization', 'PASSWORD ', 'IDENTIFIED BY ', '|',
  '-p', '--password', 'mysql ', 'curl -u ', 'Date of Birth', 'ssn', 'x', 'X', 'ENV ', 'set -x ', '0x', 'QUJD', '==', '/', '+', '?', 'sig=', 'amz', 'Signature=', 'ssh-rsa ', 'AAAA', 'K', 'L', '5', 'xprv',
];
let seed = arg('--seed', 1);
const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const time = (text: string): number => {
  let best = Infinity;
  for (let r = 0; r < 2; r++) {
    const t0 = process.hrtime.bigint();
    for (const m of maskers) m.maskText(text);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
};
const deadline = Date.now() + arg('--seconds', 120) * 1000;
let texts = 0;
let found = 0;
while (Date.now() < deadline) {
  texts++;
  const unit = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pick(SNIPPETS)).join('');
  const text = unit.repeat(Math.ceil(300_000 / unit.length)).slice(0, 300_000);
  const quarter = time(text.slice(0, text.length >> 2));
  if (quarter > 1000) console.log(`SLOW ${quarter.toFixed(0)} ms for a quarter: ${JSON.stringify(unit)}`);
  const whole = time(text);
  if (whole > 8 * quarter + 40) {
    found++;
    console.log(`SUSPECT ${whole.toFixed(0)} ms whole, ${quarter.toFixed(0)} ms its first quarter: ${JSON.stringify(unit)} repeated`);
  }
}
console.log(`${texts} texts, ${found} suspect`);
