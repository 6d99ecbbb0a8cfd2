/**
 * `startAuditStreams`: one streamer per `audit.stream` entry, woken by the log's commit hook.
 * Destinations are validated before anything starts, so a bad entry fails the gateway's startup.
 */
import type { SluiceConfig } from '../../config/load-config.js';
import type { AuditLog } from '../audit-log.js';
import { AuditStreamer, STREAM_DEFAULTS, type StreamTuning } from './audit-streamer.js';
import { resolveDestinations, type StreamDestination } from './destinations.js';
import { createHttpSender } from './http-sender.js';
import type { Sender } from './sender.js';
import { createSyslogSender } from './syslog-sender.js';

export interface AuditStreamDeps {
  /** HTTP client; default the global fetch. */
  readonly fetch?: typeof fetch;
  /** ms since epoch, for log lines. */
  readonly clock?: () => number;
  /** Where delivery problems are reported (never a secret or a record); default stderr. */
  readonly logLine?: (line: string) => void;
  /** Batch caps, poll, retry and timeouts; defaults in STREAM_DEFAULTS. */
  readonly tuning?: Partial<StreamTuning>;
  /** Jitter source in [0, 1); default Math.random. */
  readonly random?: () => number;
}

export interface AuditStreams {
  /** Deliver what can be delivered within the grace period, then stop. Idempotent. */
  close(): Promise<void>;
}

export function startAuditStreams(config: SluiceConfig, log: AuditLog, deps: AuditStreamDeps = {}): AuditStreams {
  const destinations = resolveDestinations(config);
  const tuning = resolveTuning(deps.tuning);
  if (destinations.length === 0) return { close: async () => undefined };
  const logLine = deps.logLine ?? ((line: string) => process.stderr.write(`${line}\n`));
  const streamers = destinations.map(
    (destination) =>
      new AuditStreamer({
        store: log.store,
        destination,
        sender: senderFor(destination, tuning, deps),
        tuning,
        clock: deps.clock ?? Date.now,
        logLine,
        random: deps.random ?? Math.random,
      }),
  );
  const unsubscribe = log.onCommit(() => {
    for (const s of streamers) s.notify();
  });
  let closing: Promise<void> | undefined;
  return {
    close(): Promise<void> {
      closing ??= (async () => {
        unsubscribe();
        await Promise.all(streamers.map((s) => s.close()));
      })();
      return closing;
    },
  };
}

function senderFor(destination: StreamDestination, tuning: StreamTuning, deps: AuditStreamDeps): Sender {
  switch (destination.kind) {
    case 'http':
      return createHttpSender(destination, { fetch: deps.fetch ?? fetch, timeoutMs: tuning.requestTimeoutMs });
    case 'syslog':
      return createSyslogSender(destination, { timeoutMs: tuning.requestTimeoutMs, procId: String(process.pid) });
    default: {
      const never: never = destination;
      throw new TypeError(`unknown stream destination ${String((never as { kind?: unknown }).kind)}`);
    }
  }
}

function resolveTuning(overrides: Partial<StreamTuning> = {}): StreamTuning {
  const t: StreamTuning = { ...STREAM_DEFAULTS, ...overrides };
  for (const [key, value] of Object.entries(t)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 1) throw new TypeError(`startAuditStreams: tuning.${key} must be a positive number`);
  }
  if (t.retryMaxMs < t.retryBaseMs) throw new TypeError('startAuditStreams: tuning.retryMaxMs must be at least retryBaseMs');
  return t;
}
