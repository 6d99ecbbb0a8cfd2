/**
 * Counts of maskings per detector and column, for the session record. Holds names and numbers
 * only, never a value.
 */
export class MaskStats {
  readonly #counts = new Map<string, number>();
  #total = 0;

  add(detector: string, column?: string, count = 1): void {
    const key = column === undefined ? detector : `${detector}\u0000${column}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + count);
    this.#total += count;
  }

  get total(): number {
    return this.#total;
  }

  merge(other: MaskStats): void {
    for (const entry of other.toJSON()) this.add(entry.detector, entry.column, entry.count);
  }

  toJSON(): Array<{ detector: string; column?: string; count: number }> {
    const out: Array<{ detector: string; column?: string; count: number }> = [];
    for (const [key, count] of this.#counts) {
      const nul = key.indexOf('\u0000');
      out.push(nul < 0 ? { detector: key, count } : { detector: key.slice(0, nul), column: key.slice(nul + 1), count });
    }
    return out.sort((a, b) => (a.detector === b.detector ? (a.column ?? '').localeCompare(b.column ?? '') : a.detector.localeCompare(b.detector)));
  }
}
