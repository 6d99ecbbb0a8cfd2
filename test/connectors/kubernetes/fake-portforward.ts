/**
 * STAND-IN (part of fake-apiserver.ts; no Kubernetes API server can run here): the server end of
 * `kubectl port-forward` as a v1.31+ API server speaks it over WebSocket (KEP-4006, subprotocol
 * `SPDY/3.1+portforward.k8s.io`). The WebSocket's binary messages carry a SPDY/3.1 byte stream in
 * both directions, cut anywhere (client-go's TunnelingConnection); inside it kubectl opens, per
 * local connection, an error stream and then a data stream. The server answers each SYN_STREAM
 * with a SYN_REPLY, relays the data stream's DATA frames to the pod's port and, when the client
 * half-closes the data stream (FIN), closes its halves of both streams, an empty error stream
 * meaning success. PINGs are echoed, GOAWAY closes the tunnel.
 *
 * The "pod port" is an echo service: every DATA chunk comes back as `echo:<chunk>`.
 *
 * Two simplifications, neither visible to a proxy in between (which relays the bytes untouched):
 * - the client's header blocks (zlib with the SPDY/3 dictionary) are not inflated; streams are
 *   paired in the order client-go creates them (error stream, then data stream);
 * - the server's header blocks are zlib *stored* blocks of an empty header set, one per SYN_REPLY,
 *   each ended by a sync-flush marker, on one zlib stream per connection, so client-go's
 *   persistent per-connection inflater reads each in turn.
 *
 * Frames (SPDY/3 draft, §2.2): control = 1 bit set, version 3 (15 bits), type (16), flags (8),
 * length (24), payload; data = stream id (31 bits), flags (8), length (24), payload. FIN = 0x01.
 */
import type { WebSocket } from 'ws';

export const PORT_FORWARD_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

const SYN_STREAM = 1;
const SYN_REPLY = 2;
const RST_STREAM = 3;
const PING = 6;
const GOAWAY = 7;
const FIN = 0x01;

function control(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | 3, 0);
  h.writeUInt16BE(type, 2);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

function dataFrame(streamId: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

/**
 * An empty header set (uint32 count 0) as a stored deflate block, then the empty stored block a
 * Z_SYNC_FLUSH ends with: an inflater hands out a block's bytes only once it has read the next
 * block's header, so without the marker it would read past this frame. The first carries the
 * zlib header.
 */
function emptyHeaderBlock(first: boolean): Buffer {
  const stored = Buffer.from([0x00, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xff, 0xff]);
  return first ? Buffer.concat([Buffer.from([0x78, 0x01]), stored]) : stored;
}

export interface PortForwardLog {
  /** Streams opened by the client, in order, with the role the pairing gave them. */
  readonly streams: Array<{ id: number; role: 'error' | 'data' }>;
  /** Bytes the pod port received. */
  received: number;
}

export function servePortForward(ws: WebSocket, log: PortForwardLog): void {
  let buf = Buffer.alloc(0);
  let headerBlocks = 0;
  /** data stream id → its error stream id. */
  const pairs = new Map<number, number>();
  let pendingError: number | undefined;
  const send = (frame: Buffer): void => {
    if (ws.readyState === ws.OPEN) ws.send(frame);
  };

  const onControl = (type: number, payload: Buffer): void => {
    switch (type) {
      case SYN_STREAM: {
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        const reply = Buffer.alloc(4);
        reply.writeUInt32BE(id, 0);
        send(control(SYN_REPLY, 0, Buffer.concat([reply, emptyHeaderBlock(headerBlocks++ === 0)])));
        if (pendingError === undefined) {
          pendingError = id;
          log.streams.push({ id, role: 'error' });
        } else {
          pairs.set(id, pendingError);
          pendingError = undefined;
          log.streams.push({ id, role: 'data' });
        }
        return;
      }
      case RST_STREAM:
        pairs.delete(payload.readUInt32BE(0) & 0x7fffffff);
        return;
      case PING:
        send(control(PING, 0, payload));
        return;
      case GOAWAY:
        ws.close(1000);
        return;
      default:
        return; // SETTINGS, HEADERS, WINDOW_UPDATE: nothing to do for a stand-in
    }
  };

  const onData = (id: number, flags: number, payload: Buffer): void => {
    const errorStream = pairs.get(id);
    if (errorStream === undefined) return; // the error stream carries nothing client → server
    if (payload.length > 0) {
      log.received += payload.length;
      send(dataFrame(id, 0, Buffer.concat([Buffer.from('echo:'), payload])));
    }
    if ((flags & FIN) !== 0) {
      send(dataFrame(id, FIN, Buffer.alloc(0)));
      send(dataFrame(errorStream, FIN, Buffer.alloc(0)));
      pairs.delete(id);
    }
  };

  ws.on('message', (m: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(1003, 'binary messages only');
      return;
    }
    buf = Buffer.concat([buf, m]);
    while (buf.length >= 8) {
      const length = buf.readUIntBE(5, 3);
      if (buf.length < 8 + length) break;
      const flags = buf[4] as number;
      const payload = buf.subarray(8, 8 + length);
      if (((buf[0] as number) & 0x80) !== 0) onControl(buf.readUInt16BE(2), payload);
      else onData(buf.readUInt32BE(0) & 0x7fffffff, flags, payload);
      buf = buf.subarray(8 + length);
    }
  });
}
