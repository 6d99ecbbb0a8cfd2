/**
 * What the HTTP-based engines (HTTP, Kubernetes) share beyond EngineContext: defaults, the route
 * prefix convention and how one request is decided.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { SluiceConfig } from '../../config/index.js';
import type { SessionInfo } from '../../pipeline/session.js';
import type { Action, Decision } from '../../pipeline/types.js';
import { parseDuration } from '../../config/index.js';
import type { EngineContext } from '../engine.js';

/** Bodies Sluice buffers or accepts by default when a connection does not say. */
export const HTTP_DEFAULTS = {
  maxRequestBytes: 10 * 1024 * 1024,
  maxResponseBytes: 16 * 1024 * 1024,
  approvalWaitMs: 25_000,
} as const;

/** What an HTTP-based engine needs beyond EngineContext: a way to decide one request. */
export type DecideRequest = (session: SessionInfo, action: Action) => Decision;

export interface RequestEngineContext extends EngineContext {
  /**
   * Decide an HTTP or Kubernetes action for a session. Optional while Pipeline has no `decide`:
   * pass `(s, a) => policy.decide(s.identity, s.role, a)`.
   */
  readonly decide?: DecideRequest;
}

/** Resolve the decide function from the pipeline (when it has one) or the context; throws TypeError if neither. */
export function resolveDecide(ctx: RequestEngineContext): DecideRequest {
  const fromPipeline = (ctx.pipeline as unknown as { decide?: unknown }).decide;
  if (typeof fromPipeline === 'function') return (s, a) => (fromPipeline as DecideRequest).call(ctx.pipeline, s, a);
  if (ctx.decide !== undefined) return ctx.decide;
  throw new TypeError('HTTP/Kubernetes engines need ctx.decide (or pipeline.decide) to evaluate request rules');
}

export function defaultPrefix(type: 'http' | 'kubernetes', name: string): string {
  return `/${type === 'http' ? 'http' : 'k8s'}/${name}`;
}


/** A connection's body limits and approval wait, with the defaults filled in (`where` names it in errors). */
export function connectionLimits(
  c: { readonly maxRequestBytes?: number; readonly maxResponseBytes?: number; readonly approvalWait?: string | number },
  where: string,
): { readonly maxRequestBytes: number; readonly maxResponseBytes: number; readonly approvalWaitMs: number } {
  return {
    maxRequestBytes: c.maxRequestBytes ?? HTTP_DEFAULTS.maxRequestBytes,
    maxResponseBytes: c.maxResponseBytes ?? HTTP_DEFAULTS.maxResponseBytes,
    approvalWaitMs: c.approvalWait === undefined ? HTTP_DEFAULTS.approvalWaitMs : parseDuration(c.approvalWait, `${where}.approvalWait`),
  };
}

/**
 * Whether any policy rule that can apply to `connection` names a fact matching `fact` in its
 * `when` (`http.json`, `k8s.object`): such facts need the request body read before deciding.
 */
export function rulesRead(config: SluiceConfig, connection: string, fact: RegExp): boolean {
  return config.policies.some((p) => (p.connection === connection || p.connection === '*') && p.rules.some((r) => typeof r.when === 'string' && fact.test(r.when)));
}

/** Whether a request carries a body (a declared length above zero, or a chunked one). */
export function hasRequestBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * The part of a grant-window fingerprint that names a body rules read (` #` and 16 hex digits of
 * its SHA-256): a window approved for one JSON-RPC call or manifest covers only the same body.
 */
export function bodyFingerprint(body: Buffer): string {
  return ` #${createHash('sha256').update(body).digest('hex').slice(0, 16)}`;
}
