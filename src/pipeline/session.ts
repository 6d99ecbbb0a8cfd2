/**
 * A session is one authenticated client connection (or one HTTP request stream) bound to one
 * identity, one active role and one connection. Shared by every engine; created by the pipeline.
 */
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
}
