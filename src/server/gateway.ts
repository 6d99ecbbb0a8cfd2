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
import { openAuditLog, type AuditLog } from '../audit/index.js';
import { createPipeline, type Pipeline } from '../pipeline/pipeline.js';
import type { Engine } from '../connectors/engine.js';
import { createPostgresEngine } from '../connectors/postgres/index.js';

export interface GatewayOptions {
  readonly clock?: () => number;
  readonly log?: (line: string) => void;
}

export interface Gateway {
  readonly config: SluiceConfig;
  readonly pipeline: Pipeline;
  readonly audit: AuditLog;
  /** Bound addresses, by listener. */
  readonly addresses: { readonly postgres?: { host: string; port: number }; readonly http?: { host: string; port: number } };
  close(): Promise<void>;
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
  const audit = await openAuditLog(config, { mask: (t) => auditMasker.maskText(t), ...(options.clock !== undefined ? { clock: options.clock } : {}) });
  try {
    const authenticator = await createAuthenticator(config, options.clock !== undefined ? { clock: options.clock } : {});
    const policy = createPolicyEngine(config);
    const pipeline = createPipeline({ config, authenticator, policy, audit, ...(options.clock !== undefined ? { clock: options.clock } : {}) });
    await pipeline.record({ type: 'config.load', details: { path: config.path, policyVersion: policy.version } });
    const maskerFor = (name: string): Masker => {
      const m = maskers.get(name);
      if (m === undefined) throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no masker for connection ${name}`);
      return m;
    };
    const engines: Engine[] = [];
    const addresses: { postgres?: { host: string; port: number }; http?: { host: string; port: number } } = {};
    const ctx = { config, pipeline, maskerFor, log };
    if (config.listen.postgres !== undefined) {
      const pgEngine = createPostgresEngine(ctx);
      addresses.postgres = await pgEngine.listen(config.listen.postgres);
      engines.push(pgEngine);
    }
    await pipeline.record({ type: 'gateway.start', details: { listen: addresses } });
    let closed = false;
    return {
      config,
      pipeline,
      audit,
      addresses,
      async close() {
        if (closed) return;
        closed = true;
        for (const e of engines) await e.close();
        await pipeline.record({ type: 'gateway.stop' }).catch(() => undefined);
        await audit.close();
      },
    };
  } catch (err) {
    await audit.close();
    throw err;
  }
}
