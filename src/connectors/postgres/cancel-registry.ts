/**
 * Maps the BackendKeyData Sluice hands each client to the upstream's real key, so a CancelRequest
 * can only ever cancel the sender's own query. Keys are random; a guess hits with p = 2^-63.
 */
import { randomInt } from 'node:crypto';

export interface UpstreamKey {
  readonly pid: number;
  readonly secret: number;
}

export class CancelRegistry<T extends UpstreamKey> {
  readonly #entries = new Map<string, T>();

  /** Register an upstream key and return the client-facing (pid, secret). */
  register(target: T): { pid: number; secret: number; release: () => void } {
    for (;;) {
      const pid = randomInt(1, 0x7fffffff);
      const secret = randomInt(-0x80000000, 0x7fffffff);
      const key = `${pid}:${secret}`;
      if (this.#entries.has(key)) continue;
      this.#entries.set(key, target);
      return { pid, secret, release: () => this.#entries.delete(key) };
    }
  }

  lookup(pid: number, secret: number): T | undefined {
    return this.#entries.get(`${pid}:${secret}`);
  }

  get size(): number {
    return this.#entries.size;
  }
}
