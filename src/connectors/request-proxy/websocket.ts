/**
 * WebSocket upgrades, shared by the HTTP and Kubernetes engines: deciding an upgrade (deny, hold
 * for review, record before anything is forwarded), the subprotocol handshake on both ends, and
 * recording a stream's traffic for replay in batches. What flows inside a stream is the engine's:
 * Kubernetes channels (kubernetes/stream-proxy.ts), application messages (http/websocket.ts).
 *
 * The client's upgrade is answered only after the upstream accepted its own, with the subprotocol
 * the upstream chose, so both ends always speak the same framing.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { SluiceError, toSluiceError } from '../../errors.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import { atSessionEnd, tokenExpiredError, type SessionInfo } from '../../pipeline/session.js';
import type { ApprovalHolder } from './approval-hold.js';
import type { Admitted, Described, Proxy } from './proxy.js';
import type { Upstream } from './upstream.js';

/** At most this many offered subprotocols, each at most MAX_PROTOCOL_LENGTH visible ASCII characters. */
const MAX_PROTOCOLS = 16;
const MAX_PROTOCOL_LENGTH = 128;

/** The client's `Sec-WebSocket-Protocol` offers; throws SLUICE_PROTOCOL_VIOLATION for a list no server would take. */
export function offeredProtocols(header: string | string[] | undefined): string[] {
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (offered.length > MAX_PROTOCOLS) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `more than ${MAX_PROTOCOLS} WebSocket subprotocols offered`);
  for (const p of offered) {
    if (p.length > MAX_PROTOCOL_LENGTH || !/^[\x21-\x7e]+$/.test(p)) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'a WebSocket subprotocol must be 1 to 128 visible ASCII characters');
  }
  if (new Set(offered).size !== offered.length) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'a WebSocket subprotocol is offered twice');
  return offered;
}

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return /spdy/i.test(String(req.headers.upgrade ?? ''));
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/**
 * Subprotocol names are not all RFC 6455 tokens: Kubernetes' port-forward tunnel (KEP-4006) is
 * `SPDY/3.1+portforward.k8s.io`, and `ws` refuses its `/` on both ends (its server answers 400,
 * its client throws). So the client's offers are percent-encoded into tokens for `ws`'s parser
 * (and matched encoded), the upstream gets them as a raw header, and the upstream's choice is
 * read off its 101 response.
 */
