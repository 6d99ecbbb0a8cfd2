/**
 * The HTTP listener: one node:http server shared by the admin API (approvals, health) and the
 * HTTP-based connectors, each mounted on a path prefix. Errors render as RFC 9457 problem bodies.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { SluiceError, toSluiceError } from '../errors.js';
import { splitHostPort } from '../connectors/engine.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void;
export type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer, path: string) => void;

interface Mount {
  readonly prefix: string;
  readonly handler: HttpHandler;
  readonly upgrade?: UpgradeHandler;
}

export interface HttpListener {
  /** Route requests whose path starts with `prefix` (longest prefix wins). */
  mount(prefix: string, handler: HttpHandler, upgrade?: UpgradeHandler): void;
  /**
   * Route every request whose Host header (any port) `claims` to `handler`, whatever its path,
   * before any prefix: a host-routed connection owns its host, so the gateway's own paths
   * (/healthz, /api/v1/…, /console) never shadow its upstream's.
   */
  mountHosts(claims: (host: string) => boolean, handler: HttpHandler, upgrade?: UpgradeHandler): void;
  listen(address: string): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

export function sendProblem(res: ServerResponse, err: unknown): void {
  const e = toSluiceError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ type: `urn:sluice:error:${e.code}`, title: e.code, status: e.httpStatus, detail: e.message });
  res.writeHead(e.httpStatus, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendJsonText(res, status, JSON.stringify(value));
}

/** A body already serialised as JSON. */
export function sendJsonText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The bearer token of an admin API call (approvals, sessions), checked for shape and size before
 * anything verifies it.
 */
export function bearerToken(req: IncomingMessage, maxBytes: number): string {
  const h = req.headers.authorization;
  if (h === undefined || h === '') throw new SluiceError('SLUICE_TOKEN_MISSING', 'send your token as Authorization: Bearer <token>');
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(h);
  if (m === null) throw new SluiceError('SLUICE_TOKEN_INVALID', 'the Authorization header must be "Bearer <token>"');
  const token = m[1] as string;
  if (Buffer.byteLength(token) > maxBytes) throw new SluiceError('SLUICE_TOKEN_TOO_LARGE', `token is larger than ${maxBytes} bytes`);
  return token;
}

/** 405 with the methods a route takes. */
export function methodNotAllowed(res: ServerResponse, allow: string): void {
  const body = JSON.stringify({ type: 'urn:sluice:error:method-not-allowed', title: 'method not allowed', status: 405, detail: `use ${allow}` });
  res.writeHead(405, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), allow });
  res.end(body);
}

/** A percent-encoded path segment, decoded; `undefined` when its escapes are malformed (`%E0%A4%A`). */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * An admin API route: whatever it throws is answered as a problem body, after draining what the
 * client is still sending so the reply is not cut off by a reset.
 */
export function apiHandler(handle: HttpHandler): HttpHandler {
  return async (req, res, path) => {
    try {
      await handle(req, res, path);
    } catch (err) {
      if (!req.complete) discardBody(req);
      sendProblem(res, err);
    }
  };
}

/** Read a request body up to `limit` bytes; larger bodies are refused with 413 before buffering more. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `request body of ${declared} bytes exceeds ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `request body exceeds ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Requests refused before their body was wanted (discardBody): no `100 Continue` goes out for them. */
const refused = new WeakSet<IncomingMessage>();

/**
 * `Expect: 100-continue`: the `100 Continue` goes out only when a handler starts reading the body
 * (the stream's first `_read`). A request refused first — no token or a bad one, denied, declared
 * too large — is answered without the client having sent its body, and Node closes the connection
 * after that answer, as RFC 9110 §10.1.1 asks of a server that did not read the body.
 */
function continueOnRead(req: IncomingMessage, res: ServerResponse): void {
  const read = req._read;
  req._read = function (this: IncomingMessage, size: number): void {
    req._read = read;
    if (!refused.has(req) && !res.headersSent) res.writeContinue();
    read.call(this, size);
  };
}

/** The request is refused and its body not wanted: what the client sends anyway is drained, and no `100 Continue` is sent for it. */
export function discardBody(req: IncomingMessage): void {
  refused.add(req);
  req.resume();
}

/** The Host header's name, lower-cased, without its port (`[::1]:8080` → `[::1]`). */
export function hostOf(req: IncomingMessage): string {
  return (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
}

/**
 * With `tls`, the listener serves HTTPS: bearer tokens must not cross the network in clear, and
 * kubectl refuses to send one to an http:// server at all.
 */
export function createHttpListener(log: (line: string) => void, tls?: { readonly cert: string; readonly key: string }): HttpListener {
  const mounts: Mount[] = [];
  const hostMounts: (Mount & { readonly claims: (host: string) => boolean })[] = [];
  const sockets = new Set<Socket>();
  const find = (req: IncomingMessage): { mount: Mount; path: string } | undefined => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (hostMounts.length > 0) {
      const host = hostOf(req);
      const owner = hostMounts.find((m) => m.claims(host));
      if (owner !== undefined) return { mount: owner, path };
    }
    let best: Mount | undefined;
    for (const m of mounts) {
      if ((path === m.prefix || path.startsWith(m.prefix.endsWith('/') ? m.prefix : m.prefix + '/') || m.prefix === '/') && (best === undefined || m.prefix.length > best.prefix.length)) best = m;
    }
    return best === undefined ? undefined : { mount: best, path };
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const hit = find(req);
    if (hit === undefined) {
      sendProblem(res, new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no route for ${req.url ?? '/'}`));
      return;
    }
    Promise.resolve()
      .then(() => hit.mount.handler(req, res, hit.path))
      .catch((err: unknown) => {
        const e = toSluiceError(err);
        if (e.code === 'SLUICE_INTERNAL') log(`http: ${String((err as Error)?.stack ?? err)}`);
        sendProblem(res, e);
      });
  };
  const server: Server = tls === undefined ? createServer(onRequest) : createTlsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, onRequest);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    continueOnRead(req, res);
    onRequest(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const hit = find(req);
    if (hit?.mount.upgrade === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    hit.mount.upgrade(req, socket, head, hit.path);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // watches and held approvals are long-lived; connectors set their own timeouts
  server.maxHeadersCount = 200;
  return {
    mount(prefix, handler, upgrade) {
      if (!prefix.startsWith('/')) throw new TypeError(`mount prefix must start with "/": ${prefix}`);
      if (mounts.some((m) => m.prefix === prefix)) throw new TypeError(`two handlers mounted on ${prefix}`);
      mounts.push({ prefix, handler, ...(upgrade !== undefined ? { upgrade } : {}) });
    },
    mountHosts(claims, handler, upgrade) {
      hostMounts.push({ prefix: '', claims, handler, ...(upgrade !== undefined ? { upgrade } : {}) });
    },
    async listen(address) {
      const { host, port } = splitHostPort(address);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address();
      return typeof addr === 'object' && addr !== null ? { host: addr.address, port: addr.port } : { host, port };
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
