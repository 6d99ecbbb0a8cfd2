/**
 * The request/response proxy shared by the HTTP and Kubernetes engines: authenticate the bearer
 * token, decide, hold for approval, record, forward with the injected credential, and stream the
 * response back through the masker. The protocol (plain HTTP or the Kubernetes API) supplies how
 * a request becomes an Action, how a body is masked and how an error is rendered.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { SluiceError, toSluiceError } from '../../errors.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import { atSessionEnd, tokenExpiredError, type SessionInfo } from '../../pipeline/session.js';
import type { Action, Decision } from '../../pipeline/types.js';
import { findMaskMarker, MaskStats, mayBeJson, NOT_JSON, spliceJson, tryParse, utf8Boundary, type CsvMasker } from '../../masking/index.js';
import { parseRequestTarget, type RequestTarget } from '../../policy/http/index.js';
import { discardBody } from '../../server/http-server.js';
import type { ApprovalHolder } from './approval-hold.js';
import { byteLimit, looksLikeText, peekFirstChunk, maskedWriteBack, maskLines, maskTextBytes, refuseMaskMarkers } from './body-streams.js';
import { maskEventStream } from './event-stream.js';
import { textEncodingPlan, toUtf8, utf8Stream, withUtf8Charset } from './charset.js';
import { CookieJar } from './cookie-jar.js';
import { stripHopByHop } from './hop-by-hop.js';
import type { Scrubber } from './scrub.js';
import type { SessionCache } from './session-cache.js';
import type { Upstream } from './upstream.js';

/** What the protocol made of one request. */
export interface Described {
  readonly action: Action;
  /** Normalised form for grant windows (`GET /v1/orders/*` style: method and path, no query). */
  readonly fingerprint: string;
  /** The body read to decide cannot be read as the upstream would: the request is refused, and recorded. */
  readonly bodyError?: SluiceError;
}

/** How to treat one response body. */
export type BodyPlan =
  | { readonly mode: 'json'; readonly mask: (value: unknown, stats: MaskStats) => unknown; readonly text: (text: string, stats: MaskStats) => string }
  | { readonly mode: 'json-lines'; readonly mask: (value: unknown, stats: MaskStats) => unknown; readonly text: (text: string, stats: MaskStats) => string }
  /** Server-sent events: each event's data masked as JSON when it parses, as text when not (event-stream.ts). */
  | { readonly mode: 'events'; readonly mask: (value: unknown, stats: MaskStats) => unknown; readonly text: (text: string, stats: MaskStats) => string }
  | {
      readonly mode: 'text';
      readonly text: (text: string, stats: MaskStats) => string;
      readonly stream: boolean;
      /** Text whose lines are records under a header (CSV, TSV): a masker per response, which reads the header first. */
      readonly records?: () => Pick<CsvMasker, 'line' | 'text'>;
    }
  | {
      readonly mode: 'binary';
      /**
       * A generic type (`application/octet-stream`) that may carry a text file (an `.env`, a
       * config, a key from an object store): when the first bytes read as UTF-8 text, the body is
       * masked as streamed text lines instead of passing as bytes.
       */
      readonly textIfReadable?: (text: string, stats: MaskStats) => string;
    }
  | { readonly mode: 'refuse'; readonly reason: string };

export interface ProxyProtocol<D extends Described> {
  readonly protocol: 'http' | 'kubernetes';
  /** `body`: the request body, read before deciding where `needsBody` says so. */
  describe(req: IncomingMessage, target: RequestTarget, body?: Buffer): D;
  /**
   * Whether a request with this method may not carry a value Sluice masked (a write that would put
   * the placeholder in place of the real value: `kubectl edit`, a read-modify-write PUT).
   */
  readonly guardsWriteBack?: (method: string) => boolean;
  /** Whether the decision depends on the request body (read first, up to maxRequestBytes). */
  needsBody?(req: IncomingMessage): boolean;
  /**
   * What a reviewer is shown of a held request's body (`facts.body`), masked; undefined shows only
   * its length. Without this, a text body's first 2 KB, masked as text (bodyPreview).
   */
  previewBody?(body: Buffer, req: IncomingMessage, described: D): string | undefined;
  /** Adjust forwarded request headers; throw a SluiceError to refuse the request. */
  prepareHeaders?(headers: OutgoingHttpHeaders, described: D): void;
  planBody(upstream: IncomingMessage, described: D, decision: Decision): BodyPlan;
  sendError(res: ServerResponse, err: SluiceError, approvalId?: string): void;
  sendPending(res: ServerResponse, described: D, approvalId: string, url: string): void;
}

