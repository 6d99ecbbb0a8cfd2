/** Writes a real sluice.yaml into a fresh temp dir and loads it through the real loader. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type SluiceConfig } from '../../../src/config/index.js';

export interface TempConfig {
  readonly config: SluiceConfig;
  readonly dir: string;
  readonly path: string;
  cleanup(): void;
}

/** `identityYaml` is the `identity:` block's body, indented by two spaces. */
export function tempConfig(identityYaml: string): TempConfig {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-identity-'));
  const text = `dataDir: ${JSON.stringify(join(dir, 'data'))}\nidentity:\n${identityYaml}`;
  const path = join(dir, 'sluice.yaml');
  writeFileSync(path, text);
  return {
    config: parseConfig(text, path),
    dir,
    path,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The claims GitHub Actions puts in its OIDC token for a push to main with a production environment. */
export function githubActionsClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    repository: 'acme/app',
    repository_id: '123456789',
    repository_owner: 'acme',
    repository_owner_id: '4242',
    repository_visibility: 'private',
    ref: 'refs/heads/main',
    ref_type: 'branch',
    ref_protected: 'true',
    sha: 'd6e3b1c0f8a4e2b7c9d1e5f3a7b9c1d3e5f7a9b1',
    environment: 'production',
    workflow: 'deploy',
    workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
    job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
    event_name: 'push',
    run_id: '9876543210',
    run_number: '512',
    run_attempt: '1',
    actor: 'octocat',
    actor_id: '583231',
    runner_environment: 'github-hosted',
    ...overrides,
  };
}
