/**
 * The narrow interface every protocol engine implements (Teleport's lib/srv/db/common Engine shape).
 * The server builds engines from one validated context and never knows a wire protocol.
 */
import type { Pipeline } from '../pipeline/pipeline.js';
import type { SessionInfo } from '../pipeline/session.js';
import type { SluiceConfig } from '../config/index.js';
import type { HttpListener } from '../server/http-server.js';
import type { Masker } from '../masking/index.js';
import type { SluiceError } from '../errors.js';

export interface EngineContext {
  readonly config: SluiceConfig;
  readonly pipeline: Pipeline;
  /** Masker per connection name (built once at startup from the connection's `mask` block). */
  readonly maskerFor: (connection: string) => Masker;
  /** Diagnostic log line (never secrets). */
  readonly log: (line: string) => void;
  /** The shared HTTP listener, for HTTP-based engines (absent when `listen.http` is not configured). */
  readonly http?: HttpListener;
  /** Holds `review` decisions for human approval (absent: review is refused as "approval required"). */
  readonly approvals?: ApprovalsLike;
}

/** What an engine needs of the approvals stage to hold a command; implemented by src/approvals. */
export interface HoldRequest {
  readonly session: SessionInfo;
  /** The command text, masked. */
  readonly text: string;
  /** Binds the approval to exactly this command (hash of the parsed statement or request and its parameters). */
  readonly statementHash: string;
  /** Normalised form for grant windows. */
  readonly fingerprint: string;
  readonly facts: Readonly<Record<string, unknown>>;
  readonly rule: string;
  /** The rule's `approval` block as configured (approvers, required, timeout, grant, explain). */
  readonly approval?: Readonly<Record<string, unknown>>;
  /** The planner's row estimate, when the rule asks for `explain`. */
  readonly estimatedRows?: number;
}

export interface HoldOutcome {
  readonly state: 'approved' | 'denied' | 'expired' | 'withdrawn';
  readonly approvers: readonly string[];
  readonly reason?: string;
}

export interface HeldRequest {
  readonly id: string;
  /** Where a reviewer approves it (REST URL). */
  readonly url: string;
  /** One line for the waiting client: the request id and how to approve it. */
  readonly notice: string;
  readonly outcome: Promise<HoldOutcome>;
  /** The error a refused outcome answers with (denied, expired, withdrawn). */
  errorFor(outcome: HoldOutcome): SluiceError;
}

export interface ApprovalsLike {
  /** Create a pending request; resolves with its id, where to approve it, and the eventual outcome. */
  hold(req: HoldRequest): Promise<HeldRequest>;
  /** An approved grant window covering this fingerprint for this session's subject/role/connection. */
  findGrant(session: SessionInfo, fingerprint: string): { id: string; expiresAt: number } | undefined;
  /** The client gave up (cancel, disconnect): withdraw the request. */
  withdraw(id: string, reason: string): Promise<void>;
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