export interface ProxyOptions<D extends Described> {
  readonly connection: string;
  readonly prefix: string;
  readonly pipeline: Pipeline;
  readonly decide: (session: SessionInfo, action: Action) => Decision;
  readonly sessions: SessionCache;
  readonly upstream: Upstream;
  readonly scrubber: Scrubber;
  readonly holder: ApprovalHolder;
  readonly protocol: ProxyProtocol<D>;
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  readonly approvalWaitMs: number;
  /**
   * Upstream cookies: `hold` keeps them in a jar per agent session and never shows them to the
   * agent (cookie-jar.ts); `pass` forwards Set-Cookie and Cookie as they are. Default `hold`.
   */
  readonly cookies?: 'hold' | 'pass';
  /** Mask free text: the approver's view of the request, response header values. */
  readonly maskText: (text: string, stats?: MaskStats) => string;
  readonly log: (line: string) => void;
  readonly clock?: () => number;
}

export interface Proxy {
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  /** Authenticate and decide without forwarding (used by upgrade handlers). */
  admit(req: IncomingMessage, path: string): Promise<Admitted<Described>>;
  /** The headers an admitted request is forwarded with (upgrade handlers open their own upstream request). */
  upstreamHeaders(req: IncomingMessage, a: Admitted<Described>): OutgoingHttpHeaders;
  /** Keep the session from ending idle while a stream of it is open (upgrade handlers); call the result when it closed. */
  hold(session: SessionInfo): () => void;
  readonly inFlight: number;
  /** Refuse new requests; resolve when in-flight ones finished or after `graceMs`. */
  drain(graceMs: number): Promise<void>;
}

export interface Admitted<D> {
  readonly session: SessionInfo;
  readonly described: D;
  readonly decision: Decision;
  readonly target: RequestTarget;
  /** The request body, when it was read to decide (ProxyProtocol.needsBody). */
  readonly body?: Buffer;
  /** Why that body could not be read (too large, the client went away): the request is refused, and recorded. */
  readonly bodyError?: SluiceError;
}

/**
 * Request headers never forwarded: the agent's token, Sluice's own controls, framing Node sets
 * itself, and the agent's choice of response encodings (the masker reads what the upstream sends
 * by default, not a compression or charset the agent picked).
 */
const DROP_REQUEST = new Set(['authorization', 'host', 'expect', 'content-length', 'accept-encoding', 'accept-charset']);
/**
 * Request headers an agent could forge to change what the upstream believes, never forwarded:
 * - the client address and scheme (the upstream may trust them for allow-lists and rate limits;
 *   Sluice sets X-Forwarded-For/-Proto/-Host itself);
 * - a URL that overrides the routed one (`X-Original-URL: /admin` on `GET /allowed` is `/admin` to
 *   IIS, older Symfony and Laminas, after Sluice decided on `/allowed`);
 * - the identity headers of authenticating proxies (Kubernetes' front-proxy `X-Remote-User`,
 *   oauth2-proxy, Grafana's auth proxy, Azure App Service, Google IAP, AWS ALB), which an
 *   upstream that trusts Sluice as its proxy would take as the caller.
 */
