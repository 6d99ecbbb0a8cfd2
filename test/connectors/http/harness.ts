/**
 * Builds the gateway pieces the way src/server/gateway.ts does (config, authenticator, policy,
 * pipeline, maskers, shared HTTP listener) around the HTTP and Kubernetes engines, with an
 * in-memory audit sink the test can read (and make fail, to check fail-closed behaviour).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type SluiceConfig } from '../../../src/config/index.js';
import { createAuthenticator, mintLocalToken } from '../../../src/identity/index.js';
import { createPolicyEngine } from '../../../src/policy/index.js';
import { createPipeline } from '../../../src/pipeline/pipeline.js';
import { createMasker, type Masker } from '../../../src/masking/index.js';
import { createHttpListener } from '../../../src/server/http-server.js';
import type { ApprovalsLike, Engine } from '../../../src/connectors/engine.js';
import { createHttpEngine } from '../../../src/connectors/http/index.js';
import { createKubernetesEngine } from '../../../src/connectors/kubernetes/index.js';
import type { AuditEventInput } from '../../../src/audit/index.js';

export interface TestGateway {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly config: SluiceConfig;
  readonly events: AuditEventInput[];
  /** Make every audit append fail while true. */
  auditDown: boolean;
  mint(role: string | string[], subject?: string): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly approvals?: ApprovalsLike;
  /** Extra files written to the temp dir before the config is parsed (name → contents). */
  readonly files?: Record<string, string | Buffer>;
}

/** `yaml` may use `${DIR}` for the temp dir. */
export async function startGateway(yaml: string, options: GatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-http-'));
  for (const [name, contents] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), contents, { mode: 0o600 });
  const text = yaml.replaceAll('${DIR}', dir);
  const configPath = join(dir, 'sluice.yaml');
  writeFileSync(configPath, text);
  const config = parseConfig(text, configPath);
  const authenticator = await createAuthenticator(config);
  const policy = createPolicyEngine(config);
  const events: AuditEventInput[] = [];
  const gw = { auditDown: false };
  const pipeline = createPipeline({
    config,
    authenticator,
    policy,
    audit: {
      append: async (e: AuditEventInput) => {
        if (gw.auditDown) throw new Error('audit store is down');
        events.push(e);
        return {};
      },
    },
  });
  const maskers = new Map<string, Masker>(config.connections.map((c, i) => [c.name, createMasker(c.mask, { secret: config.secret, where: `connections[${i}].mask` })]));
  const log: string[] = [];
  const http = createHttpListener((l) => log.push(l));
  const ctx = {
    config,
    pipeline,
    maskerFor: (name: string) => maskers.get(name) ?? createMasker({}),
    log: (l: string) => log.push(l),
    http,
    decide: (s: import('../../../src/pipeline/session.js').SessionInfo, a: import('../../../src/pipeline/types.js').Action) => policy.decide(s.identity, s.role, a),
    ...(options.approvals !== undefined ? { approvals: options.approvals } : {}),
  };
  const engines: Engine[] = [createHttpEngine(ctx), createKubernetesEngine(ctx)];
  const addr = await http.listen('127.0.0.1:0');
  return Object.assign(gw, {
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    dir,
    config,
    events,
    mint: (role: string | string[], subject = 'agent@test') => mintLocalToken(config, { role, subject }),
    async close() {
      await Promise.all(engines.map((e) => e.close(100)));
      await http.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