function tokenSafe(protocol: string): string {
  return protocol.replace(/[^!#$&'*+\-.0-9A-Z^_`a-z|~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

type ChosenRequest = IncomingMessage & { sluiceProtocol?: string };

/** The upstream end of a stream and the subprotocol it chose (known once it is open). */
export interface UpstreamSocket {
  readonly ws: WebSocket;
  /** The subprotocol the upstream answered with ('' for none). */
  protocol(): string;
  /** Why the upstream's choice cannot be passed on (it chose none of the offers), or undefined. */
  mismatch(): SluiceError | undefined;
}

/**
 * Open the upstream WebSocket at `pathAndQuery` under the upstream's base URL, with its credential
 * and `headers` (without handshake headers: `ws` writes its own).
 */
export function connectUpstream(upstream: Upstream, pathAndQuery: string, offered: readonly string[], maxPayload: number, headers: OutgoingHttpHeaders = {}): UpstreamSocket {
  const base = new URL(upstream.url.href);
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  const target = `${base.origin}${base.pathname.replace(/\/+$/, '')}${pathAndQuery}`;
  // Offered as a raw header, not through `ws` (see tokenSafe).
  const ws = new WebSocket(target, [], {
    headers: { ...(headers as Record<string, string>), ...upstream.credentialHeaders, ...(offered.length > 0 ? { 'Sec-WebSocket-Protocol': offered.join(', ') } : {}) },
    perMessageDeflate: false,
    maxPayload,
    handshakeTimeout: upstream.timeoutMs,
    ...upstream.tls,
  });
  let chosen = '';
  ws.on('upgrade', (res: IncomingMessage) => {
    // Taken off the response before `ws` checks it against the (empty) list it was given.
    const header = res.headers['sec-websocket-protocol'];
    delete res.headers['sec-websocket-protocol'];
    chosen = typeof header === 'string' ? header.trim() : '';
  });
  return {
    ws,
    protocol: () => chosen,
    // What `ws` would have checked: the upstream picks one of the offers, or none when none were made.
    mismatch: () =>
      (offered.length === 0 ? chosen !== '' : !offered.includes(chosen))
        ? new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', chosen === '' ? 'the upstream accepted the stream without choosing a subprotocol' : `the upstream chose the subprotocol ${JSON.stringify(chosen.slice(0, 128))}, which the client did not offer`)
        : undefined,
  };
}

/** Answers client upgrades with a given subprotocol; one per payload limit. */
export interface Acceptor {
  accept(req: IncomingMessage, socket: Socket, head: Buffer, chosen: string, offered: readonly string[], done: (ws: WebSocket) => void): void;
}

export function createAcceptor(maxPayload: number): Acceptor {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload,
    // Answer the client with exactly the subprotocol the upstream picked (`protocols` holds the
    // client's offers as `tokenSafe` encoded them).
    handleProtocols: (protocols: Set<string>, request: IncomingMessage): string | false => {
      const chosen = (request as ChosenRequest).sluiceProtocol;
      return chosen !== undefined && chosen !== '' && protocols.has(tokenSafe(chosen)) ? chosen : false;
    },
  });
  return {
    accept(req, socket, head, chosen, offered, done) {
      (req as ChosenRequest).sluiceProtocol = chosen;
      if (offered.length > 0) req.headers['sec-websocket-protocol'] = offered.map(tokenSafe).join(', ');
      else delete req.headers['sec-websocket-protocol']; // `ws` refuses an empty list
      wss.handleUpgrade(req, socket, head, done);
    },
  };
}

/** What a connector does at each turn of an upgrade it bridges (bridgeUpgrade). */
export interface BridgeHooks {
  /** Masks the body of the upstream's refusal (an ordinary HTTP answer to the upgrade) before it is passed on. */
  readonly maskText: (text: string) => string;
  /** The refusal's content type when the upstream names none. */
  readonly defaultType: string;
  /** Answers the client's upgrade with an error of Sluice's own. */
  readonly refuse: (socket: Socket, err: SluiceError) => void;
  /** Why the stream failed, kept for its end record. */
  readonly fail: (err: SluiceError) => void;
  /** The stream is over: its end record. */
  readonly finish: () => void;
  /** Closes both ends. */
  readonly closeAll: () => void;
  /** The client's upgrade was answered with the upstream's subprotocol: relay messages. */
  readonly opened: (client: WebSocket) => void;
  /** The session the stream belongs to: the stream ends when its token expires (`endsAt`). */
  readonly session: SessionInfo;
  /**
   * Tells the client its stream ends because the token expired, and closes it; by default a close
   * with 1008 (policy violation) and the reason.
   */
  readonly expire?: (client: WebSocket, err: SluiceError) => void;
}

/** Close a client's stream whose token expired: 1008, with why in the close reason. */
function closeExpired(client: WebSocket): void {
  client.close(1008, 'token expired');
}

/**
 * The upstream end decides how the client's upgrade is answered: a refusal (401, 404 …) is passed
 * on with its body masked, an unreachable upstream or a subprotocol the client did not offer is
 * refused by Sluice, and an accepted one answers the client with the same subprotocol.
 */
export function bridgeUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, upstream: UpstreamSocket, acceptor: Acceptor, offered: readonly string[], h: BridgeHooks): void {
  const up = upstream.ws;
  let open = false;
  up.on('unexpected-response', (_r, upRes: IncomingMessage) => {
    const chunks: Buffer[] = [];
    let size = 0;
    upRes.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    upRes.on('end', () => {
      const body = h.maskText(Buffer.concat(chunks).toString('utf8'));
      const status = upRes.statusCode ?? 502;
      const type = String(upRes.headers['content-type'] ?? h.defaultType).replace(/[\r\n]/g, '');
      const reason = (upRes.statusMessage ?? '').replace(/[\r\n]/g, '');
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      h.fail(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream refused the stream with HTTP ${status}`));
      h.finish();
    });
  });
  up.on('error', (err) => {
    if (!open) {
      const e = new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream stream unavailable (${(err as NodeJS.ErrnoException).code ?? err.message})`);
      h.fail(e);
      h.refuse(socket, e);
      h.finish();
      return;
    }
    h.fail(toSluiceError(err));
    h.closeAll();
  });
  socket.on('error', () => h.closeAll());
  up.on('open', () => {
    const mismatch = upstream.mismatch();
    if (mismatch !== undefined) {
      h.fail(mismatch);
      up.terminate();
      h.refuse(socket, mismatch);
      h.finish();
      return;
    }
    open = true;
    acceptor.accept(req, socket, head, upstream.protocol(), offered, (client) => {
      // Nothing the token opened outlives it: at its expiry both ends are closed.
      const cancel = atSessionEnd(h.session, () => {
        const err = tokenExpiredError(h.session);
        h.fail(err);
        if (client.readyState === WebSocket.OPEN) (h.expire ?? closeExpired)(client, err);
        if (up.readyState === WebSocket.OPEN) up.close(1001);
      });
      client.once('close', cancel);
      h.opened(client);
    });
  });
}

/** A close code that may be sent on (1005, 1006 and reserved codes are only ever reported). */
export function validCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code < 5000) || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ? code : 1000;
}

