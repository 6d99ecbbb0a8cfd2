/**
 * WebSocket through an HTTP connection (GraphQL subscriptions, Jupyter kernels, realtime APIs,
 * the Chrome DevTools protocol). The upgrade is decided as its method and as `websocket`
 * (policy/http/facts.ts), recorded before it is forwarded, and opened upstream with the injected
 * credential and the same forwarded headers as an ordinary request. Then, per message:
 *
 * - upstream → agent: a text message is masked as a response body is (JSON by its fields and
 *   values, kept as written; other text by the detectors) and scrubbed of the credential; a
 *   binary message passes with only the credential overwritten in place;
 * - agent → upstream: passed as sent; where the connection's rules read `http.json`, each message
 *   is first decided as the upgrade was, with the message as `http.json` (a GraphQL mutation or a
 *   JSON-RPC call sent over the socket meets the rules it would meet in a POST body), and a
 *   refused one closes the socket with 1008 before anything of it goes upstream;
 * - both directions' text messages are recorded for replay (`details.stream` `sent` and
 *   `received`, masked, one message per line), batched as Kubernetes exec streams are; binary
 *   messages are counted.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { SluiceError } from '../../errors.js';
import type { Masker } from '../../masking/index.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { SessionInfo } from '../../pipeline/session.js';
import type { Decision } from '../../pipeline/types.js';
import { bridgeUpgrade, connectUpstream, createStreamRecorder, toBuffer, validCloseCode, type Acceptor, type Scrubber, type Upstream } from '../request-proxy/index.js';

export interface RelayInput {
  readonly req: IncomingMessage;
  readonly socket: Socket;
  readonly head: Buffer;
  readonly session: SessionInfo;
  readonly pathAndQuery: string;
  readonly protocols: readonly string[];
  /** The agent's request headers as forwarded (Proxy.upstreamHeaders). */
  readonly headers: OutgoingHttpHeaders;
  readonly command: { readonly text: string; readonly kind: string; readonly verb: string; readonly objects: readonly string[] };
  readonly upstream: Upstream;
  readonly pipeline: Pipeline;
  readonly masker: Masker;
  readonly scrubber: Scrubber;
  /** The agent's messages are limited by maxRequestBytes (in `acceptor`), the upstream's by this. */
  readonly maxResponseBytes: number;
  readonly acceptor: Acceptor;
  /**
   * Decide one agent message (its rules read `http.json`): allow passes it on; anything else closes
   * the socket. An error is a message that cannot be decided (JSON with a repeated key).
   */
  readonly decideMessage?: (data: Buffer, isBinary: boolean) => Decision | SluiceError;
  readonly refuse: (socket: Socket, err: SluiceError) => void;
  readonly approvalId?: string;
  readonly log: (line: string) => void;
}

/** A message as recorded: one per line, so a replay shows where each ends. */
function lineOf(buf: Buffer): Buffer {
  return buf.length > 0 && buf[buf.length - 1] === 0x0a ? buf : Buffer.concat([buf, NL]);
}
const NL = Buffer.from('\n');

/** Handshake headers `ws` writes itself; the agent's would clash with them. */
const HANDSHAKE = /^sec-websocket-/;

