/**
 * The shared pipeline every engine calls: authenticate → decide → record. Engines never talk to
 * identity, policy or audit directly, so a rule or an audit field is written once for every protocol.
 */
import { randomBytes } from 'node:crypto';
import { SluiceError, toSluiceError } from '../errors.js';
import type { SluiceConfig, ResolvedConnection } from '../config/index.js';
import type { Action, Decision, Identity, SqlFacts } from './types.js';
import type { SessionInfo } from './session.js';
import type { AuditEventInput } from '../audit/index.js';

/** What an engine reports when a session ends. */
export interface SessionSummary {
  readonly reason: string;
  /** Commands the client sent, denied ones included (as `sluice sessions list` counts `command` records). */
  readonly commands?: number;
  /** Of those, how many were refused. */
  readonly denied?: number;
  readonly bytes?: number;
  readonly mask?: readonly { readonly detector: string; readonly column?: string; readonly count: number }[];
}

export interface AuthenticatorLike {
  verify(token: string): Promise<Identity>;
}

export interface PolicyLike {
  decide(identity: Identity, role: string, action: Action): Decision;
  /** Parse `sql` and decide each statement; the overall decision is the first deny, else review, else allow. */
  decideAll(identity: Identity, role: string, connection: string, sql: string): SqlDecision;
  isReadOnly(role: string, connection: string): boolean;
  readonly version: string;
}

export interface AuditLike {
  /** Resolves once the record is durable; rejects when it can't be written. */
  append(event: AuditEventInput, options?: { readonly defer?: boolean }): Promise<unknown>;
}

export interface PipelineDeps {
  readonly config: SluiceConfig;
  readonly authenticator: AuthenticatorLike;
  readonly policy: PolicyLike;
  readonly audit: AuditLike;
  readonly clock?: () => number;
}

export interface OpenSessionRequest {
  readonly token: string;
  /** Role asked for by the client; empty means "my only role". */
  readonly role: string;
  readonly connection: string;
  readonly protocol: 'postgres' | 'http' | 'kubernetes';
  readonly source: string;
  readonly client?: string;
}

export interface SqlDecision {
  /** The decision that settles the whole text: the first deny, else the first review, else allow. */
  readonly decision: Decision;
  readonly statements: readonly { readonly text: string; readonly facts: SqlFacts; readonly decision: Decision }[];
  /** The parser's message when the text does not parse. */
  readonly error?: string;
}

export interface Pipeline {
  /** The configuration decisions are made from (a reload replaces its policies). */
  readonly config: SluiceConfig;
  readonly policyVersion: string;
  connection(name: string): ResolvedConnection | undefined;
  openSession(req: OpenSessionRequest): Promise<{ session: SessionInfo; connection: ResolvedConnection; readOnly: boolean }>;
  decideSql(session: SessionInfo, sql: string): SqlDecision;
  /** Decide one non-SQL action (HTTP request, Kubernetes request) for a session. */
  decide(session: SessionInfo, action: Action): Decision;
  record(event: AuditEventInput): Promise<void>;
  endSession(session: SessionInfo, summary: SessionSummary): Promise<void>;
  /**
   * Decide with `policy` (built from `config`) from now on: every later statement and request,
   * sessions already open included. The caller checked that nothing but the policies changed.
   */
  replacePolicy(config: SluiceConfig, policy: PolicyLike): void;
}

const DEFERRED = { defer: true } as const;

