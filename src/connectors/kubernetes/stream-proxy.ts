/**
 * exec, attach and port-forward over WebSocket. The client's upgrade is answered only after the
 * upstream accepted its own, with the subprotocol the upstream chose (`v5.channel.k8s.io`,
 * `v4.channel.k8s.io`, … `channel.k8s.io`, `base64.channel.k8s.io`, or the port-forward
 * tunnelling protocol), so both ends always speak the same framing.
 *
 * Channel protocol (k8s.io/apimachinery/pkg/util/remotecommand, KEP-4006): every binary message
 * starts with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error (a Status), 4 resize; v5 adds
 * 255 (close a channel). `base64.channel.k8s.io` sends text frames with an ASCII digit channel and
 * a base64 payload. stdin/stdout/stderr are recorded for replay as masked text in
 * `command.result` events (`details.stream`), batched per channel; port-forward bytes are counted,
 * not recorded.
 *
 * SPDY (`Upgrade: SPDY/3.1`) is refused: kubectl ≥ 1.30 speaks WebSocket for exec/attach and
 * ≥ 1.31 for port-forward, and only uses SPDY as a fallback.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { SluiceError } from '../../errors.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { SessionInfo } from '../../pipeline/session.js';
import { LineCarry, type CarryOut, type Masker } from '../../masking/index.js';
import { bridgeUpgrade, connectUpstream, createAcceptor, createStreamRecorder, toBuffer, validCloseCode, type Upstream } from '../request-proxy/index.js';
import { errorStatusBody, writeStatusToSocket } from './status.js';

const CHANNEL_NAMES = ['stdin', 'stdout', 'stderr', 'error', 'resize'] as const;
/** How long a partial output line waits for the rest of it before it is sent (an interactive prompt has no newline). */
const CARRY_MS = 25;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface StreamProxyInput {
  readonly req: IncomingMessage;
  readonly socket: Socket;
  readonly head: Buffer;
  readonly session: SessionInfo;
  /** Path and query relative to the upstream base (as the agent sent them). */
  readonly pathAndQuery: string;
  readonly upstream: Upstream;
  readonly pipeline: Pipeline;
  readonly masker: Masker;
  readonly command: { readonly text: string; readonly kind: string; readonly verb: string; readonly objects: readonly string[] };
  /** The client's `Sec-WebSocket-Protocol` offers (`offeredProtocols`), passed to the upstream as they are. */
  readonly protocols: readonly string[];
  /** `portforward` frames are opaque TCP bytes: counted, never recorded. */
  readonly record: boolean;
  readonly approvalId?: string;
  readonly log: (line: string) => void;
}

const acceptor = createAcceptor(MAX_MESSAGE_BYTES);

