/**
 * A loopback HTTP server with hand-written routes. It stands in for a broken or hostile issuer
 * (wrong `issuer`, plain-http `jwks_uri`, huge or slow responses) — behaviour no real, correctly
 * configured OpenID Provider can be made to produce.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = (req: IncomingMessage, res: ServerResponse, origin: string) => void;

export interface StubServer {
  readonly origin: string;
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

export async function startStubServer(routes: Record<string, Route>): Promise<StubServer> {
  const hits = new Map<string, number>();
  let origin = '';
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    if (route === undefined) res.writeHead(404).end();
    else route(req, res, origin);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    hits,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export function json(value: unknown): Route {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
  };
}
