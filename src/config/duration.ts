import { SluiceError } from '../errors.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse `90s`, `15m`, `12h`, `1h30m`, `250ms` into milliseconds. Numbers are seconds. */
export function parseDuration(value: string | number, where: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: duration must be a non-negative number of seconds`);
    return Math.round(value * 1000);
  }
  const text = value.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: "${value}" is not a duration (expected e.g. 30s, 15m, 12h, 1h30m)`);
  }
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  return Math.round(total);
}

/** The largest whole unit: `2h`, `90m`, `15s`, `250ms`; zero is `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
