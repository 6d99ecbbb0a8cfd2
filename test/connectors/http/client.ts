/** A raw HTTP client for tests: sends exactly the path and headers given (fetch would normalise both). */
import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  json(): unknown;
}

export function send(port: number, method: string, path: string, headers: OutgoingHttpHeaders = {}, body?: Buffer | string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text: buf.toString('utf8'), json: () => JSON.parse(buf.toString('utf8')) as unknown });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface Upstream {
  readonly port: number;
  readonly url: string;
  readonly requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }>;
  readonly connections: number;
  close(): Promise<void>;
}

/** A real node:http server on 127.0.0.1; `handler` answers after the request body has been read. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void, make: (h: (req: IncomingMessage, res: ServerResponse) => void) => Server = (h) => createServer(h)): Promise<Upstream> {
  const requests: Upstream['requests'] = [];
  let connections = 0;
  const server = make((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', () => (connections += 1));
  server.on('secureConnection', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  const tls = 'setSecureContext' in server;
  return {
    port: addr.port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`,
    requests,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** A self-signed CA and a server certificate for 127.0.0.1, plus a client certificate, made with openssl. */
export function makeCertificates(): { ca: Buffer; caPath: string; cert: Buffer; key: Buffer; clientCert: string; clientKey: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=sluice-test-ca']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1\\n" > ext.cnf'], { cwd: dir });
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=sluice-upstream-client']);
  run(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2']);
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.crt')),
    caPath: join(dir, 'ca.crt'),
    cert: readFileSync(join(dir, 'server.crt')),
    key: readFileSync(join(dir, 'server.key')),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}
