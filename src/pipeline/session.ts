/**
 * A session is one authenticated client connection (or one HTTP request stream) bound to one
 * identity, one active role and one connection. Shared by every engine; created by the pipeline.
 */
import { SluiceError } from '../errors.js';
import type { Identity } from './types.js';

export interface SessionInfo {
  /** Random, unguessable, URL-safe id. */
  readonly id: string;
  readonly connection: string;
  /** `postgres`, `http`, `kubernetes`, … */
  readonly protocol: string;
  readonly identity: Identity;
  /** The role this session acts as (one of `identity.roles`). */
  readonly role: string;
  /** Client address `ip:port`. */
  readonly source: string;
  /** Upstream target, e.g. `127.0.0.1:5432/app`. */
  readonly upstreamTarget: string;
  /** Upstream account used (never its credential). */
  readonly upstreamUser: string;
  /** Wall-clock start, ms since epoch. */
  readonly startedAt: number;
  /** Client software when the protocol says (`application_name`, User-Agent). */
  readonly client?: string;
  /**
   * When the session must end, ms since epoch: its token's `exp` plus the allowed clock skew and
   * `identity.tokenExpiryGrace` (`identity.onTokenExpiry: end`, the default). Absent: it lives on
   * after its token.
   */
  readonly endsAt?: number;
}

/** The session's token expired (`endsAt` passed): nothing new may start in it. */
export function sessionExpired(session: SessionInfo, now: number): boolean {
  return session.endsAt !== undefined && now >= session.endsAt;
}

/** The error a session ended by its token's expiry answers with (sqlstate 28000, HTTP 401). */
export function tokenExpiredError(session: SessionInfo): SluiceError {
  const exp = session.identity.expiresAt * 1000;
  // With a grace past the expiry (more than the clock skew), say until when the session could run.
  const until = session.endsAt !== undefined && session.endsAt - exp > 60_000 ? `; a session may outlive its token until ${new Date(session.endsAt).toISOString()} (identity.tokenExpiryGrace)` : '';
  return new SluiceError('SLUICE_TOKEN_EXPIRED', `the token this session signed in with expired at ${new Date(exp).toISOString()}${until}; connect again with a fresh token (identity.onTokenExpiry)`);
}

/** Longest delay `setTimeout` takes (2^31 - 1 ms, ~24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Call `fn` once the session's token expired (`endsAt`); returns a function that cancels it.
 * Nothing is armed for a session that outlives its token. The timer never holds the process open.
 */
export function atSessionEnd(session: SessionInfo, fn: () => void, clock: () => number = Date.now): () => void {
  if (session.endsAt === undefined) return () => undefined;
  const endsAt = session.endsAt;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = endsAt - clock();
    if (left <= 0) {
      timer = undefined;
      fn();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
}
