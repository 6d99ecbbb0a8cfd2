/**
 * The HTTP engine: a reverse proxy per `type: http` connection, mounted on the shared HTTP
 * listener at the connection's `pathPrefix` (default `/http/<name>`) or, with `host:`, answering
 * every request whose Host header names it. The agent sends its OIDC token as
 * `Authorization: Bearer`; Sluice strips it, decides on method and path, injects the upstream
 * credential, and masks JSON, JSON lines and text responses.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ResolvedConnection } from '../../config/index.js';
import { SluiceError } from '../../errors.js';
import type { SessionInfo } from '../../pipeline/session.js';
import type { Action, Decision } from '../../pipeline/types.js';
import { httpAction, httpFacts, METHOD_PARAMETER, readJsonBody } from '../../policy/http/index.js';
import type { Engine, EngineContext } from '../engine.js';
import type { Masker } from '../../masking/index.js';
import { hostOf, type UpgradeHandler } from '../../server/http-server.js';
import { relayWebSocket } from './websocket.js';
import {
  httpBodyPlan,
  createAcceptor,
  createApprovalHolder,
  createProxy,
  createScrubber,
  createUpgradeHandler,
  isWebSocketUpgrade,
  createSessionCache,
  createUpstream,
  defaultPrefix,
  connectionLimits,
  bodyFingerprint,
  hasRequestBody,
  rulesRead,
  resolveDecide,
  type BodyPlan,
  type Described,
  type Proxy,
  type ProxyProtocol,
  type RequestConnection,
  type RequestEngineContext,
  type Scrubber,
  type SessionCache,
  type Upstream,
} from '../request-proxy/index.js';

type HttpConnection = Extract<ResolvedConnection, { type: 'http' }>;

interface HttpDescribed extends Described {
  readonly method: string;
}

/** HTTP problem body (RFC 9457) with the approval id when there is one; 401 carries a Bearer challenge. */
function sendHttpError(res: ServerResponse, err: SluiceError, approvalId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const p = problem(err, approvalId);
  res.writeHead(p.status, p.headers);
  res.end(p.body);
}

/** The problem response (RFC 9457) for `err`: status, headers and body, the approval id when there is one. */
function problem(err: SluiceError, approvalId?: string): { status: number; headers: Record<string, string>; body: string } {
  const status = err.httpStatus;
  const body = JSON.stringify({
    type: `urn:sluice:error:${err.code}`,
    title: err.code,
    status,
    detail: err.message,
    ...(approvalId !== undefined ? { approvalId } : {}),
  });
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)) };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="sluice"';
  if (approvalId !== undefined) headers['x-sluice-approval-id'] = approvalId;
  return { status, headers, body };
}

