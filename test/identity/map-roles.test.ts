import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileRoleMap } from '../../src/identity/map-roles.js';
import { githubActionsClaims, tempConfig } from './helpers/config.js';

const GH = 'https://token.actions.githubusercontent.com';
const OTHER = 'https://idp.example.com';

function roleMapFor(rolesYaml: string) {
  const cfg = tempConfig(
    `  issuers:\n    - issuer: ${GH}\n      audience: sluice\n    - issuer: ${OTHER}\n      audience: sluice\n    - local: true\n  roles:\n${rolesYaml}`,
  );
  try {
    return compileRoleMap(cfg.config);
  } finally {
    cfg.cleanup();
  }
}

const ghContext = (claims: Record<string, unknown>) => ({ issuer: GH, subject: `repo:${String(claims.repository)}:ref:${String(claims.ref)}`, claims });

test('GitHub Actions claims are expressible: repository, ref, environment, job_workflow_ref, run_id, actor, subject, issuer', () => {
  const map = roleMapFor(`    - name: main-branch
      when: claims.repository == "acme/app" && claims.ref == "refs/heads/main"
    - name: prod-deploy
      when: claims.environment == "production" && claims.job_workflow_ref.startsWith("acme/platform/.github/workflows/deploy.yml@")
    - name: recent-run
      when: int(claims.run_id) > 9000000000 && claims.actor in ["octocat", "hubot"]
    - name: by-subject
      when: subject.startsWith("repo:acme/") && issuer == "${GH}"
    - name: protected-ref
      when: has(claims.ref_protected) && claims.ref_protected == "true"
`);
  assert.deepEqual(map.grantRemote(ghContext(githubActionsClaims())), ['main-branch', 'recent-run', 'by-subject', 'protected-ref']);
  assert.deepEqual(
    map.grantRemote(ghContext(githubActionsClaims({ job_workflow_ref: 'acme/platform/.github/workflows/deploy.yml@refs/tags/v1', ref: 'refs/heads/dev' }))),
    ['prod-deploy', 'recent-run', 'by-subject', 'protected-ref'],
  );
  assert.deepEqual(map.grantRemote(ghContext({ repository: 'evil/app', ref: 'refs/heads/main' })), []);
});

test('roles without `when` are never granted to remote tokens; issuer-restricted roles only to their issuer', () => {
  const map = roleMapFor(`    - name: ops
    - name: gh-any
      issuer: ${GH}
      when: "true"
    - name: other-any
      issuer: ${OTHER}
      when: "true"
    - name: local-only
      issuer: local
      when: "true"
`);
  assert.deepEqual(map.grantRemote(ghContext(githubActionsClaims({ sluice_roles: ['ops'] }))), ['gh-any']);
  assert.deepEqual(map.grantRemote({ issuer: OTHER, subject: 's', claims: {} }), ['other-any']);
});

test('grantLocal keeps only defined roles that the local issuer may hold', () => {
  const map = roleMapFor(`    - name: ops
    - name: ci
      when: claims.repository == "acme/app"
    - name: gh-only
      issuer: ${GH}
      when: "true"
    - name: local-only
      issuer: local
`);
  assert.deepEqual(map.grantLocal(['ops', 'ci', 'gh-only', 'local-only', 'nope', 'ops']), ['ops', 'ci', 'local-only']);
  assert.deepEqual(map.localRoleNames, ['ops', 'ci', 'local-only']);
});

test('a malformed condition or an unknown issuer reference stops startup', () => {
  assert.throws(() => roleMapFor('    - name: bad\n      when: claims.repository == \n'), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'SLUICE_CONFIG_INVALID');
    assert.match((err as Error).message, /identity\.roles\[0\]\.when: invalid CEL/);
    return true;
  });
  assert.throws(() => roleMapFor('    - name: bad\n      issuer: https://nope.example\n      when: "true"\n'), /identity\.roles\[0\]\.issuer: https:\/\/nope\.example is not one of identity\.issuers/);
});

test('a condition that errors at evaluation (type mismatch) grants nothing', () => {
  const map = roleMapFor('    - name: typed\n      when: claims.run_id > 5\n');
  assert.deepEqual(map.grantRemote(ghContext(githubActionsClaims())), []);
  assert.deepEqual(map.grantRemote(ghContext({ run_id: 6 })), ['typed']);
});
