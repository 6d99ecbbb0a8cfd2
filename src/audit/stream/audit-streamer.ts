/**
 * One destination's delivery loop. It reads committed records after its cursor in seq order,
 * sends them in capped batches and moves the cursor only after the destination acknowledged
 * them, so a restart resumes where delivery stopped: at least once, never silently skipped.
 * It is never on the command path: `append` does not wait for it and cannot fail because of it.
 */
import { formatRecord } from '../export/export-records.js';
import type { AuditStore, StoredEvent } from '../store/types.js';
import { backoffDelay } from './backoff.js';
import type { StreamDestination } from './destinations.js';
import { describeError, DeliveryError, type Sender, type StreamBatch } from './sender.js';

export interface StreamTuning {
  /** Records per batch (also the page read from the store). */
  readonly batchRecords: number;
  /** Formatted bytes per batch: the most one destination holds in flight. One larger record still goes alone. */
  readonly batchBytes: number;
  /** Fallback poll when no commit notification came (records written by another gateway node). */
  readonly pollMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** One HTTP request, TCP connect+write or datagram. */
  readonly requestTimeoutMs: number;
  /** How long `close` keeps delivering before it aborts what is in flight. */
  readonly graceMs: number;
  /** While failing, at most one log line per this many ms. */
  readonly logEveryMs: number;
}

export const STREAM_DEFAULTS: StreamTuning = {
  batchRecords: 500,
  batchBytes: 1024 * 1024,
  pollMs: 5000,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  requestTimeoutMs: 10_000,
  graceMs: 5000,
  logEveryMs: 60_000,
};

export interface StreamerDeps {
  readonly store: AuditStore;
  readonly destination: StreamDestination;
  readonly sender: Sender;
  readonly tuning: StreamTuning;
  readonly clock: () => number;
  readonly logLine: (line: string) => void;
  readonly random: () => number;
}

interface Waiter {
  readonly resolve: () => void;
  /** Idle waits end on a new commit; backoff waits only on close. */
  readonly onCommit: boolean;
  readonly timer: NodeJS.Timeout;
}

export class AuditStreamer {
  readonly #d: StreamerDeps;
  readonly #abort = new AbortController();
  #cursor = 0;
  #dirty = true;
  #closing = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #waiter: Waiter | null = null;
  #failures = 0;
  #failingSince = 0;
  #lastLog = Number.NEGATIVE_INFINITY;
  /** Shrinks when the destination says a batch is too large; grows back after successes. */
  #batchLimit: number;
  readonly #done: Promise<void>;

