/**
 * The composition root: builds every stage from one validated config, wires them into the shared
 * pipeline and starts the listeners. Misconfiguration throws here, before anything listens.
 */
import { mkdirSync } from 'node:fs';
import type { SluiceConfig } from '../config/index.js';
import { SluiceError } from '../errors.js';
import { createAuthenticator } from '../identity/index.js';
import { createPolicyEngine, initSqlParser } from '../policy/index.js';
import { createMasker, defaultMasker, type Masker } from '../masking/index.js';
import { openAuditLog, startAuditStreams, type AuditLog, type AuditStreams } from '../audit/index.js';
import { changedSections, configFingerprint, recordConfigLoad } from './config-audit.js';
import { createPipeline, type Pipeline } from '../pipeline/pipeline.js';
import type { ApprovalsLike, Engine } from '../connectors/engine.js';
import { createPostgresEngine } from '../connectors/postgres/index.js';
import { createHttpEngine } from '../connectors/http/index.js';
import { createKubernetesEngine } from '../connectors/kubernetes/index.js';
import { createApprovalService, createApprovalsApi, holdNotice, outcomeError, resolveApprovalSpec, APPROVALS_API_PREFIX, type ApprovalService } from '../approvals/index.js';
import { createHttpListener, sendJson, type HttpListener } from './http-server.js';
import { createConsole, createMeApi, CONSOLE_PREFIX, ME_API_PATH } from './console.js';
import { createSessionsApi, SESSIONS_API_PREFIX } from '../audit/api.js';
import { storeReader, threadReader, type AuditReader } from '../audit/read/reader.js';
import type { Identity } from '../pipeline/types.js';

/** How often a running gateway applies `audit.retention`. */
const RETENTION_INTERVAL_MS = 3_600_000;

export interface GatewayOptions {
  readonly clock?: () => number;
  readonly log?: (line: string) => void;
  /** How a SQLite audit log commits (`AuditLogDeps.writer`); the benchmark compares both. */
  readonly auditWriter?: 'thread' | 'inline';
}

export interface Gateway {
  /** The running configuration (its policies as last reloaded). */
  readonly config: SluiceConfig;
  readonly pipeline: Pipeline;
  readonly audit: AuditLog;
  /** Bound addresses, by listener. */
  readonly addresses: { readonly postgres?: { host: string; port: number }; readonly http?: { host: string; port: number } };
  /**
   * Re-read the configuration (`sluice serve` does on SIGHUP) and apply a change to `policies` at
   * once, sessions already open included. A change to any other section needs a restart: the
   * reload is then refused and nothing is applied. Either way the attempt is recorded
   * (`config.change`, and `config.load` when applied) before anything takes effect.
   */
  reload(load: () => SluiceConfig): Promise<ReloadResult>;
  close(): Promise<void>;
}

export interface ReloadResult {
  readonly applied: boolean;
  /** Top-level sections that differ from the running configuration. */
  readonly changed: readonly string[];
  readonly policyVersion: string;
  /** One line for the operator's log. */
  readonly message: string;
}

