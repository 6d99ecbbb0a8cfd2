import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicyEngine, REVEAL_PROFILE } from '../../../src/policy/index.js';
import { k8sAction, parseRequestInfo } from '../../../src/policy/k8s/index.js';
import { parseRequestTarget } from '../../../src/policy/http/index.js';
import type { Identity } from '../../../src/pipeline/types.js';
import type { RawConfig } from '../../../src/config/index.js';

const ID: Identity = { issuer: 'sluice:local', subject: 'agent', claims: {}, roles: ['ops'], expiresAt: 0 };
const connections = [{ name: 'prod', type: 'kubernetes', upstream: { url: 'https://k8s.example' } }] as unknown as NonNullable<Parameters<typeof createPolicyEngine>[0]['connections']>;

function engine(rules: RawConfig['policies'][number]['rules']) {
  return createPolicyEngine({ policies: [{ role: 'ops', connection: 'prod', rules }], connections });
}
function act(method: string, target: string) {
  const t = parseRequestTarget(target);
  return k8sAction('prod', parseRequestInfo(method, t.path, t.query), `${method} ${target}`);
}

describe('policy over Kubernetes request attributes', () => {
  test('read alias covers get/list/watch and discovery, not writes or exec', () => {
    const e = engine([{ allow: ['read'] }]);
    assert.equal(e.decide(ID, 'ops', act('GET', '/api/v1/namespaces/default/pods')).effect, 'allow');
    assert.equal(e.decide(ID, 'ops', act('GET', '/api/v1/namespaces/default/pods?watch=1')).effect, 'allow');
    assert.equal(e.decide(ID, 'ops', act('GET', '/apis')).effect, 'allow');
    assert.equal(e.decide(ID, 'ops', act('DELETE', '/api/v1/namespaces/default/pods/x')).effect, 'deny');
    assert.equal(e.decide(ID, 'ops', act('GET', '/api/v1/namespaces/default/pods/x/exec?command=sh')).effect, 'deny');
  });

  test('CEL over k8s facts: namespace, resource, subresource, verb, apiGroup', () => {
    const e = engine([
      { deny: '*', when: 'k8s.resource == "secrets" && k8s.verb != "get"' },
      { review: ['create'], when: 'k8s.subresource == "exec"' },
      { allow: '*', when: 'k8s.namespace == "dev" || k8s.apiGroup == "apps"' },
    ]);
    assert.equal(e.decide(ID, 'ops', act('GET', '/api/v1/namespaces/dev/secrets')).effect, 'deny');
    assert.equal(e.decide(ID, 'ops', act('GET', '/api/v1/namespaces/dev/pods/x/exec')).effect, 'review');
    assert.equal(e.decide(ID, 'ops', act('DELETE', '/api/v1/namespaces/dev/pods')).effect, 'allow');
    assert.equal(e.decide(ID, 'ops', act('PATCH', '/apis/apps/v1/namespaces/prod/deployments/api')).effect, 'allow');
    assert.equal(e.decide(ID, 'ops', act('PATCH', '/api/v1/namespaces/prod/configmaps/x')).effect, 'deny');
  });

  test('reveal rides on the decision; paths scope non-resource URLs; unknown verbs are config errors', () => {
    const e = engine([{ allow: ['get'], when: 'k8s.resource == "secrets"', reveal: true }, { allow: ['get'], paths: ['/version', '/healthz'] }]);
    assert.equal(e.decide(ID, 'ops', act('GET', '/api/v1/namespaces/a/secrets/s')).maskProfile, REVEAL_PROFILE);
    assert.equal(e.decide(ID, 'ops', act('GET', '/version')).effect, 'allow');
    assert.equal(e.decide(ID, 'ops', act('GET', '/metrics')).effect, 'deny');
    assert.throws(() => engine([{ allow: ['select'] }]), /unknown Kubernetes verb "select"/);
  });
});
