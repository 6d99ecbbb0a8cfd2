/** A real HTTP listener (the gateway's) with the approvals API mounted, and local tokens for its users. */
import { createApprovalService, createApprovalsApi, type ApprovalService } from '../../src/approvals/index.js';
import { createAuthenticator, mintLocalToken } from '../../src/identity/index.js';
import type { Identity } from '../../src/pipeline/types.js';
import { createHttpListener } from '../../src/server/http-server.js';
import { recorder, tempConfig, type Recorder, type TempConfig } from './helpers.js';

export interface ApiFixture {
  readonly cfg: TempConfig;
  readonly svc: ApprovalService;
  readonly rec: Recorder;
  readonly baseUrl: string;
  /** Mint a local token and the identity the gateway verifies it to. */
  user(subject: string, roles: string[], sponsor?: string): Promise<{ token: string; identity: Identity }>;
  close(): Promise<void>;
}

export async function startApi(): Promise<ApiFixture> {
  const cfg = tempConfig();
  const rec = recorder();
  const authenticator = await createAuthenticator(cfg.config);
  const listener = createHttpListener(() => undefined);
  const { port } = await listener.listen('127.0.0.1:0');
  const baseUrl = `http://127.0.0.1:${port}`;
  const svc = await createApprovalService(cfg.config, { record: (e) => rec.record(e), publicUrl: baseUrl });
  listener.mount('/api/v1/approvals', createApprovalsApi(svc, (t) => authenticator.verify(t)));
  return {
    cfg,
    svc,
    rec,
    baseUrl,
    async user(subject, roles, sponsor) {
      const token = await mintLocalToken(cfg.config, { role: roles, subject, ...(sponsor !== undefined ? { sponsor } : {}) });
      return { token, identity: await authenticator.verify(token) };
    },
    async close() {
      await svc.close();
      await listener.close();
      cfg.cleanup();
    },
  };
}
