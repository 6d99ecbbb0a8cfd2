/**
 * A fixed amount of masking work, for instruction counts that do not depend on the machine's load:
 *   valgrind --tool=callgrind node --single-threaded --import tsx bench/masking-count.ts <tree> R prose|logs|cells|bytes
 * Run with R = 2 and R = 10 and divide the difference by 8 for one pass (README-masking.md).
 * <tree> is a checkout (this one, or a git worktree of another commit) whose src/masking is loaded.
 */
const [root, rs, kind] = process.argv.slice(2) as [string, string, string];
const R = Number(rs);
const { createMasker } = await import(root + '/src/masking/index.ts');
const m = createMasker({});
const gpl = 'This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later version. ';
const prose = gpl.repeat(Math.ceil(1e6 / gpl.length));
let logs = '';
for (let i = 0; logs.length < 1e6; i++) logs += `2026-11-27T12:${String(i % 60).padStart(2, '0')}:00.123Z level=info svc=api req=${(i * 7919).toString(16)} dur_ms=${i % 997} status=200 path=/v1/orders/${i}\n`;
const cells = Array.from({ length: 20000 }, (_, i) => [`Ada Lovelace ${i}`, `order-${i}`, 'shipped', `ada${i}@example.com`, '4111 1111 1111 1111', `2026-11-${(i % 28) + 1}`][i % 6]!);
const plan = m.planColumns([{ column: 'note' }]);
const bufs = cells.map((c) => Buffer.from(c));
for (let r = 0; r < R; r++) {
  if (kind === 'prose') m.maskText(prose);
  else if (kind === 'logs') m.maskText(logs);
  else if (kind === 'cells') for (const c of cells) m.maskText(c);
  else for (const b of bufs) plan.maskBytes(0, b);
}