export function createHttpEngine(ctx: RequestEngineContext): Engine {
  const conns = ctx.config.connections.filter((c): c is HttpConnection => c.type === 'http');
  const decide = resolveDecide(ctx);
  const proxies: Proxy[] = [];
  const upstreams: Upstream[] = [];
  const sessions: SessionCache = createSessionCache(ctx.pipeline, { protocol: 'http', log: ctx.log });
  const byHost = new Map<string, { readonly proxy: Proxy; readonly upgrade: UpgradeHandler }>();
  /** Open WebSockets, closed with the engine. */
  const streams = new Set<Socket>();

  /** A connection's WebSocket upgrades: decided as `websocket` and the method, then relayed message by message. */
  const upgradeFor = (proxy: Proxy, c: HttpConnection, upstream: Upstream, masker: Masker, scrubber: Scrubber, limits: ReturnType<typeof connectionLimits>, readsJson: boolean): UpgradeHandler => {
    const acceptor = createAcceptor(limits.maxRequestBytes);
    return createUpgradeHandler<HttpDescribed>({
      proxy,
      pipeline: ctx.pipeline,
      holder,
      approvalWaitMs: limits.approvalWaitMs,
      maskText: (t) => masker.maskText(t),
      log: (line) => ctx.log(`http ${c.name}: ${line}`),
      streams,
      check: (req) =>
        isWebSocketUpgrade(req) ? undefined : new SluiceError('SLUICE_PROTOCOL_VIOLATION', `HTTP connections proxy WebSocket upgrades only, not ${JSON.stringify(String(req.headers.upgrade ?? '').slice(0, 64))}`),
      reviewFacts: (a) => ({ kind: 'http', verb: a.described.action.verb, objects: a.described.action.objects, upgrade: 'websocket' }),
      pending: (a, id, url) => new SluiceError('SLUICE_APPROVAL_REQUIRED', `${a.described.action.text} is waiting for approval ${id} (${url}); open the WebSocket again once it is approved`),
      refuse: writeProblemToSocket,
      start(s) {
        // Where rules read `http.json`, each agent message is decided as the upgrade was, with the
        // message as the body: a mutation or a JSON-RPC call meets the rules it would in a POST.
        const method = (s.req.method ?? 'GET').toUpperCase();
        const decideMessage = readsJson
          ? (data: Buffer, isBinary: boolean): Decision | SluiceError => {
              const json = isBinary ? {} : readJsonBody(data);
              if (json.error !== undefined) return new SluiceError('SLUICE_POLICY_DENIED', json.error.message.replace('request body', 'message'));
              const facts = httpFacts(method, s.admitted.target, s.req.headers, [], json.value);
              return decide(s.admitted.session, httpAction(c.name, facts, s.admitted.target.rawQuery));
            }
          : undefined;
        relayWebSocket({
          ...(decideMessage !== undefined ? { decideMessage } : {}),
          req: s.req,
          socket: s.socket,
          head: s.head,
          session: s.admitted.session,
          pathAndQuery: s.pathAndQuery,
          protocols: s.protocols,
          headers: proxy.upstreamHeaders(s.req, s.admitted),
          command: s.command,
          upstream,
          pipeline: ctx.pipeline,
          masker,
          scrubber,
          maxResponseBytes: limits.maxResponseBytes,
          acceptor,
          refuse: writeProblemToSocket,
          ...(s.approvalId !== undefined ? { approvalId: s.approvalId } : {}),
          log: (line) => ctx.log(`http ${c.name}: ${line}`),
        });
      },
    });
  };
  const holder = createApprovalHolder(ctx.approvals);
  if (conns.length > 0 && ctx.http === undefined) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `connections ${conns.map((c) => c.name).join(', ')} are HTTP connections: set listen.http`);
  }
  const prefixes = new Set<string>();

  conns.forEach((c) => {
    const where = `connections[${ctx.config.connections.indexOf(c)}]`;
    const upstream = createUpstream(ctx.config, c as RequestConnection, where);
    upstreams.push(upstream);
    const masker = ctx.maskerFor(c.name);
    const prefix = (c.pathPrefix ?? defaultPrefix('http', c.name)).replace(/\/+$/, '');
    const readsJson = rulesRead(ctx.config, c.name, /\bhttp\s*\.\s*json\b/);
    const protocol: ProxyProtocol<HttpDescribed> = {
      protocol: 'http',
      // Rails, Laravel and Symfony take a POSTed form's `_method` field as the method: such a
      // body (url-encoded or multipart) is read before deciding, and decided as each method it names.
      // Where rules read `http.json`, every request body is read before deciding.
      needsBody: (req) => (req.method === 'POST' && formKind(req.headers['content-type']) !== undefined) || (readsJson && hasRequestBody(req)),
      // PUT and PATCH replace stored values; a POST may quote masked text (a comment, a report).
      guardsWriteBack: (method) => method === 'PUT' || method === 'PATCH',
      describe(req, target, body) {
        const method = (req.method ?? 'GET').toUpperCase();
        const formMethods = body !== undefined ? methodFields(req.headers['content-type'], body) : [];
        const json = readsJson && body !== undefined ? readJsonBody(body) : undefined;
        const facts = httpFacts(method, target, req.headers, formMethods, json?.value);
        // A grant window for POST must not cover a POST that asks to be run as DELETE, nor one
        // JSON-RPC call another: where rules read the body, the fingerprint holds its digest.
        const digest = json?.value !== undefined && body !== undefined ? bodyFingerprint(body) : '';
        return {
          action: httpAction(c.name, facts, target.rawQuery),
          fingerprint: `${[method, ...facts.methodOverrides].join('+')} ${target.path}${digest}`,
          method,
          ...(json?.error !== undefined ? { bodyError: json.error } : {}),
        };
      },
      planBody: (upRes): BodyPlan => httpBodyPlan(upRes, masker),
      sendError: sendHttpError,
      sendPending(res, described, approvalId, url) {
        const body = JSON.stringify({
          status: 'pending-approval',
          approvalId,
          approvalUrl: url,
          request: described.action.text,
          detail: `${described.action.text} needs approval; retry the same request once ${approvalId} is approved`,
        });
        res.writeHead(202, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'retry-after': '10',
          'x-sluice-approval-id': approvalId,
          'x-sluice-approval-status': 'pending',
        });
        res.end(body);
      },
    };
    const scrubber = createScrubber(upstream.secrets);
    const limits = connectionLimits(c, where);
    const proxy = createProxy<HttpDescribed>({
      connection: c.name,
      prefix: c.host !== undefined && c.pathPrefix === undefined ? '' : prefix,
      pipeline: ctx.pipeline,
      decide,
      sessions,
      upstream,
      scrubber,
      holder,
      protocol,
      ...limits,
      cookies: c.cookies ?? 'hold',
      maskText: (t, stats) => masker.maskText(t, stats),
      log: ctx.log,
    });
    proxies.push(proxy);
    if (c.host !== undefined && c.pathPrefix === undefined) {
      const host = c.host.toLowerCase();
      if (byHost.has(host)) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}.host: ${host} is routed to two connections`);
      byHost.set(host, { proxy, upgrade: upgradeFor(proxy, c, upstream, masker, scrubber, limits, readsJson) });
      return;
    }
    if (prefixes.has(prefix)) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}.pathPrefix: ${prefix} is used by two connections`);
    prefixes.add(prefix);
    ctx.http?.mount(prefix, (req, res, path) => proxy.handle(req, res, path), upgradeFor(proxy, c, upstream, masker, scrubber, limits, readsJson));
  });

  if (byHost.size > 0) {
    // A host-routed connection answers every path on its host, the gateway's own paths included.
    ctx.http?.mountHosts(
      (host) => byHost.has(host),
      (req: IncomingMessage, res: ServerResponse, path: string) => {
        const route = byHost.get(hostOf(req));
        if (route === undefined) {
          sendHttpError(res, new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no route for ${path}`));
          return;
        }
        return route.proxy.handle(req, res, path);
      },
      (req: IncomingMessage, socket: Socket, head: Buffer, path: string) => {
        const route = byHost.get(hostOf(req));
        if (route === undefined) {
          writeProblemToSocket(socket, new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no route for ${path}`));
          return;
        }
        route.upgrade(req, socket, head, path);
      },
    );
  }

  return {
    protocol: 'http',
    listen() {
      return Promise.reject(new TypeError('the HTTP engine is served by the shared HTTP listener (listen.http); it has no listener of its own'));
    },
    async close(graceMs = 5000) {
      await Promise.all(proxies.map((p) => p.drain(graceMs)));
      for (const s of streams) s.destroy();
      await sessions.close();
      for (const u of upstreams) u.destroy();
    },
    get sessions() {
      return proxies.reduce((n, p) => n + p.inFlight, 0) + streams.size;
    },
  };
}

