/**
 * What a Kubernetes client needs in front of the gateway in these tests: TLS (kubectl and the
 * official client libraries will not send a bearer token over plain http://) and a kubeconfig
 * naming Sluice as the server and the agent's token as the user.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';

export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** TLS terminated in front of the gateway's HTTP listener, as a TLS-enabled listen.http or a load balancer would. */
export async function startTlsFront(certs: TlsMaterial, gatewayPort: number): Promise<{ port: number; server: TlsServer }> {
  const server = createTlsServer({ cert: certs.cert, key: certs.key }, (tls) => {
    const plain = connect(gatewayPort, '127.0.0.1');
    // Small tunnel frames would otherwise wait out Nagle and delayed ACKs (40 ms each way).
    tls.setNoDelay(true);
    plain.setNoDelay(true);
    tls.pipe(plain).pipe(tls);
    tls.on('error', () => plain.destroy());
    plain.on('error', () => tls.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}

/** A kubeconfig for connection `prod` through the TLS front, with `token` as the user's bearer token. */
export function kubeconfig(certs: TlsMaterial, dir: string, port: number, token: string, name: string): string {
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: sluice
  cluster: { server: "https://127.0.0.1:${port}/k8s/prod", certificate-authority-data: "${certs.ca.toString('base64')}" }
users:
- name: agent
  user: { token: "${token}" }
contexts:
- name: sluice
  context: { cluster: sluice, user: agent, namespace: default }
current-context: sluice
`,
  );
  return path;
}