  constructor(deps: StreamerDeps) {
    this.#d = deps;
    this.#batchLimit = deps.tuning.batchRecords;
    this.#abort.signal.addEventListener('abort', () => this.#wakeUp(), { once: true });
    this.#done = this.#run().catch((err: unknown) => {
      this.#d.logLine(`audit stream ${this.#d.destination.label}: stopped: ${describeError(err)}`);
    });
  }

  /** The commit hook: cheap and synchronous, it only marks work and ends an idle wait. */
  notify(): void {
    this.#dirty = true;
    if (this.#waiter?.onCommit === true) this.#wakeUp();
  }

  /** Keep delivering for up to `graceMs`, then abort what is in flight and stop. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#deadlineTimer = setTimeout(() => this.#abort.abort(), this.#d.tuning.graceMs);
      this.#wakeUp();
    }
    await this.#done;
    clearTimeout(this.#deadlineTimer);
    await this.#d.sender.close().catch(() => undefined);
  }

  #wakeUp(): void {
    const w = this.#waiter;
    if (w === null) return;
    this.#waiter = null;
    clearTimeout(w.timer);
    w.resolve();
  }

  #wait(ms: number, onCommit: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        resolve();
      }, ms);
      // The gateway's listeners keep the process alive; a stream's timers must not.
      timer.unref();
      this.#waiter = { resolve, onCommit, timer };
    });
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    const { store, destination } = this.#d;
    this.#cursor = await this.#withRetry(() => store.getCursor(destination.cursor));
    while (!this.#stopped) {
      // Cleared before reading: a commit that lands during the read sets it again.
      this.#dirty = false;
      let events: StoredEvent[];
      try {
        events = await store.readEvents(this.#cursor, this.#batchLimit);
      } catch (err) {
        if (!(await this.#failed(err))) return;
        continue;
      }
      if (events.length === 0) {
        if (this.#closing) return;
        if (!this.#dirty) await this.#wait(this.#d.tuning.pollMs, true);
        continue;
      }
      this.#noteGap(events[0]!.seq);
      const batch = this.#batch(events);
      if (batch.events.length === 0) continue;
      try {
        await this.#d.sender.send(batch, this.#abort.signal);
      } catch (err) {
        if (err instanceof DeliveryError && err.failure === 'too_large' && this.#batchLimit > 1) {
          this.#batchLimit = Math.max(1, Math.floor(batch.events.length / 2));
        }
        if (!(await this.#failed(err))) return;
        continue;
      }
      await this.#acknowledged(batch.events[batch.events.length - 1]!.seq);
    }
  }

  /** Build a batch from the page: formatted lines up to the byte cap (always at least one record). */
  #batch(events: readonly StoredEvent[]): StreamBatch {
    const out: StoredEvent[] = [];
    const lines: string[] = [];
    let bytes = 0;
    for (const ev of events) {
      let line: string;
      try {
        line = formatRecord(ev, this.#d.destination.format);
      } catch (err) {
        // A record that cannot be formatted would block the stream forever; it stays in the log.
        if (out.length > 0) break;
        this.#d.logLine(`audit stream ${this.#d.destination.label}: record ${ev.seq} cannot be formatted as ${this.#d.destination.format} (${describeError(err)}); skipped, it stays in the log`);
        this.#cursor = ev.seq;
        continue;
      }
      const size = Buffer.byteLength(line) + 1;
      if (out.length > 0 && bytes + size > this.#d.tuning.batchBytes) break;
      out.push(ev);
      lines.push(line);
      bytes += size;
    }
    return { events: out, lines };
  }

  #noteGap(firstSeq: number): void {
    if (firstSeq > this.#cursor + 1) {
      this.#d.logLine(`audit stream ${this.#d.destination.label}: records ${this.#cursor + 1}..${firstSeq - 1} were removed by retention before they were streamed`);
    }
  }

  async #acknowledged(seq: number): Promise<void> {
    this.#cursor = seq;
    if (this.#failures > 0) {
      this.#d.logLine(`audit stream ${this.#d.destination.label}: delivering again after ${this.#failures} failed attempt(s)`);
      this.#failures = 0;
      this.#lastLog = Number.NEGATIVE_INFINITY;
    }
    if (this.#batchLimit < this.#d.tuning.batchRecords) this.#batchLimit = Math.min(this.#d.tuning.batchRecords, this.#batchLimit * 2);
    try {
      await this.#d.store.setCursor(this.#d.destination.cursor, seq);
    } catch (err) {
      // Delivery happened; only the bookmark was lost. The next batch persists a later one, and a
      // restart before that re-sends these records (at least once).
      this.#d.logLine(`audit stream ${this.#d.destination.label}: cursor not saved (${describeError(err)})`);
    }
  }

  /** Log (throttled) and back off. Returns false when the stream should stop instead. */
  async #failed(err: unknown): Promise<boolean> {
    if (this.#stopped) return false;
    this.#failures += 1;
    const now = this.#d.clock();
    if (this.#failures === 1) this.#failingSince = now;
    const delay = backoffDelay(this.#failures, { baseMs: this.#d.tuning.retryBaseMs, maxMs: this.#d.tuning.retryMaxMs }, this.#d.random);
    if (now - this.#lastLog >= this.#d.tuning.logEveryMs) {
      this.#lastLog = now;
      const since = this.#failures > 1 ? ` (${this.#failures} attempts since ${new Date(this.#failingSince).toISOString()})` : '';
      this.#d.logLine(`audit stream ${this.#d.destination.label}: delivery failed: ${describeError(err)}${since}; records after ${this.#cursor} are kept and retried in ${(delay / 1000).toFixed(1)}s`);
    }
    // Closing cuts this wait short once (one more attempt); the grace deadline's abort ends it.
    await this.#wait(delay, false);
    return !this.#stopped;
  }

  async #withRetry<T>(op: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await op();
      } catch (err) {
        if (!(await this.#failed(err))) throw err;
      }
    }
  }
}