export function proxyStream(input: StreamProxyInput): void {
  const { req, socket, head, upstream, pipeline, session } = input;
  const offered = input.protocols;
  const archive = input.record && isArchiveExec(input.pathAndQuery);
  const upstreamSocket = connectUpstream(upstream, input.pathAndQuery, offered, MAX_MESSAGE_BYTES);
  const up = upstreamSocket.ws;
  const bytes = { in: 0, out: 0 };
  let base64 = false;
  let failure: SluiceError | undefined;
  let client: WebSocket | undefined;

  const closeAll = (): void => {
    if (client !== undefined && client.readyState === WebSocket.OPEN) client.close();
    if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) up.terminate();
  };
  const recorder = createStreamRecorder({
    pipeline,
    session,
    command: input.command,
    mask: (text) => input.masker.maskText(text),
    // A session that can no longer be recorded does not continue.
    onFailure: (err) => {
      failure = err;
      closeAll();
    },
    ...(input.approvalId !== undefined ? { approvalId: input.approvalId } : {}),
    log: input.log,
  });
  const capture = (channel: string, data: Buffer): void => {
    if (input.record) recorder.capture(channel, data);
  };

  const observe = (data: Buffer, isBinary: boolean): void => {
    if (base64 && !isBinary) {
      const s = data.toString('latin1');
      const ch = Number(s[0]);
      const name = CHANNEL_NAMES[ch];
      if (name !== undefined && ch <= 2) capture(name, Buffer.from(s.slice(1), 'base64'));
      return;
    }
    if (data.length === 0) return;
    const ch = data[0] as number;
    const name = CHANNEL_NAMES[ch];
    if (name === undefined || ch > 3) return;
    capture(name, data.subarray(1));
  };

  const finish = (): void => recorder.end({ failure, bytes: bytes.out, details: { requestBytes: bytes.in, responseBytes: bytes.out, protocol: upstreamSocket.protocol() } });

  bridgeUpgrade(req, socket, head, upstreamSocket, acceptor, offered, {
    // The API server's Status (403, 404, 400 …) reaches the client, masked.
    maskText: (text) => input.masker.maskText(text),
    defaultType: 'application/json',
    refuse: (s, err) => writeStatusToSocket(s, err),
    fail: (err) => (failure = err),
    finish,
    closeAll,
    session,
    // exec and attach end as the API server ends a failed one: a Status on the error channel,
    // which kubectl reports, then a normal close. Port-forward has no such channel.
    ...(input.record
      ? {
          expire: (ws: WebSocket, err: SluiceError) => {
            ws.send(statusFrame(err, base64), { binary: !base64 });
            ws.close(1000);
          },
        }
      : {}),
    opened: (ws) => {
      client = ws;
      base64 = upstreamSocket.protocol() === 'base64.channel.k8s.io';
      ws.on('message', (data: RawData, isBinary: boolean) => {
        const buf = toBuffer(data);
        bytes.in += buf.length;
        observe(buf, isBinary);
        if (up.readyState === WebSocket.OPEN) up.send(buf, { binary: isBinary });
      });
      // stdout/stderr reach the agent masked, like every other response, a value split across
      // frames included (LineCarry); port-forward bytes are opaque and pass untouched.
      const carries = new Map<number, { readonly carry: LineCarry; binary: boolean }>();
      let carryTimer: NodeJS.Timeout | undefined;
      let stopped = false;
      const sendOut = (channel: number, data: Buffer, binary: boolean): void => {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (base64) ws.send(`${channel}${data.toString('base64')}`, { binary });
        else ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary });
      };
      /** Send what a carry released; false once an archive had to be stopped. */
      const emit = (channel: number, out: CarryOut | undefined, binary: boolean): boolean => {
        if (stopped) return false;
        if (out === undefined) return true;
        if (archive && out.changed && channel === STDOUT) {
          // Masking would change the archive's bytes and corrupt it: stop the copy instead.
          stopped = true;
          failure = new SluiceError('SLUICE_POLICY_DENIED', 'the archive holds data Sluice masks, and masking would corrupt it: the copy is stopped (copy files without secrets or personal data, or read them with exec and their masked text)');
          // A normal close after the Status, as the API server ends a failed exec: kubectl reads
          // the Status and reports it (an abnormal close would hide it behind the close error).
          if (ws.readyState === WebSocket.OPEN) {
            ws.send(statusFrame(failure, base64), { binary: !base64 });
            ws.close(1000);
          }
          up.terminate();
          return false;
        }
        sendOut(channel, out.data, binary);
        return true;
      };
      const flushCarries = (final: boolean, except?: number): boolean => {
        for (const [channel, c] of carries) if (channel !== except && !emit(channel, c.carry.flush(final), c.binary)) return false;
        return true;
      };
      up.on('message', (data: RawData, isBinary: boolean) => {
        const buf = toBuffer(data);
        bytes.out += buf.length;
        observe(buf, isBinary);
        if (stopped) return;
        const channel = channelOf(buf, base64);
        if (!input.record || buf.length === 0 || (channel !== STDOUT && channel !== STDERR) || (base64 && isBinary)) {
          // Another channel (the exit Status, a resize): what waited goes out first, in order.
          if (input.record && !flushCarries(true)) return;
          if (ws.readyState === WebSocket.OPEN) ws.send(buf, { binary: isBinary });
          return;
        }
        if (!flushCarries(true, channel)) return;
        let c = carries.get(channel);
        if (c === undefined) carries.set(channel, (c = { carry: new LineCarry((text) => input.masker.maskText(text)), binary: isBinary }));
        c.binary = isBinary;
        const payload = base64 ? Buffer.from(buf.toString('latin1', 1), 'base64') : buf.subarray(1);
        if (!emit(channel, c.carry.push(payload), isBinary)) return;
        if (c.carry.pending > 0) {
          carryTimer ??= setTimeout(() => {
            carryTimer = undefined;
            flushCarries(false);
          }, CARRY_MS);
        }
      });
      ws.on('close', (code, reason) => {
        if (carryTimer !== undefined) clearTimeout(carryTimer);
        if (up.readyState === WebSocket.OPEN) up.close(validCloseCode(code), reason);
        finish();
      });
      up.on('close', (code, reason) => {
        if (carryTimer !== undefined) clearTimeout(carryTimer);
        if (!stopped) flushCarries(true);
        if (ws.readyState === WebSocket.OPEN) ws.close(validCloseCode(code), reason);
        finish();
      });
      ws.on('error', () => closeAll());
    },
  });
}

const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;

/**
 * `kubectl cp` from a pod execs `tar cf - PATH` and unpacks stdout. Its stdout is an archive, so a
 * masked value (which changes length) would corrupt it rather than hide anything usefully.
 */
export function isArchiveExec(pathAndQuery: string): boolean {
  const q = pathAndQuery.indexOf('?');
  if (q < 0 || !/\/exec$/.test(pathAndQuery.slice(0, q))) return false;
  const argv = new URLSearchParams(pathAndQuery.slice(q + 1)).getAll('command');
  return argv[0] === 'tar' && /^-?[A-Za-z]*c/.test(argv[1] ?? '');
}

/** A `metav1.Status` failure on the error channel, in the stream's framing. */
function statusFrame(err: SluiceError, base64: boolean): Buffer | string {
  const json = errorStatusBody(err);
  return base64 ? `${ERROR}${Buffer.from(json).toString('base64')}` : Buffer.concat([Buffer.from([ERROR]), Buffer.from(json)]);
}

/** A frame's channel: its first byte, or with `base64.channel.k8s.io` that byte as an ASCII digit. */
function channelOf(buf: Buffer, base64: boolean): number {
  return base64 ? (buf[0] as number) - 0x30 : (buf[0] as number);
}