export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Recorded stream text is flushed to the audit log at least this often … */
const FLUSH_MS = 250;
/** … or once this many bytes of one channel are waiting. */
const FLUSH_BYTES = 16 * 1024;

export interface StreamRecorderInput {
  readonly pipeline: Pipeline;
  readonly session: SessionInfo;
  readonly command: { readonly text: string; readonly kind: string; readonly verb: string; readonly objects: readonly string[] };
  /** Masks a channel's text before it is recorded. */
  readonly mask: (text: string) => string;
  /** A batch could not be recorded: the stream must not go on. */
  readonly onFailure: (err: SluiceError) => void;
  readonly approvalId?: string;
  readonly log: (line: string) => void;
}

export interface StreamRecorder {
  /** Add bytes of one channel (stdin, stdout, sent, received …), recorded with the next flush. */
  capture(channel: string, bytes: Buffer): void;
  /** Record what waits now. */
  flush(): Promise<void>;
  /**
   * The stream is over (once; later calls do nothing): what waits, then its `command.result` with
   * `details.stream: end`, the outcome (a failure when `failure` is set) and `details`.
   */
  end(e: { readonly failure: SluiceError | undefined; readonly bytes: number; readonly details: Readonly<Record<string, unknown>> }): void;
  readonly started: number;
}

/**
 * A stream's traffic as masked text in `command.result` events (`details.stream` names the
 * channel, `details.seq` orders them, `details.offsetMs` times them for replay), batched per
 * channel. Bytes are decoded when flushed, so a character split across messages is recorded whole.
 */
export function createStreamRecorder(input: StreamRecorderInput): StreamRecorder {
  const started = Date.now();
  const channels = new Map<string, Buffer[]>();
  const sizes = new Map<string, number>();
  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const writes: Promise<void>[] = [];
    for (const [channel, parts] of channels) {
      if (parts.length === 0) continue;
      const data = input.mask(Buffer.concat(parts).toString('utf8'));
      channels.set(channel, []);
      sizes.set(channel, 0);
      writes.push(
        input.pipeline.record({
          type: 'command.result',
          session: input.session,
          command: input.command,
          outcome: 'pending',
          details: { stream: channel, seq: seq++, offsetMs: Date.now() - started, data },
        }),
      );
    }
    return Promise.all(writes).then(
      () => undefined,
      (err: unknown) => input.onFailure(toSluiceError(err)),
    );
  };
  let ended = false;
  return {
    started,
    flush,
    end(e) {
      if (ended) return;
      ended = true;
      void flush().finally(() => {
        input.pipeline
          .record({
            type: 'command.result',
            session: input.session,
            command: input.command,
            outcome: e.failure === undefined ? 'success' : 'failure',
            bytes: e.bytes,
            durationMs: Date.now() - started,
            ...(e.failure !== undefined ? { error: { code: e.failure.code, message: e.failure.message } } : {}),
            ...(input.approvalId !== undefined ? { approval: { id: input.approvalId } } : {}),
            details: { stream: 'end', ...e.details },
          })
          .catch((err: unknown) => input.log(`recording a stream's end failed: ${String(err)}`));
      });
    },
    capture(channel, bytes) {
      const parts = channels.get(channel) ?? [];
      parts.push(bytes);
      channels.set(channel, parts);
      const size = (sizes.get(channel) ?? 0) + bytes.length;
      sizes.set(channel, size);
      if (size >= FLUSH_BYTES) void flush();
      else timer ??= setTimeout(() => void flush(), FLUSH_MS);
    },
  };
}