export function newSessionId(): string {
  return randomBytes(12).toString('base64url');
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { authenticator, audit } = deps;
  // Swapped whole by a policy reload, so a decision never mixes two versions.
  let current = { config: deps.config, policy: deps.policy };
  const config = deps.config;
  const clock = deps.clock ?? Date.now;
  const connections = new Map(config.connections.map((c) => [c.name, c] as const));

  const record = async (event: AuditEventInput): Promise<void> => {
    try {
      // A command's result is recorded after the client has its answer and nothing waits on it:
      // it joins the next commit (within DEFER_MS) instead of costing a write of its own.
      await audit.append(event, event.type === 'command.result' ? DEFERRED : undefined);
    } catch (err) {
      // Fail closed: a command that can't be recorded does not run.
      if (err instanceof SluiceError && err.code === 'SLUICE_AUDIT_UNAVAILABLE') throw err;
      throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', 'audit log unavailable: command refused', { cause: err });
    }
  };

  const hasPolicy = (role: string, connection: string): boolean =>
    current.config.policies.some((p) => (p.role === role || p.role === '*') && (p.connection === connection || p.connection === '*'));

  return {
    get config() {
      return current.config;
    },
    get policyVersion() {
      return current.policy.version;
    },
    connection: (name) => connections.get(name),

    async openSession(req) {
      const started = clock();
      const base = { connection: req.connection, protocol: req.protocol, source: req.source };
      try {
        if (req.token === '') throw new SluiceError('SLUICE_TOKEN_MISSING', 'no token presented: send the OIDC token as the password');
        if (Buffer.byteLength(req.token) > config.identity.maxTokenBytes) {
          throw new SluiceError('SLUICE_TOKEN_TOO_LARGE', `token is larger than ${config.identity.maxTokenBytes} bytes`);
        }
        const identity = await authenticator.verify(req.token);
        const connection = connections.get(req.connection);
        if (connection === undefined) {
          throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `connection "${req.connection}" is not configured`);
        }
        const expectedType = req.protocol === 'kubernetes' ? 'kubernetes' : req.protocol;
        if (connection.type !== expectedType) {
          throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `connection "${req.connection}" is a ${connection.type} connection, not ${req.protocol}`);
        }
        let role = req.role;
        if (role === '') {
          if (identity.roles.length === 0) {
            throw new SluiceError('SLUICE_ROLE_NOT_GRANTED', `token grants ${identity.subject} no role: no identity.roles entry matches its claims`);
          }
          if (identity.roles.length !== 1) {
            throw new SluiceError('SLUICE_ROLE_NOT_GRANTED', `token grants ${identity.roles.length} roles; name one (user = role or role@connection)`);
          }
          role = identity.roles[0] as string;
        }
        if (!identity.roles.includes(role)) {
          throw new SluiceError('SLUICE_ROLE_NOT_GRANTED', `role "${role}" is not granted to ${identity.subject} (granted: ${identity.roles.join(', ') || 'none'})`);
        }
        if (!hasPolicy(role, req.connection)) {
          throw new SluiceError('SLUICE_ROLE_NOT_GRANTED', `role "${role}" has no policy for connection "${req.connection}"`);
        }
        const upstream = describeUpstream(connection);
        const session: SessionInfo = {
          id: newSessionId(),
          connection: req.connection,
          protocol: req.protocol,
          identity,
          role,
          source: req.source,
          upstreamTarget: upstream.target,
          upstreamUser: upstream.user,
          startedAt: started,
          ...(req.client !== undefined ? { client: req.client } : {}),
          // The token was accepted up to `exp` plus the skew; what it opened may run the grace (the role's, else the gateway's) past that.
          ...(config.identity.onTokenExpiry === 'end'
            ? { endsAt: identity.expiresAt * 1000 + config.identity.clockSkewMs + (config.identity.roleTokenExpiryGraceMs.get(role) ?? config.identity.tokenExpiryGraceMs) }
            : {}),
        };
        await record({ type: 'auth.success', session, outcome: 'success' });
        const { policy } = current;
        await record({ type: 'session.start', session, policyVersion: policy.version, outcome: 'success' });
        return { session, connection, readOnly: policy.isReadOnly(role, req.connection) };
      } catch (err) {
        const e = toSluiceError(err);
        if (e.code !== 'SLUICE_AUDIT_UNAVAILABLE') {
          await record({ type: 'auth.failure', ...base, role: req.role, outcome: 'failure', error: { code: e.code, message: e.message } }).catch(() => undefined);
        }
        throw e;
      }
    },

    decideSql(session, sql) {
      return current.policy.decideAll(session.identity, session.role, session.connection, sql);
    },

    decide(session, action) {
      return current.policy.decide(session.identity, session.role, action);
    },

    record,

    replacePolicy(nextConfig, nextPolicy) {
      current = { config: nextConfig, policy: nextPolicy };
    },

    async endSession(session, summary) {
      const { reason, commands, denied, bytes, mask } = summary;
      await record({
        type: 'session.end',
        session,
        durationMs: clock() - session.startedAt,
        ...(bytes !== undefined ? { bytes } : {}),
        ...(mask !== undefined && mask.length > 0 ? { mask } : {}),
        details: { reason, commands: commands ?? 0, denied: denied ?? 0 },
      });
    },
  };
}

function describeUpstream(c: ResolvedConnection): { target: string; user: string } {
  switch (c.type) {
    case 'postgres':
      return { target: `${c.upstream.host}:${c.upstream.port}/${c.upstream.database}`, user: c.upstream.user };
    case 'http':
    case 'kubernetes':
      return { target: c.upstream.url, user: c.upstream.auth === undefined ? 'none' : Object.keys(c.upstream.auth)[0] ?? 'none' };
    default: {
      const never: never = c;
      throw new SluiceError('SLUICE_CONFIG_INVALID', `unknown connection type ${(never as { type: string }).type}`);
    }
  }
}
