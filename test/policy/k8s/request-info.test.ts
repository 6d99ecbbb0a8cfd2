import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveK8sVerbs, parseRequestInfo } from '../../../src/policy/k8s/index.js';
import { parseRequestTarget } from '../../../src/policy/http/index.js';

/** Request lines kubectl v1.32 sends (captured with -v=8), and the attributes the API server derives. */
const CASES: ReadonlyArray<readonly [string, string, string, Partial<Record<'verb' | 'apiGroup' | 'apiVersion' | 'resource' | 'subresource' | 'namespace' | 'name', string>> & { resourceRequest?: boolean }]> = [
  ['kubectl version', 'GET', '/version?timeout=32s', { verb: 'get', resourceRequest: false }],
  ['discovery', 'GET', '/api?timeout=32s', { verb: 'get', resourceRequest: false }],
  ['discovery', 'GET', '/apis?timeout=32s', { verb: 'get', resourceRequest: false }],
  ['discovery', 'GET', '/api/v1?timeout=32s', { verb: 'get', resourceRequest: false }],
  ['discovery', 'GET', '/apis/apps/v1?timeout=32s', { verb: 'get', resourceRequest: false }],
  ['openapi', 'GET', '/openapi/v2?timeout=32s', { verb: 'get', resourceRequest: false }],
  ['openapi', 'GET', '/openapi/v3/apis/apps/v1', { verb: 'get', resourceRequest: false }],
  ['get pods', 'GET', '/api/v1/namespaces/default/pods?limit=500', { verb: 'list', apiGroup: '', apiVersion: 'v1', resource: 'pods', namespace: 'default', name: '' }],
  ['get pods -A', 'GET', '/api/v1/pods?limit=500', { verb: 'list', resource: 'pods', namespace: '' }],
  ['get pod web-0', 'GET', '/api/v1/namespaces/default/pods/web-0', { verb: 'get', resource: 'pods', name: 'web-0', namespace: 'default' }],
  ['get pods -w', 'GET', '/api/v1/namespaces/default/pods?resourceVersion=123&watch=true', { verb: 'watch', resource: 'pods' }],
  ['watch=1', 'GET', '/api/v1/namespaces/default/pods?watch=1', { verb: 'watch' }],
  ['watch=false', 'GET', '/api/v1/namespaces/default/pods?watch=false', { verb: 'list' }],
  ['watch=0', 'GET', '/api/v1/namespaces/default/pods?watch=0', { verb: 'list' }],
  ['watch=yes (unparseable: server falls back to watch)', 'GET', '/api/v1/namespaces/default/pods?watch=yes', { verb: 'watch' }],
  ['delete --wait (watch by name)', 'GET', '/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dapp-config&watch=true', { verb: 'watch', resource: 'configmaps', name: 'app-config' }],
  ['list by name', 'GET', '/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3D%3Dapp-config', { verb: 'list', name: 'app-config' }],
  ['deprecated /watch/ path', 'GET', '/api/v1/watch/namespaces/default/pods/web-0', { verb: 'watch', resource: 'pods', name: 'web-0', namespace: 'default' }],
  ['get deploy', 'GET', '/apis/apps/v1/namespaces/prod/deployments/api', { verb: 'get', apiGroup: 'apps', apiVersion: 'v1', resource: 'deployments', name: 'api', namespace: 'prod' }],
  ['scale', 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/api/scale', { verb: 'patch', apiGroup: 'apps', resource: 'deployments', subresource: 'scale', name: 'api' }],
  ['apply (create)', 'POST', '/api/v1/namespaces/default/configmaps?fieldManager=kubectl-client-side-apply&fieldValidation=Strict', { verb: 'create', resource: 'configmaps', name: '' }],
  ['apply (patch)', 'PATCH', '/api/v1/namespaces/default/configmaps/app-config?fieldManager=kubectl-client-side-apply', { verb: 'patch', name: 'app-config' }],
  ['replace', 'PUT', '/api/v1/namespaces/default/configmaps/app-config', { verb: 'update' }],
  ['delete', 'DELETE', '/api/v1/namespaces/default/pods/web-0', { verb: 'delete', name: 'web-0' }],
  ['delete --all', 'DELETE', '/api/v1/namespaces/default/pods', { verb: 'deletecollection', resource: 'pods' }],
  ['logs -f', 'GET', '/api/v1/namespaces/default/pods/web-0/log?container=app&follow=true', { verb: 'get', resource: 'pods', subresource: 'log', name: 'web-0' }],
  ['exec (websocket)', 'GET', '/api/v1/namespaces/default/pods/web-0/exec?command=env&container=app&stderr=true&stdout=true', { verb: 'get', resource: 'pods', subresource: 'exec' }],
  ['exec (spdy)', 'POST', '/api/v1/namespaces/default/pods/web-0/exec?command=env&stdout=true', { verb: 'create', subresource: 'exec' }],
  ['port-forward', 'GET', '/api/v1/namespaces/default/pods/web-0/portforward', { verb: 'get', subresource: 'portforward' }],
  ['proxy', 'GET', '/api/v1/namespaces/default/services/web:80/proxy/healthz', { verb: 'get', resource: 'services', name: 'web:80', subresource: 'proxy' }],
  ['deprecated /proxy/ path', 'GET', '/api/v1/proxy/namespaces/default/pods/web-0/metrics', { verb: 'proxy', resource: 'pods', name: 'web-0', subresource: '' }],
  ['get ns', 'GET', '/api/v1/namespaces/default', { verb: 'get', resource: 'namespaces', name: 'default', namespace: 'default' }],
  ['namespace status', 'PUT', '/api/v1/namespaces/default/status', { verb: 'update', resource: 'namespaces', name: 'default', subresource: 'status' }],
  ['namespace finalize', 'PUT', '/api/v1/namespaces/team/finalize', { verb: 'update', resource: 'namespaces', subresource: 'finalize', name: 'team' }],
  ['get nodes', 'GET', '/api/v1/nodes?limit=500', { verb: 'list', resource: 'nodes', namespace: '' }],
  ['crd', 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com', { verb: 'get', apiGroup: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', name: 'widgets.example.com' }],
  ['auth can-i', 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { verb: 'create', apiGroup: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews' }],
  ['healthz', 'GET', '/healthz', { verb: 'get', resourceRequest: false }],
];

describe('Kubernetes request attributes (RequestInfoFactory)', () => {
  for (const [label, method, target, want] of CASES) {
    test(`${label}: ${method} ${target}`, () => {
      const t = parseRequestTarget(target);
      const info = parseRequestInfo(method, t.path, t.query);
      const { resourceRequest, ...fields } = want;
      assert.equal(info.isResourceRequest, resourceRequest ?? true);
      for (const [k, v] of Object.entries(fields)) assert.equal(info[k as keyof typeof info], v, `${k}`);
    });
  }

  test('pod exec, attach and port-forward need create as well as get (KEP-4006)', () => {
    const exec = parseRequestInfo('GET', '/api/v1/namespaces/default/pods/web-0/exec', {});
    assert.deepEqual(effectiveK8sVerbs(exec), ['get', 'create']);
    assert.deepEqual(effectiveK8sVerbs(parseRequestInfo('GET', '/api/v1/namespaces/default/pods/web-0/log', {})), ['get']);
    assert.deepEqual(effectiveK8sVerbs(parseRequestInfo('POST', '/api/v1/namespaces/default/pods/web-0/exec', {})), ['create']);
  });
});