export async function startGateway(config: SluiceConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  await initSqlParser();
  const maskers = new Map<string, Masker>();
  for (const c of config.connections) {
    maskers.set(c.name, c.mask === undefined ? defaultMasker() : createMasker(c.mask, { secret: config.secret, where: `connections.${c.name}.mask` }));
  }
  // The audit log masks free text itself with the default detector set (defence in depth).
  const auditMasker = defaultMasker();
  let approvalService: ApprovalService | undefined;
  let streams: AuditStreams | undefined;
  let reader: AuditReader | undefined;
  const audit = await openAuditLog(config, { mask: (t) => auditMasker.maskText(t), log, ...(options.auditWriter !== undefined ? { writer: options.auditWriter } : {}), ...(options.clock !== undefined ? { clock: options.clock } : {}) });
  try {
    // Live streaming to SIEMs reads committed records after a persisted cursor; never on the command path.
    streams = startAuditStreams(config, audit, { logLine: log, ...(options.clock !== undefined ? { clock: options.clock } : {}) });
    const authenticator = await createAuthenticator(config, options.clock !== undefined ? { clock: options.clock } : {});
    const policy = createPolicyEngine(config);
    const pipeline = createPipeline({ config, authenticator, policy, audit, ...(options.clock !== undefined ? { clock: options.clock } : {}) });
    await recordConfigLoad(pipeline, audit.store, config, policy.version);
    const maskerFor = (name: string): Masker => {
      const m = maskers.get(name);
      if (m === undefined) throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no masker for connection ${name}`);
      return m;
    };
    const engines: Engine[] = [];
    const addresses: { postgres?: { host: string; port: number }; http?: { host: string; port: number } } = {};
    let http: HttpListener | undefined;
    if (config.listen.http !== undefined) {
      http = createHttpListener(log, config.tls);
      http.mount('/healthz', (_req, res) => sendJson(res, 200, { ok: true }));
      // Listen first so the approval URLs name the real port (the config may say :0).
      addresses.http = await http.listen(config.listen.http);
    }
    // The admin APIs verify their callers' tokens as the connectors verify agents'.
    const authenticate = (token: string): Promise<Identity> => authenticator.verify(token);
    // Approvals run when some role may approve; without one, `review` is refused as "approval required".
    let approvals: ApprovalsLike | undefined;
    if (config.identity.roles.some((r) => r.approver === true)) {
      const publicUrl = config.approvals.publicUrl ?? (addresses.http !== undefined ? `http://${addresses.http.host}:${addresses.http.port}` : undefined);
      approvalService = await createApprovalService(config, { record: pipeline.record, log, ...(publicUrl !== undefined ? { publicUrl } : {}), ...(options.clock !== undefined ? { clock: options.clock } : {}) });
      http?.mount(APPROVALS_API_PREFIX, createApprovalsApi(approvalService, authenticate));
      approvals = approvalsAdapter(config, approvalService, options.clock ?? Date.now);
    }
    // The audit read API, for roles configured `auditor: true` (AU-9(4)); every read is itself recorded.
    const auditorRoles = new Set(config.identity.roles.filter((r) => r.auditor === true).map((r) => r.name));
    if (http !== undefined) {
      if (auditorRoles.size > 0) {
        // SQLite reads run in a thread of their own, so a long read does not hold proxied traffic.
        reader = 'sqlite' in config.store ? threadReader({ path: config.store.sqlite, visible: () => audit.visible() }) : storeReader(audit.store);
        http.mount(SESSIONS_API_PREFIX, createSessionsApi({ reader, authenticate, auditorRoles, record: pipeline.record, ...(options.clock !== undefined ? { clock: options.clock } : {}) }));
      }
      const service = approvalService;
      http.mount(ME_API_PATH, createMeApi({ authenticate, ...(service !== undefined ? { isReviewer: (who: Identity) => service.isReviewer(who) } : {}), ...(auditorRoles.size > 0 ? { auditorRoles } : {}) }));
      http.mount(CONSOLE_PREFIX, createConsole());
    }
    const ctx = { config, pipeline, maskerFor, log, ...(approvals !== undefined ? { approvals } : {}), ...(http !== undefined ? { http } : {}) };
    // HTTP-based engines mount themselves on the shared listener (they refuse to start without one).
    if (config.connections.some((c) => c.type === 'http')) engines.push(createHttpEngine(ctx));
    if (config.connections.some((c) => c.type === 'kubernetes')) engines.push(createKubernetesEngine(ctx));
    if (config.listen.postgres !== undefined) {
      const pgEngine = createPostgresEngine(ctx);
      addresses.postgres = await pgEngine.listen(config.listen.postgres);
      engines.push(pgEngine);
    }

    await pipeline.record({ type: 'gateway.start', details: { listen: addresses } });
    // AU-11: with audit.retention set, sealed segments past it are removed at start and hourly
    // (their hashes stay, so verification still passes). `sluice audit prune` does it on demand.
    const prune = (): void => {
      audit.applyRetention().catch((err: unknown) => log(`audit retention failed: ${String(err)}`));
    };
    let retentionTimer: NodeJS.Timeout | undefined;
    if (config.audit.retention !== undefined) {
      prune();
      retentionTimer = setInterval(prune, RETENTION_INTERVAL_MS);
      retentionTimer.unref();
    }
    let closed = false;
    let reloading = Promise.resolve();
    const reload = async (load: () => SluiceConfig): Promise<ReloadResult> => {
      const running = pipeline.config;
      const refuse = async (message: string, changed: readonly string[], extra: Record<string, unknown> = {}): Promise<ReloadResult> => {
        await pipeline.record({ type: 'config.change', outcome: 'failure', error: { message }, details: { path: running.path, reload: true, changed, ...extra } });
        return { applied: false, changed, policyVersion: pipeline.policyVersion, message };
      };
      let next: SluiceConfig;
      try {
        next = load();
      } catch (err) {
        return refuse(`config reload refused: ${(err as Error).message}; the running configuration is unchanged`, []);
      }
      const before = configFingerprint(running);
      const after = configFingerprint(next);
      const changed = changedSections(before, after);
      const hashes = { from: before.hash, to: after.hash };
      if (changed.length === 0) return { applied: false, changed, policyVersion: pipeline.policyVersion, message: 'config reload: nothing changed' };
      const needsRestart = changed.filter((k) => k !== 'policies');
      if (needsRestart.length > 0) {
        return refuse(`config reload refused: ${needsRestart.join(', ')} changed, which takes a restart; nothing was applied (only policies reload live)`, changed, hashes);
      }
      let policy: ReturnType<typeof createPolicyEngine>;
      try {
        policy = createPolicyEngine(next);
      } catch (err) {
        return refuse(`config reload refused: ${(err as Error).message}; the running configuration is unchanged`, changed, hashes);
      }
      const from = pipeline.policyVersion;
      // Recorded before it takes effect: a change the log cannot hold is not made.
      await pipeline.record({ type: 'config.load', details: { path: next.path, policyVersion: policy.version, configHash: after.hash, sections: after.sections, reload: true } });
      await pipeline.record({ type: 'config.change', outcome: 'success', details: { path: next.path, reload: true, changed, ...hashes, policyVersion: { from, to: policy.version } } });
      pipeline.replacePolicy(next, policy);
      return { applied: true, changed, policyVersion: policy.version, message: `config reloaded: policies now ${policy.version} (was ${from})` };
    };
    return {
      get config() {
        return pipeline.config;
      },
      pipeline,
      audit,
      addresses,
      // One reload at a time, in the order asked for.
      reload: (load) => {
        const r = reloading.then(() => reload(load));
        reloading = r.then(
          () => undefined,
          () => undefined,
        );
        return r;
      },
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(retentionTimer);
        // Held clients learn the gateway is going away; their requests are withdrawn.
        await approvalService?.close();
        for (const e of engines) await e.close();
        await http?.close();
        await reader?.close();
        await pipeline.record({ type: 'gateway.stop' }).catch(() => undefined);
        await streams?.close();
        await audit.close();
      },
    };
  } catch (err) {
    await approvalService?.close().catch(() => undefined);
    await reader?.close().catch(() => undefined);
    await streams?.close().catch(() => undefined);
    await audit.close();
    throw err;
  }
}

/** Engines see only the narrow hold interface; the approvals stage keeps its own shapes. */
function approvalsAdapter(config: SluiceConfig, service: ApprovalService, clock: () => number): ApprovalsLike {
  return {
    async hold(req) {
      const spec = resolveApprovalSpec(config, req.approval, `rule ${req.rule}.approval`);
      const handle = await service.request({
        session: req.session,
        text: req.text,
        statementHash: req.statementHash,
        fingerprint: req.fingerprint,
        facts: req.facts,
        rule: req.rule,
        spec,
        ...(req.estimatedRows !== undefined ? { estimatedRows: req.estimatedRows } : {}),
      });
      return {
        id: handle.id,
        url: handle.url,
        notice: holdNotice(handle, clock()),
        outcome: handle.outcome,
        errorFor: (outcome) => outcomeError(handle.id, outcome) ?? new SluiceError('SLUICE_APPROVAL_FORBIDDEN', `approval request ${handle.id} did not approve the statement`),
      };
    },
    findGrant: (session, fingerprint) => service.findGrant(session, fingerprint),
    withdraw: (id, reason) => service.withdraw(id, reason),
  };
}
