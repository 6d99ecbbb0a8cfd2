import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isArchiveExec } from '../../../src/connectors/kubernetes/index.js';
import { offeredProtocols } from '../../../src/connectors/request-proxy/index.js';
import { SluiceError } from '../../../src/errors.js';


describe('offered WebSocket subprotocols', () => {
  it('keeps names that are not RFC 6455 tokens, as Kubernetes uses them, in order', () => {
    assert.deepEqual(offeredProtocols('SPDY/3.1+portforward.k8s.io'), ['SPDY/3.1+portforward.k8s.io']);
    assert.deepEqual(offeredProtocols('v5.channel.k8s.io, v4.channel.k8s.io,base64.channel.k8s.io'), ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'base64.channel.k8s.io']);
    assert.deepEqual(offeredProtocols(['v5.channel.k8s.io', 'v4.channel.k8s.io']), ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
    assert.deepEqual(offeredProtocols(undefined), []);
    assert.deepEqual(offeredProtocols(' , '), []);
  });

  it('refuses lists no server would take: control characters, over-long names, duplicates, too many', () => {
    const refused = (header: string): void =>
      assert.throws(
        () => offeredProtocols(header),
        (e: unknown) => e instanceof SluiceError && e.code === 'SLUICE_PROTOCOL_VIOLATION',
        header.slice(0, 40),
      );
    refused('v5.channel.k8s.io\u0000');
    refused('a b');
    refused('é');
    refused('x'.repeat(129));
    refused('v5.channel.k8s.io, v5.channel.k8s.io');
    refused(Array.from({ length: 17 }, (_, i) => `p${i}`).join(','));
  });
});

describe('archive execs (kubectl cp from a pod)', () => {
  it('recognises tar creating an archive on stdout, and nothing else', () => {
    const exec = (...argv: string[]): string => `/api/v1/namespaces/default/pods/web-0/exec?${argv.map((a) => `command=${encodeURIComponent(a)}`).join('&')}&stdout=true`;
    assert.equal(isArchiveExec(exec('tar', 'cf', '-', '/etc/app.conf')), true);
    assert.equal(isArchiveExec(exec('tar', '-czf', '-', '/var/log')), true);
    assert.equal(isArchiveExec(exec('tar', 'xmf', '-', '-C', '/tmp')), false, 'extracting reads stdin, which is not masked');
    assert.equal(isArchiveExec(exec('cat', '/etc/app.conf')), false);
    assert.equal(isArchiveExec('/api/v1/namespaces/default/pods/web-0/portforward?command=tar&command=cf'), false);
    assert.equal(isArchiveExec('/api/v1/namespaces/default/pods/web-0/exec'), false);
  });
});
