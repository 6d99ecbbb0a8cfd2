/**
 * The narrow interface every protocol engine implements (Teleport's lib/srv/db/common Engine shape).
 * The server builds engines from one validated context and never knows a wire protocol.
 */
import type { Pipeline } from '../pipeline/pipeline.js';
import type { SluiceConfig } from '../config/index.js';

export interface EngineContext {
  readonly config: SluiceConfig;
  readonly pipeline: Pipeline;
  /** Masker per connection name (built once at startup from the connection's `mask` block). */
  readonly maskerFor: (connection: string) => MaskerLike;
  /** Diagnostic log line (never secrets). */
  readonly log: (line: string) => void;
}

/** What an engine needs of the masking stage; implemented by src/masking. */
export interface ColumnRefLike {
  readonly schema?: string;
  readonly table?: string;
  readonly column: string;
}

export interface ColumnPlanLike {
  readonly active: boolean;
  maskValue(index: number, value: string, stats?: MaskStatsRecorder): string;
}

export interface MaskStatsRecorder {
  add(detector: string, column?: string): void;
}

export interface MaskerLike {
  maskText(text: string, stats?: MaskStatsRecorder): string;
  planColumns(columns: readonly ColumnRefLike[]): ColumnPlanLike;
  /** True when the masker has column rules that need table/schema names. */
  readonly needsTableNames?: boolean;
}

export interface Engine {
  readonly protocol: string;
  /** Start accepting on `host:port`; resolves with the bound address. */
  listen(address: string): Promise<{ host: string; port: number }>;
  /** Stop accepting, end sessions gracefully, resolve when all are closed (or after the grace period). */
  close(graceMs?: number): Promise<void>;
  /** Live session count. */
  readonly sessions: number;
}

export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (m === null) throw new TypeError(`expected host:port, got ${address}`);
  return { host: m[1] as string, port: Number(m[2]) };
}