const SPOOFABLE_REQUEST: readonly string[] = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded-prefix',
  'x-forwarded-path',
  'x-forwarded-uri',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-original-url',
  'x-original-uri',
  'x-rewrite-url',
  'x-override-url',
  'x-envoy-original-path',
  'x-remote-user',
  'x-remote-group',
  'remote-user',
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-groups',
  'x-auth-request-preferred-username',
  'x-auth-request-access-token',
  'x-webauth-user',
  'x-webauth-email',
  'x-webauth-name',
  'x-authenticated-user',
  'x-ms-client-principal',
  'x-ms-client-principal-id',
  'x-ms-client-principal-name',
  'x-goog-authenticated-user-email',
  'x-goog-authenticated-user-id',
  'x-goog-iap-jwt-assertion',
  'x-amzn-oidc-data',
  'x-amzn-oidc-identity',
  'x-amzn-oidc-accesstoken',
];
/** Kubernetes' front-proxy extra attributes (`X-Remote-Extra-Scopes`), and Sluice's own controls. */
const DROP_REQUEST_PREFIXES: readonly string[] = ['x-sluice-', 'x-remote-extra-'];
/** Response headers whose values are framing, dates or cache validators: not scanned by the detectors. */
const PLAIN_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-range',
  'accept-ranges',
  'date',
  'expires',
  'last-modified',
  'etag',
  'cache-control',
  'age',
  'vary',
  'retry-after',
]);
const ROLE_HEADER = 'x-sluice-role';

export function readBearer(req: IncomingMessage): string {
  const h = req.headers.authorization;
  if (h === undefined || h === '') throw new SluiceError('SLUICE_TOKEN_MISSING', 'no token presented: send the OIDC token as "Authorization: Bearer <token>"');
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  if (m === null) throw new SluiceError('SLUICE_TOKEN_INVALID', 'the Authorization header must be "Bearer <token>"');
  return m[1] as string;
}

export function sourceOf(req: IncomingMessage): string {
  return `${(req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '')}:${req.socket.remotePort ?? 0}`;
}

/** The request target relative to the connection's mount (`/http/api/v1/x?y` → `/v1/x?y`). */
export function relativeTarget(url: string, prefix: string): string {
  const rest = url.startsWith(prefix) ? url.slice(prefix.length) : url;
  if (rest === '' || rest.startsWith('?')) return `/${rest}`;
  return rest;
}

/** Set when the session's token expired while its request ran: the request ended for that. */
interface Expiry {
  error: SluiceError | undefined;
}

