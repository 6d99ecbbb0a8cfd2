/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI. */
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCerts {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export function makeCerts(dir: string): TestCerts {
  const ossl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  const p = (n: string): string => join(dir, n);
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Sluice Test CA', '-keyout', p('ca.key'), '-out', p('ca.crt'));
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr'));
  writeFileSync(p('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ossl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('ext.cnf'), '-out', p('server.crt'));
  chmodSync(p('server.key'), 0o600);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}