/** `urlencoded` or `multipart` for the form bodies frameworks read `_method` from. */
function formKind(contentType: string | undefined): 'urlencoded' | 'multipart' | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return 'urlencoded';
  if (type === 'multipart/form-data') return 'multipart';
  return undefined;
}

/**
 * The `_method` values of a form body. Multipart: the value of every part whose
 * Content-Disposition names the field (its headers and value read as Latin-1, byte for byte).
 */
function methodFields(contentType: string | undefined, body: Buffer): string[] {
  const kind = formKind(contentType);
  if (kind === 'urlencoded') return new URLSearchParams(body.toString('latin1')).getAll(METHOD_PARAMETER);
  if (kind !== 'multipart') return [];
  const text = body.toString('latin1');
  const out: string[] = [];
  // Each part: headers, a blank line, the value up to the next CRLF and boundary delimiter.
  for (const part of text.split(/\r\n--/)) {
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const headers = part.slice(0, split);
    if (!/^content-disposition:[ \t]*form-data\b[^\r\n]*;[ \t]*name[ \t]*=[ \t]*(?:"_method"|_method)(?:[ \t;]|\r|$)/im.test(headers)) continue;
    out.push(part.slice(split + 4));
  }
  return out;
}

/** The Host a request names, lower case, without its port. */
/** A refused upgrade on the raw socket: the same problem response as sendHttpError. */
function writeProblemToSocket(socket: Socket, err: SluiceError, approvalId?: string): void {
  if (!socket.writable) return;
  const p = problem(err, approvalId);
  const headers = Object.entries(p.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}\r\nconnection: close\r\n${headers}\r\n${p.body}`);
}