/** What an engine supplies to decide and start its upgrades. */
export interface UpgradeOptions<D extends Described> {
  readonly proxy: Proxy;
  readonly pipeline: Pipeline;
  readonly holder: ApprovalHolder;
  readonly approvalWaitMs: number;
  readonly maskText: (text: string) => string;
  readonly log: (line: string) => void;
  /** Open upgrades, destroyed when the engine closes. */
  readonly streams: Set<Socket>;
  /** A refusal of this protocol (an upgrade it does not proxy), checked after a `deny` decision. */
  check(req: IncomingMessage, a: Admitted<D>): SluiceError | undefined;
  /** What the approver is shown besides the masked request text. */
  reviewFacts(a: Admitted<D>): Readonly<Record<string, unknown>>;
  /** The refusal that tells the agent its upgrade waits for approval `id`. */
  pending(a: Admitted<D>, id: string, url: string): SluiceError;
  /** Answer a refused upgrade on the raw socket. */
  refuse(socket: Socket, err: SluiceError, approvalId?: string): void;
  /** Proxy the stream; called once its decision is durable. */
  start(s: StartInput<D>): void;
}

export interface StartInput<D> {
  readonly req: IncomingMessage;
  readonly socket: Socket;
  readonly head: Buffer;
  readonly admitted: Admitted<D>;
  readonly command: { readonly text: string; readonly kind: string; readonly verb: string; readonly objects: readonly string[] };
  readonly protocols: readonly string[];
  /** Path and query relative to the upstream base, as the agent sent them. */
  readonly pathAndQuery: string;
  readonly approvalId?: string;
}

/**
 * The upgrade handler of a mount: authenticate, decide, hold for review, record the decision
 * durably, then start the stream. Every refusal is recorded and answered on the socket.
 */
export function createUpgradeHandler<D extends Described>(o: UpgradeOptions<D>): (req: IncomingMessage, socket: Socket, head: Buffer, path: string) => void {
  return (req, socket, head, path) => {
    o.streams.add(socket);
    socket.once('close', () => o.streams.delete(socket));
    void (async () => {
      let approvalId: string | undefined;
      try {
        const a = (await o.proxy.admit(req, path)) as Admitted<D>;
        const action = a.described.action;
        const command = { text: action.text, kind: action.kind, verb: action.verb, objects: action.objects };
        const base = { session: a.session, command, decision: { effect: a.decision.effect, rule: a.decision.rule, reason: a.decision.reason }, policyVersion: o.pipeline.policyVersion };
        const refuse = async (err: SluiceError): Promise<void> => {
          await o.pipeline.record({ type: 'command', ...base, outcome: 'denied', error: { code: err.code, message: err.message }, ...(approvalId !== undefined ? { approval: { id: approvalId } } : {}) });
          o.refuse(socket, err, approvalId);
        };
        if (a.decision.effect === 'deny') return await refuse(new SluiceError('SLUICE_POLICY_DENIED', a.decision.reason));
        const wrong = o.check(req, a);
        if (wrong !== undefined) return await refuse(wrong);
        let protocols: string[];
        try {
          protocols = offeredProtocols(req.headers['sec-websocket-protocol']);
        } catch (err) {
          return await refuse(toSluiceError(err));
        }
        if (a.decision.effect === 'review') {
          const statementHash = createHash('sha256').update(`${action.verb}\u0000${a.target.rawPath}\u0000${a.target.rawQuery}`).digest('hex');
          const gone = new Promise<void>((r) => socket.once('close', () => r()));
          const held = await o.holder.settle({
            session: a.session,
            decision: a.decision,
            text: o.maskText(action.text),
            statementHash,
            fingerprint: a.described.fingerprint,
            facts: o.reviewFacts(a),
            waitMs: o.approvalWaitMs,
            clientGone: gone,
          });
          if (held.kind === 'pending') {
            approvalId = held.approvalId;
            return await refuse(o.pending(a, held.approvalId, held.url));
          }
          approvalId = held.approvalId;
          if (held.kind === 'refused') return await refuse(held.error);
        }
        await o.pipeline.record({ type: 'command', ...base, outcome: 'pending', ...(approvalId !== undefined ? { approval: { id: approvalId } } : {}) });
        // An open stream keeps its session from ending idle under it.
        socket.once('close', o.proxy.hold(a.session));
        o.start({
          req,
          socket,
          head,
          admitted: a,
          command,
          protocols,
          pathAndQuery: a.target.rawPath + (a.target.rawQuery === '' ? '' : `?${a.target.rawQuery}`),
          ...(approvalId !== undefined ? { approvalId } : {}),
        });
      } catch (err) {
        const e = toSluiceError(err);
        if (e.code === 'SLUICE_INTERNAL') o.log(`upgrade ${path}: ${String((err as Error)?.stack ?? err)}`);
        o.refuse(socket, e, approvalId);
      }
    })();
  };
}
