/**
 * Syslog transports. UDP (RFC 5426): one message per datagram, acknowledged when the kernel took
 * it; the network may still drop it. TCP (RFC 6587): one persistent connection, octet-counted
 * frames, acknowledged when the write was flushed to the kernel; a broken connection is replaced
 * on the next attempt and the unacknowledged batch is sent again (at least once).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, connect, type Socket } from 'node:net';
import type { SyslogDestination } from './destinations.js';
import { DeliveryError, describeError, type Sender, type StreamBatch } from './sender.js';
import { formatSyslogMessage, octetCountedFrame, udpDatagram } from './syslog-frame.js';

export interface SyslogSenderOptions {
  readonly timeoutMs: number;
  /** PROCID in the header. */
  readonly procId: string;
}

export function createSyslogSender(dest: SyslogDestination, options: SyslogSenderOptions): Sender {
  return dest.protocol === 'tcp' ? new TcpSyslogSender(dest, options) : new UdpSyslogSender(dest, options);
}

function messages(batch: StreamBatch, procId: string): string[] {
  return batch.lines.map((line, i) => formatSyslogMessage(batch.events[i]!, line, procId));
}

/** Reject when `signal` aborts; the caller's cleanup runs either way. */
function abortable<T>(signal: AbortSignal, run: (resolve: (v: T) => void, reject: (e: unknown) => void) => void, onAbort: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(new DeliveryError('failed', 'aborted'));
      return;
    }
    const abort = (): void => {
      onAbort();
      reject(new DeliveryError('failed', 'aborted'));
    };
    signal.addEventListener('abort', abort, { once: true });
    run(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', abort);
        reject(e);
      },
    );
  });
}

class UdpSyslogSender implements Sender {
  readonly #dest: SyslogDestination;
  readonly #options: SyslogSenderOptions;
  #socket: UdpSocket | null = null;

  constructor(dest: SyslogDestination, options: SyslogSenderOptions) {
    this.#dest = dest;
    this.#options = options;
  }

  #open(): UdpSocket {
    if (this.#socket !== null) return this.#socket;
    const socket = createSocket(isIP(this.#dest.host) === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => {
      // A send's own callback reports its failure; the socket is replaced on the next batch.
      if (this.#socket === socket) this.#socket = null;
      socket.close();
    });
    socket.unref();
    this.#socket = socket;
    return socket;
  }

  async send(batch: StreamBatch, signal: AbortSignal): Promise<void> {
    const socket = this.#open();
    const datagrams = messages(batch, this.#options.procId).map((m) => udpDatagram(m));
    // In order, one at a time: a datagram that fails stops the batch before later records go.
    for (const d of datagrams) {
      await abortable<void>(
        AbortSignal.any([signal, AbortSignal.timeout(this.#options.timeoutMs)]),
        (resolve, reject) => {
          socket.send(d, this.#dest.port, this.#dest.host, (err) => (err ? reject(new DeliveryError('failed', describeError(err), { cause: err })) : resolve()));
        },
        () => undefined,
      );
    }
  }

  async close(): Promise<void> {
    const s = this.#socket;
    this.#socket = null;
    if (s !== null) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

class TcpSyslogSender implements Sender {
  readonly #dest: SyslogDestination;
  readonly #options: SyslogSenderOptions;
  #socket: Socket | null = null;
  /** Set once the peer ended or errored: the socket is not reused even if still writable. */
  #broken = false;

  constructor(dest: SyslogDestination, options: SyslogSenderOptions) {
    this.#dest = dest;
    this.#options = options;
  }

  #drop(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  async #connection(signal: AbortSignal): Promise<Socket> {
    if (this.#socket !== null && !this.#broken && this.#socket.writable) return this.#socket;
    this.#drop();
    const socket = connect({ host: this.#dest.host, port: this.#dest.port });
    this.#broken = false;
    socket.setNoDelay(true);
    // Like the stream's timers, an idle connection must not keep the process alive.
    socket.unref();
    socket.on('error', () => {
      this.#broken = true;
    });
    // A collector that half-closes or closes has stopped reading: write nothing more to it.
    socket.on('end', () => {
      this.#broken = true;
    });
    socket.on('close', () => {
      this.#broken = true;
      if (this.#socket === socket) this.#socket = null;
    });
    // Whatever the collector sends back is not syslog's business; read it so it cannot pile up.
    socket.resume();
    this.#socket = socket;
    await abortable<void>(
      signal,
      (resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', (err) => reject(new DeliveryError('failed', describeError(err), { cause: err })));
      },
      () => this.#drop(),
    );
    return socket;
  }

  async send(batch: StreamBatch, signal: AbortSignal): Promise<void> {
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(this.#options.timeoutMs)]);
    try {
      const socket = await this.#connection(bounded);
      const frames = Buffer.concat(messages(batch, this.#options.procId).map((m) => octetCountedFrame(m)));
      await abortable<void>(
        bounded,
        (resolve, reject) => {
          // The callback fires once the bytes were handed to the kernel (or the write failed).
          socket.write(frames, (err) => (err ? reject(new DeliveryError('failed', describeError(err), { cause: err })) : resolve()));
        },
        () => this.#drop(),
      );
      if (this.#broken) throw new DeliveryError('failed', 'connection closed by the collector');
    } catch (err) {
      // The stream's position is unknown after a failure: start the next batch on a new connection.
      this.#drop();
      throw err instanceof DeliveryError ? err : new DeliveryError('failed', describeError(err), { cause: err });
    }
  }

  async close(): Promise<void> {
    const s = this.#socket;
    this.#socket = null;
    if (s === null || s.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000);
      timer.unref();
      s.end(() => {
        clearTimeout(timer);
        s.destroy();
        resolve();
      });
    });
  }
}