export function createProxy<D extends Described>(o: ProxyOptions<D>): Proxy {
  const clock = o.clock ?? Date.now;
  const dropRequest: ReadonlySet<string> = new Set([...DROP_REQUEST, ...SPOOFABLE_REQUEST, ...o.upstream.credentialHeaderNames]);
  const holdCookies = (o.cookies ?? 'hold') === 'hold';
  /** Per agent session; a session the cache dropped takes its jar with it. */
  const jars = new WeakMap<SessionInfo, CookieJar>();
  let inFlight = 0;
  let draining = false;
  const idle: Array<() => void> = [];

  /** A request whose declared Content-Length is past the limit, as the error that refuses it. */
  const declaredTooLarge = (req: IncomingMessage): SluiceError | undefined => {
    const declared = req.headers['content-length'];
    return declared !== undefined && Number(declared) > o.maxRequestBytes ? new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `request body of ${declared} bytes exceeds ${o.maxRequestBytes}`) : undefined;
  };

  const admit = async (req: IncomingMessage, path: string): Promise<Admitted<D>> => {
    if (draining) throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'the gateway is shutting down');
    const token = readBearer(req);
    const roleHeader = req.headers[ROLE_HEADER];
    const role = typeof roleHeader === 'string' ? roleHeader.trim() : '';
    const ua = req.headers['user-agent'];
    const session = await o.sessions.get({ token, role, connection: o.connection, source: sourceOf(req), ...(typeof ua === 'string' ? { client: ua.slice(0, 200) } : {}) });
    const query = (req.url ?? '/').indexOf('?');
    const target = parseRequestTarget(relativeTarget(path + (query < 0 ? '' : (req.url ?? '').slice(query)), o.prefix));
    let body: Buffer | undefined;
    let bodyError: SluiceError | undefined;
    if (o.protocol.needsBody?.(req) === true) {
      // Refused by its declared length before anything is read, so the client still gets a 413.
      bodyError = declaredTooLarge(req);
      if (bodyError === undefined) {
        try {
          body = await readLimited(req, o.maxRequestBytes);
        } catch (err) {
          bodyError = toSluiceError(err);
        }
      }
    }
    const described = o.protocol.describe(req, target, body);
    const decision = o.decide(session, described.action);
    bodyError ??= described.bodyError;
    return { session, described, decision, target, ...(body !== undefined ? { body } : {}), ...(bodyError !== undefined ? { bodyError } : {}) };
  };

  const previewOf = (body: Buffer, req: IncomingMessage, described: D): { body?: string } => {
    const preview = o.protocol.previewBody !== undefined ? o.protocol.previewBody(body, req, described) : bodyPreview(body, o.maskText);
    return preview !== undefined ? { body: preview } : {};
  };

  const commandOf = (d: Described): { text: string; kind: string; verb: string; objects: readonly string[] } => ({ text: d.action.text, kind: d.action.kind, verb: d.action.verb, objects: d.action.objects });

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const started = clock();
    inFlight += 1;
    let admitted: Admitted<D> | undefined;
    try {
      try {
        admitted = await admit(req, path);
      } catch (err) {
        discardBody(req);
        o.protocol.sendError(res, toSluiceError(err));
        return;
      }
      await serve(req, res, admitted, started);
    } finally {
      inFlight -= 1;
      if (inFlight === 0) for (const f of idle.splice(0)) f();
    }
  };

  const serve = async (req: IncomingMessage, res: ServerResponse, a: Admitted<D>, started: number): Promise<void> => {
    const { session, described, decision, target } = a;
    const base = { session, command: commandOf(described), decision: { effect: decision.effect, rule: decision.rule, reason: decision.reason }, policyVersion: o.pipeline.policyVersion };
    const fail = async (err: SluiceError, outcome: 'denied' | 'failure', approvalId?: string): Promise<void> => {
      discardBody(req);
      try {
        await o.pipeline.record({ type: 'command', ...base, outcome, error: { code: err.code, message: err.message }, durationMs: clock() - started, ...(approvalId !== undefined ? { approval: { id: approvalId } } : {}) });
      } catch (auditErr) {
        o.protocol.sendError(res, toSluiceError(auditErr));
        return;
      }
      o.protocol.sendError(res, err, approvalId);
    };

    if (a.bodyError !== undefined) {
      await fail(a.bodyError, 'failure');
      return;
    }
    let body: Buffer | undefined = a.body;
    let approvalId: string | undefined;
    switch (decision.effect) {
      case 'deny':
        await fail(new SluiceError('SLUICE_POLICY_DENIED', decision.reason), 'denied');
        return;
      case 'review': {
        // The approval binds the exact request, body included, so the body is read before holding.
        try {
          body ??= await readLimited(req, o.maxRequestBytes);
        } catch (err) {
          await fail(toSluiceError(err), 'failure');
          return;
        }
        const statementHash = createHash('sha256')
          .update(`${described.action.verb}\u0000${target.rawPath}\u0000${target.rawQuery}\u0000${described.action.text}\u0000`)
          .update(createHash('sha256').update(body).digest())
          .digest('hex');
        const clientGone = new Promise<void>((resolve) => res.once('close', () => resolve()));
        let held;
        try {
          held = await o.holder.settle({
            session,
            decision,
            text: o.maskText(described.action.text),
            statementHash,
            fingerprint: described.fingerprint,
            facts: { kind: described.action.kind, verb: described.action.verb, objects: described.action.objects, bodyBytes: body.length, ...previewOf(body, req, described) },
            waitMs: o.approvalWaitMs,
            clientGone,
          });
        } catch (err) {
          await fail(toSluiceError(err), 'failure');
          return;
        }
        if (held.kind === 'refused') {
          await fail(held.error, 'denied', held.approvalId);
          return;
        }
        if (held.kind === 'pending') {
          try {
            await o.pipeline.record({ type: 'command', ...base, outcome: 'pending', approval: { id: held.approvalId }, durationMs: clock() - started });
          } catch (err) {
            o.protocol.sendError(res, toSluiceError(err));
            return;
          }
          o.protocol.sendPending(res, described, held.approvalId, held.url);
          return;
        }
        approvalId = held.approvalId;
        break;
      }
      case 'allow':
        break;
      default: {
        const never: never = decision.effect;
        await fail(new SluiceError('SLUICE_POLICY_DENIED', `unknown decision ${String(never)}`), 'denied');
        return;
      }
    }

    // Fail closed: the request runs only once its decision is durable.
    try {
      await o.pipeline.record({ type: 'command', ...base, outcome: 'pending', ...(approvalId !== undefined ? { approval: { id: approvalId } } : {}) });
    } catch (err) {
      discardBody(req);
      o.protocol.sendError(res, toSluiceError(err));
      return;
    }

    const stats = new MaskStats();
    let requestBytes = body?.length ?? 0;
    let responseBytes = 0;
    let status = 0;
    let error: SluiceError | undefined;
    const expiry: Expiry = { error: undefined };
    const release = o.sessions.hold(session);
    try {
      status = await forward(req, res, a, body, stats, (n) => (requestBytes += n), (n) => (responseBytes += n), expiry);
    } catch (err) {
      error = expiry.error ?? toSluiceError(err);
      if (error.code === 'SLUICE_INTERNAL') o.log(`${o.protocol.protocol} ${o.connection}: ${String((err as Error)?.stack ?? err)}`);
      if (!res.headersSent) {
        status = error.httpStatus;
        o.protocol.sendError(res, error);
      } else {
        res.destroy();
      }
    }
    release();
    o.sessions.touch(session);
    o.pipeline
      .record({
        type: 'command.result',
        session,
        command: commandOf(described),
        outcome: error === undefined && status < 500 ? 'success' : 'failure',
        bytes: responseBytes,
        durationMs: clock() - started,
        ...(stats.total > 0 ? { mask: stats.toJSON() } : {}),
        ...(error !== undefined ? { error: { code: error.code, message: error.message } } : {}),
        ...(approvalId !== undefined ? { approval: { id: approvalId } } : {}),
        details: { status, requestBytes, responseBytes },
      })
      .catch((err: unknown) => o.log(`${o.protocol.protocol} ${o.connection}: recording a result failed: ${String(err)}`));
  };

  /**
   * The headers forwarded upstream: the agent's, without hop-by-hop ones, its token, spoofable
   * and Sluice's own; the agent's real address; the session's held cookies; the protocol's changes.
   */
  const upstreamHeaders = (req: IncomingMessage, a: Admitted<D>): OutgoingHttpHeaders => {
    const headers = stripHopByHop(req.headers, dropRequest, DROP_REQUEST_PREFIXES);
    // Masking needs the body as the upstream wrote it, not compressed.
    headers['accept-encoding'] = 'identity';
    // Who is really calling, as a reverse proxy says it: the agent's address, not what it claimed.
    headers['x-forwarded-for'] = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    if (typeof req.headers.host === 'string') headers['x-forwarded-host'] = req.headers.host;
    const jar = holdCookies ? jars.get(a.session) : undefined;
    if (jar !== undefined) {
      const cookie = jar.header(typeof headers.cookie === 'string' ? headers.cookie : undefined, a.target.rawPath, clock());
      if (cookie === undefined) delete headers.cookie;
      else headers.cookie = cookie;
    }
    o.protocol.prepareHeaders?.(headers, a.described);
    return headers;
  };

  /** Forward the request and stream the response; resolves with the status sent. */
  const forward = async (
    req: IncomingMessage,
    res: ServerResponse,
    a: Admitted<D>,
    body: Buffer | undefined,
    stats: MaskStats,
    onRequestBytes: (n: number) => void,
    onResponseBytes: (n: number) => void,
    expiry: Expiry,
  ): Promise<number> => {
    const { described, decision, target, session } = a;
    const declared = req.headers['content-length'];
    const tooLarge = body === undefined ? declaredTooLarge(req) : undefined;
    if (tooLarge !== undefined) {
      discardBody(req);
      throw tooLarge;
    }
    const headers = upstreamHeaders(req, a);
    const hasBody = body !== undefined ? body.length > 0 : declared !== undefined ? Number(declared) > 0 : req.headers['transfer-encoding'] !== undefined;
    if (body !== undefined) headers['content-length'] = String(body.length);
    else if (declared !== undefined) headers['content-length'] = declared;
    // A write carrying a masked placeholder would store it over the real value: refused before
    // anything goes upstream (a body already read), or as it streams (the upstream gets a cut body).
    const guard = hasBody && o.protocol.guardsWriteBack?.(req.method ?? 'GET') === true;
    const written = guard && body !== undefined ? findMaskMarker(body.toString('latin1')) : undefined;
    if (written !== undefined) throw maskedWriteBack(written);
    const upReq = o.upstream.request(req.method ?? 'GET', target.rawPath + (target.rawQuery === '' ? '' : `?${target.rawQuery}`), headers);
    let requestFailure: SluiceError | undefined;
    const timer = setTimeout(() => upReq.destroy(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream did not answer within ${o.upstream.timeoutMs} ms`)), o.upstream.timeoutMs);
    const clientClosed = (): void => {
      if (!res.writableFinished) upReq.destroy();
    };
    res.once('close', clientClosed);
    // A response still streaming (a watch, followed logs, server-sent events) ends with its token.
    const stopAtExpiry = atSessionEnd(session, () => {
      expiry.error = tokenExpiredError(session);
      upReq.destroy(expiry.error);
    });
    res.once('close', stopAtExpiry);
    const responded = new Promise<IncomingMessage>((resolve, reject) => {
      upReq.once('response', resolve);
      upReq.once('error', (err) => reject(requestFailure ?? upstreamError(err)));
    });
    if (body !== undefined) upReq.end(body);
    else if (!hasBody) {
      req.resume();
      upReq.end();
    } else {
      const stages: Transform[] = [byteLimit(o.maxRequestBytes, 'request body', onRequestBytes)];
      if (guard) stages.push(refuseMaskMarkers());
      pipe(req, ...(stages as [Transform]), upReq).catch((err: unknown) => {
        requestFailure = toSluiceError(err);
        upReq.destroy(requestFailure);
      });
    }
    let upRes: IncomingMessage;
    try {
      upRes = await responded;
    } finally {
      clearTimeout(timer);
    }
    const status = upRes.statusCode ?? 502;
    const outHeaders = stripHopByHop(upRes.headers);
    if (holdCookies && upRes.headers['set-cookie'] !== undefined) {
      // Issued to the injected credential: kept for this session, not shown to the agent.
      let sessionJar = jars.get(session);
      if (sessionJar === undefined) jars.set(session, (sessionJar = new CookieJar()));
      sessionJar.store(upRes.headers['set-cookie'], target.rawPath, clock());
      delete outHeaders['set-cookie'];
    }
    if (o.scrubber.active) {
      for (const [k, v] of Object.entries(outHeaders)) {
        if (typeof v === 'string') outHeaders[k] = o.scrubber.text(v, () => stats.add('credential', `header:${k}`));
        else if (Array.isArray(v)) outHeaders[k] = v.map((x) => o.scrubber.text(x, () => stats.add('credential', `header:${k}`)));
      }
    }
    // Response headers reach the agent as the body does (a debug header with a key, a Location
    // with an e-mail address): the detectors run on every value but framing and caching ones.
    for (const [k, v] of Object.entries(outHeaders)) {
      if (PLAIN_RESPONSE_HEADERS.has(k)) continue;
      if (typeof v === 'string') outHeaders[k] = o.maskText(v, stats);
      else if (Array.isArray(v)) outHeaders[k] = v.map((x) => o.maskText(x, stats));
    }
    const noBody = req.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) {
      upRes.resume();
      res.writeHead(status, outHeaders);
      res.end();
      return status;
    }
    const plan = o.protocol.planBody(upRes, described, decision);
    const upDeclared = upRes.headers['content-length'];
    const encoding = (upRes.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
    const scrubText = (t: string): string => o.scrubber.text(t, () => stats.add('credential'));
    switch (plan.mode) {
      case 'refuse':
        upRes.destroy();
        throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', plan.reason);
      case 'binary': {
        if (upDeclared !== undefined && Number(upDeclared) > o.maxResponseBytes) {
          upRes.destroy();
          throw new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `upstream response of ${upDeclared} bytes exceeds ${o.maxResponseBytes}`);
        }
        let body: Readable = upRes;
        if (plan.textIfReadable !== undefined && encoding === 'identity') {
          const peeked = await peekFirstChunk(upRes);
          body = peeked.body;
          if (peeked.head !== null && looksLikeText(peeked.head)) {
            const asText = plan.textIfReadable;
            return streamLines(body, res, status, outHeaders, encoding, maskLines((line) => scrubText(asText(line, stats)), o.maxResponseBytes, false), tap(onResponseBytes));
          }
        }
        res.writeHead(status, outHeaders);
        const stages: NodeJS.ReadWriteStream[] = [byteLimit(o.maxResponseBytes, 'upstream response')];
        if (o.scrubber.active) stages.push(o.scrubber.bytes(() => stats.add('credential')));
        await pipe(body, ...(stages as [Transform]), tap(onResponseBytes), res);
        return status;
      }
      case 'json':
      case 'text': {
        if (plan.mode === 'text' && plan.stream && upDeclared === undefined) {
          const records = plan.records?.();
          const maskLine = records !== undefined ? (line: string): string => scrubText(records.line(line, stats)) : (line: string): string => scrubText(plan.text(line, stats));
          // A record's column is known only from the lines before it: no line may be cut in two.
          return streamLines(upRes, res, status, outHeaders, encoding, maskLines(maskLine, o.maxResponseBytes, records !== undefined), tap(onResponseBytes));
        }
        if (upDeclared !== undefined && Number(upDeclared) > o.maxResponseBytes) {
          upRes.destroy();
          throw new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `upstream response of ${upDeclared} bytes exceeds ${o.maxResponseBytes}, the most Sluice buffers to mask`);
        }
        let raw = await readLimited(decode(upRes, encoding), o.maxResponseBytes, 'upstream response');
        // UTF-16 and other encodings that hide ASCII are masked (and sent) as UTF-8.
        const charset = textEncodingPlan(headerText(upRes.headers['content-type']), raw);
        if (charset.transcode) {
          raw = toUtf8(raw, charset.encoding);
          outHeaders['content-type'] = withUtf8Charset(headerText(outHeaders['content-type']));
        }
        let out: Buffer = raw;
        if (plan.mode === 'json') {
          const text = raw.toString('utf8');
          let masked: string;
          let parsed: unknown;
          let ok = true;
          try {
            parsed = JSON.parse(text);
          } catch {
            ok = false;
          }
          if (ok) {
            masked = spliceJson(text, parsed, plan.mask(parsed, stats), (digits) => plan.text(digits, stats));
          } else {
            masked = plan.text(text, stats);
          }
          masked = scrubText(masked);
          if (masked !== text) out = Buffer.from(masked);
        } else {
          const records = plan.records?.();
          out = maskTextBytes(raw, (text) => scrubText(records !== undefined ? records.text(text, stats) : plan.text(text, stats)));
          if (!isUtf8(raw) && o.scrubber.active) {
            // Read as Latin-1, a credential with non-ASCII characters is not found as text: look
            // for its UTF-8 bytes too.
            if (out === raw) out = Buffer.from(raw);
            o.scrubber.overwrite(out);
          }
        }
        delete outHeaders['content-encoding'];
        outHeaders['content-length'] = String(out.length);
        res.writeHead(status, outHeaders);
        onResponseBytes(out.length);
        res.end(out);
        return status;
      }
      case 'json-lines':
      case 'events': {
        /** JSON masked by its fields and values, the text kept as written; text that is not JSON masked as text. */
        const maskJsonText = (text: string): string => {
          // Text that cannot be JSON (an event of plain text, `[DONE]`) is not parsed: a failed parse is an exception.
          if (!mayBeJson(text)) return text.trim() === '' ? text : scrubText(plan.text(text, stats));
          const parsed = tryParse(text);
          if (parsed === NOT_JSON) return scrubText(plan.text(text, stats));
          return scrubText(spliceJson(text, parsed, plan.mask(parsed, stats), (digits) => plan.text(digits, stats)));
        };
        const masking =
          plan.mode === 'events'
            ? maskEventStream({ data: maskJsonText, line: (line) => scrubText(plan.text(line, stats)) }, o.maxResponseBytes)
            : maskLines(maskJsonText, o.maxResponseBytes, true);
        return streamLines(upRes, res, status, outHeaders, encoding, masking, tap(onResponseBytes));
      }
      default: {
        const never: never = plan;
        throw new SluiceError('SLUICE_INTERNAL', `unknown body plan ${JSON.stringify(never)}`);
      }
    }
  };

  const streamLines = async (
    upRes: Readable,
    res: ServerResponse,
    status: number,
    headers: OutgoingHttpHeaders,
    encoding: string,
    masking: Transform,
    count: Transform,
  ): Promise<number> => {
    const contentType = headerText(headers['content-type']);
    // A declared encoding that hides ASCII is refused or transcoded before anything is sent; one
    // found by its first bytes (a byte-order mark) is transcoded by utf8Stream as it arrives.
    let declared;
    try {
      declared = textEncodingPlan(contentType, EMPTY);
    } catch (err) {
      upRes.destroy();
      throw err;
    }
    if (declared.transcode) headers['content-type'] = withUtf8Charset(contentType);
    const source = decode(upRes, encoding);
    delete headers['content-encoding'];
    delete headers['content-length'];
    res.writeHead(status, headers);
    // Each masked line goes out as soon as it is complete: watch events and followed logs are live.
    res.flushHeaders();
    await pipe(source, utf8Stream(contentType), masking, count, res);
    return status;
  };

  return {
    handle,
    admit,
    upstreamHeaders: (req, a) => upstreamHeaders(req, a as Admitted<D>),
    hold: (session) => o.sessions.hold(session),
    get inFlight() {
      return inFlight;
    },
    async drain(graceMs) {
      draining = true;
      if (inFlight === 0) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        t.unref();
        idle.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

const EMPTY = new Uint8Array(0);

/** A header value as one string (the first of a repeated one). */
function headerText(v: string | string[] | number | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v);
}

function upstreamError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) return new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream TLS verification failed (${code})`, { cause: err });
  return new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream unavailable${code !== '' ? ` (${code})` : ''}`, { cause: err });
}

/** The most of a held request's body a reviewer is shown. */
const PREVIEW_BYTES = 2048;

/**
 * What a reviewer sees of a held request's text body: its first PREVIEW_BYTES, masked like the
 * command text, `…` when cut; undefined for a binary body (only its length is shown).
 */
function bodyPreview(body: Buffer, maskText: (text: string) => string): string | undefined {
  if (body.length === 0 || !looksLikeText(body)) return undefined;
  const head = body.subarray(0, PREVIEW_BYTES);
  const text = head.toString('utf8', 0, body.length > PREVIEW_BYTES ? utf8Boundary(head) : head.length);
  return `${maskText(text)}${body.length > PREVIEW_BYTES ? '…' : ''}`;
}

/** `text` cut to PREVIEW_BYTES characters, `…` when cut. */
export function clipPreview(text: string): string {
  return text.length > PREVIEW_BYTES ? `${text.slice(0, PREVIEW_BYTES)}…` : text;
}

/** Decode a compressed upstream body so the masker sees its text; an unknown coding is refused. */
function decode(upRes: Readable, encoding: string): Readable {
  switch (encoding) {
    case '':
    case 'identity':
      return upRes;
    case 'gzip':
    case 'x-gzip':
      return upRes.pipe(createGunzip());
    case 'deflate':
      return upRes.pipe(createInflate());
    case 'br':
      return upRes.pipe(createBrotliDecompress());
    default:
      upRes.destroy();
      throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream sent content-encoding "${encoding}", which Sluice cannot decode to mask`);
  }
}

/**
 * The whole body, refused past `limit`. Event listeners rather than `for await`: on the per-request
 * path the async iterator's promise per chunk measured as a visible share of the proxy's CPU.
 */
function readLimited(stream: Readable, limit: number, what = 'request body'): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done();
        stream.destroy();
        reject(new SluiceError('SLUICE_MESSAGE_TOO_LARGE', `${what} exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    // Closed without 'end' (the peer went away mid-body).
    const onClose = (): void => {
      done();
      reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}

function tap(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}