export function relayWebSocket(input: RelayInput): void {
  const { req, socket, head, pipeline, session, masker, scrubber } = input;
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(input.headers)) if (!HANDSHAKE.test(k) && k !== 'accept-encoding') headers[k] = v;
  const upstreamSocket = connectUpstream(input.upstream, input.pathAndQuery, input.protocols, input.maxResponseBytes, headers);
  const up = upstreamSocket.ws;
  const counts = { in: 0, out: 0, sent: 0, received: 0 };
  let failure: SluiceError | undefined;
  let client: WebSocket | undefined;

  const closeAll = (): void => {
    if (client !== undefined && client.readyState === WebSocket.OPEN) client.close(1011);
    if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) up.terminate();
  };
  const recorder = createStreamRecorder({
    pipeline,
    session,
    command: input.command,
    mask: (text) => scrubber.text(masker.maskText(text)),
    // A stream that can no longer be recorded does not go on.
    onFailure: (err) => {
      failure = err;
      closeAll();
    },
    ...(input.approvalId !== undefined ? { approvalId: input.approvalId } : {}),
    log: input.log,
  });

  const finish = (): void =>
    recorder.end({ failure, bytes: counts.out, details: { requestBytes: counts.in, responseBytes: counts.out, messagesSent: counts.sent, messagesReceived: counts.received, protocol: upstreamSocket.protocol() } });

  /**
   * A refused message: recorded as a denied command (its text masked), never forwarded; the socket
   * closes with 1008 and the rule, as an HTTP request would be answered 403.
   */
  const refuseMessage = (ws: WebSocket, buf: Buffer, isBinary: boolean, refused: { readonly err: SluiceError; readonly decision?: Decision }): void => {
    failure = refused.err;
    const shown = isBinary ? `<${buf.length} bytes binary>` : scrubber.text(masker.maskText(buf.toString('utf8', 0, Math.min(buf.length, MESSAGE_PREVIEW_BYTES))));
    pipeline
      .record({
        type: 'command',
        session,
        command: { ...input.command, text: `${input.command.text} message: ${shown}` },
        ...(refused.decision !== undefined ? { decision: { effect: refused.decision.effect, rule: refused.decision.rule, reason: refused.decision.reason } } : {}),
        policyVersion: pipeline.policyVersion,
        outcome: 'denied',
        error: { code: refused.err.code, message: refused.err.message },
      })
      .catch((err: unknown) => input.log(`recording a refused WebSocket message failed: ${String(err)}`));
    ws.close(1008, closeText(refused.err.message));
    if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) up.close(1001);
  };

  bridgeUpgrade(req, socket, head, upstreamSocket, input.acceptor, input.protocols, {
    // The upstream's own refusal (401, 404 …) reaches the agent masked, without the credential.
    maskText: (text) => scrubber.text(masker.maskText(text)),
    defaultType: 'text/plain',
    refuse: input.refuse,
    fail: (err) => (failure = err),
    finish,
    closeAll,
    session,
    opened: (ws) => {
      client = ws;
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const buf = toBuffer(data);
        counts.in += buf.length;
        counts.sent += 1;
        const refused = refusal(input.decideMessage?.(buf, isBinary));
        if (refused !== undefined) {
          refuseMessage(ws, buf, isBinary, refused);
          return;
        }
        if (!isBinary) recorder.capture('sent', lineOf(buf));
        if (up.readyState === WebSocket.OPEN) up.send(buf, { binary: isBinary });
      });
      up.on('message', (data: RawData, isBinary: boolean) => {
        const buf = toBuffer(data);
        counts.received += 1;
        let out: Buffer | string;
        if (isBinary) {
          scrubber.overwrite(buf);
          out = buf;
        } else {
          const text = buf.toString('utf8');
          const masked = scrubber.text(masker.maskJsonText(text));
          out = masked === text ? buf : masked;
          recorder.capture('received', lineOf(typeof out === 'string' ? Buffer.from(out) : out));
        }
        counts.out += typeof out === 'string' ? Buffer.byteLength(out) : out.length;
        if (ws.readyState === WebSocket.OPEN) ws.send(out, { binary: isBinary });
      });
      ws.on('close', (code, reason) => {
        if (up.readyState === WebSocket.OPEN) up.close(validCloseCode(code), reason);
        finish();
      });
      up.on('close', (code, reason) => {
        // 1006: the upstream's connection ended without a close frame (it died): not a normal close to the agent.
        if (code === 1006) failure ??= new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'the upstream WebSocket ended without a close frame');
        if (ws.readyState === WebSocket.OPEN) ws.close(code === 1006 ? 1011 : validCloseCode(code), closeReason(reason, masker, scrubber));
        finish();
      });
      ws.on('error', () => closeAll());
    },
  });
}

/** Bytes of a refused message kept (masked) in its record. */
const MESSAGE_PREVIEW_BYTES = 1024;

/** What refuses a message, if anything: a deny (or a review, which a message cannot wait for), or a message that cannot be decided. */
function refusal(d: Decision | SluiceError | undefined): { readonly err: SluiceError; readonly decision?: Decision } | undefined {
  if (d === undefined) return undefined;
  if (d instanceof SluiceError) return { err: d };
  switch (d.effect) {
    case 'allow':
      return undefined;
    case 'review':
      return { err: new SluiceError('SLUICE_POLICY_DENIED', `${d.reason}; a WebSocket message cannot wait for approval, so it is refused`), decision: d };
    default:
      return { err: new SluiceError('SLUICE_POLICY_DENIED', d.reason), decision: d };
  }
}

/** A close reason: at most 123 bytes of UTF-8, cut at a character boundary. */
function closeText(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/** The upstream's close reason, masked; dropped when masking made it longer than a close frame holds (123 bytes). */
function closeReason(reason: Buffer, masker: Masker, scrubber: Scrubber): Buffer | string {
  const text = reason.toString('utf8');
  const masked = scrubber.text(masker.maskText(text));
  if (masked === text) return reason;
  return Buffer.byteLength(masked) <= 123 ? masked : '';
}
