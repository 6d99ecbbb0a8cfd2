/**
 * Opens an authenticated connection to the upstream PostgreSQL with the credential Sluice holds
 * (the agent never sees it): optional TLS with verification, then SCRAM-SHA-256, md5 or cleartext.
 * Resolves once the server is ready for queries, with the ParameterStatus frames and BackendKeyData.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { SluiceError } from '../../errors.js';
import type { PostgresUpstream } from '../../config/index.js';
import { BodyReader, FrameReader } from './frame-reader.js';
import {
  Auth,
  Backend,
  Field,
  parseErrorFields,
  passwordMessage,
  sslRequest,
  startupMessage,
} from './protocol.js';
import { md5Password, scramClientFinal, scramClientFirst, scramVerifyServerFinal } from './scram.js';

/** Upstream frames can be large (wide rows), but never beyond PostgreSQL's own 1 GB field limit. */
export const MAX_UPSTREAM_MESSAGE = 1024 * 1024 * 1024;

export interface UpstreamConnection {
  readonly socket: Socket | TLSSocket;
  /** ParameterStatus frames, as received, to replay to the client. */
  readonly parameterFrames: readonly Buffer[];
  readonly parameters: ReadonlyMap<string, string>;
  readonly pid: number;
  readonly secret: number;
  /** Bytes received after ReadyForQuery (normally none). */
  readonly leftover: Buffer;
  /** Transaction status from the first ReadyForQuery. */
  readonly txStatus: number;
}

export interface UpstreamOptions {
  readonly upstream: PostgresUpstream;
  /** Extra startup parameters (application_name, client_encoding, default_transaction_read_only, …). */
  readonly params: Readonly<Record<string, string>>;
  readonly connectionName: string;
}

export async function connectUpstream(opts: UpstreamOptions): Promise<UpstreamConnection> {
  const u = opts.upstream;
  const raw = await openSocket(u.host, u.port, u.connectTimeoutMs, opts.connectionName);
  let socket: Socket | TLSSocket = raw;
  try {
    if (u.sslmode !== 'disable') socket = await negotiateTls(raw, u, opts.connectionName);
    socket.setNoDelay(true);
    return await authenticate(socket, opts);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function openSocket(host: string, port: number, timeoutMs: number, name: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream for connection ${name} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream for connection ${name} is unreachable (${err.code ?? 'error'})`));
    });
  });
}

function readOnce(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let acc = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      acc = Buffer.concat([acc, d]);
      if (acc.length >= bytes) {
        cleanup();
        if (acc.length > bytes) socket.unshift(acc.subarray(bytes));
        resolve(acc.subarray(0, bytes));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'upstream closed the connection during TLS negotiation'));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
  });
}

async function negotiateTls(socket: Socket, u: PostgresUpstream, name: string): Promise<TLSSocket | Socket> {
  socket.write(sslRequest());
  const answer = await readOnce(socket, 1);
  socket.pause();
  if (answer[0] !== 0x53 /* S */) {
    if (u.sslmode === 'prefer') return socket;
    throw new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream for connection ${name} does not support TLS (sslmode=${u.sslmode})`);
  }
  const verify = u.sslmode === 'verify-ca' || u.sslmode === 'verify-full';
  const ca = u.ca !== undefined ? readFileSync(u.ca) : undefined;
  return new Promise((resolve, reject) => {
    const options: ConnectionOptions = {
      socket,
      ...(ca !== undefined ? { ca } : {}),
      rejectUnauthorized: verify,
      // verify-ca checks the chain only; verify-full also checks the host name (the default check).
      ...(u.sslmode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
      ...(/^[\d.]+$|:/.test(u.host) ? {} : { servername: u.host }),
    };
    const tls = tlsConnect(options);
    tls.once('secureConnect', () => {
      tls.removeAllListeners('error');
      resolve(tls);
    });
    tls.once('error', (err) => {
      reject(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `TLS to upstream for connection ${name} failed: ${err.message}`));
    });
  });
}

function authenticate(socket: Socket | TLSSocket, opts: UpstreamOptions): Promise<UpstreamConnection> {
  const u = opts.upstream;
  const password = (): string => {
    if (u.password === undefined) {
      throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', `upstream for connection ${opts.connectionName} asked for a password but none is configured`);
    }
    return u.password.reveal();
  };
  return new Promise((resolve, reject) => {
    const reader = new FrameReader(MAX_UPSTREAM_MESSAGE, 'upstream');
    const parameterFrames: Buffer[] = [];
    const parameters = new Map<string, string>();
    let pid = 0;
    let secret = 0;
    let scram: ReturnType<typeof scramClientFirst>['state'] | undefined;
    let expectedServerSignature: Buffer | undefined;
    let settled = false;
    const timer = setTimeout(() => fail(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream for connection ${opts.connectionName} did not finish startup in time`)), u.connectTimeoutMs);

    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup();
      reject(err instanceof SluiceError ? err : new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream startup failed for connection ${opts.connectionName}`, { cause: err }));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onError = (err: Error): void => fail(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream connection error: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    const onClose = (): void => fail(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', `upstream for connection ${opts.connectionName} closed during startup`));

    const onData = (chunk: Buffer): void => {
      try {
        reader.feed(chunk);
        while (reader.next()) {
          const type = reader.type;
          const body = reader.body();
          switch (type) {
            case Backend.Authentication:
              handleAuth(body);
              break;
            case Backend.ParameterStatus: {
              const r = new BodyReader(body);
              parameters.set(r.cstring(), r.cstring());
              parameterFrames.push(Buffer.from(reader.frame()));
              break;
            }
            case Backend.BackendKeyData: {
              const r = new BodyReader(body);
              pid = r.int32();
              secret = r.int32();
              break;
            }
            case Backend.NoticeResponse:
              break;
            case Backend.NegotiateProtocolVersion:
              break;
            case Backend.ErrorResponse: {
              const fields = parseErrorFields(body);
              const code = fields.get(Field.Code) ?? '';
              // 28P01 invalid_password, 28000 invalid_authorization_specification
              const authFailure = code.startsWith('28');
              throw new SluiceError(
                authFailure ? 'SLUICE_UPSTREAM_AUTH_FAILED' : 'SLUICE_UPSTREAM_UNAVAILABLE',
                authFailure
                  ? `upstream rejected Sluice's credential for connection ${opts.connectionName} (${code})`
                  : `upstream refused the connection for ${opts.connectionName}: ${fields.get(Field.Message) ?? code}`,
              );
            }
            case Backend.ReadyForQuery: {
              if (expectedServerSignature === undefined && scram !== undefined) {
                throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', 'upstream skipped SCRAM final verification');
              }
              settled = true;
              clearTimeout(timer);
              cleanup();
              socket.pause();
              resolve({
                socket,
                parameterFrames,
                parameters,
                pid,
                secret,
                leftover: Buffer.from(reader.buffer.subarray(reader.cursor)),
                txStatus: body[0] ?? 0x49,
              });
              return;
            }
            default:
              throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `unexpected message ${String.fromCharCode(type)} from upstream during startup`);
          }
        }
      } catch (err) {
        fail(err);
      }
    };

    const handleAuth = (body: Buffer): void => {
      const r = new BodyReader(body);
      const code = r.int32();
      switch (code) {
        case Auth.Ok:
          if (scram !== undefined && expectedServerSignature === undefined) {
            throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', 'upstream ended SCRAM without proving it knows the password');
          }
          return;
        case Auth.CleartextPassword:
          socket.write(passwordMessage(Buffer.from(password() + '\0', 'utf8')));
          return;
        case Auth.MD5Password: {
          const salt = r.bytes(4);
          socket.write(passwordMessage(Buffer.from(md5Password(u.user, password(), salt) + '\0', 'utf8')));
          return;
        }
        case Auth.SASL: {
          const mechanisms: string[] = [];
          for (;;) {
            const m = r.cstring();
            if (m === '') break;
            mechanisms.push(m);
          }
          if (!mechanisms.includes('SCRAM-SHA-256')) {
            throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', `upstream offers no supported SASL mechanism (${mechanisms.join(', ')})`);
          }
          password();
          const first = scramClientFirst();
          scram = first.state;
          const mech = Buffer.from('SCRAM-SHA-256\0', 'utf8');
          const data = Buffer.from(first.message, 'utf8');
          const len = Buffer.allocUnsafe(4);
          len.writeInt32BE(data.length, 0);
          socket.write(passwordMessage(Buffer.concat([mech, len, data])));
          return;
        }
        case Auth.SASLContinue: {
          if (scram === undefined) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'unexpected SASLContinue from upstream');
          const final = scramClientFinal(scram, r.bytes(r.remaining).toString('utf8'), password());
          expectedServerSignature = final.expectedServerSignature;
          socket.write(passwordMessage(Buffer.from(final.message, 'utf8')));
          return;
        }
        case Auth.SASLFinal: {
          if (expectedServerSignature === undefined) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'unexpected SASLFinal from upstream');
          scramVerifyServerFinal(r.bytes(r.remaining).toString('utf8'), expectedServerSignature);
          return;
        }
        default:
          throw new SluiceError('SLUICE_UPSTREAM_AUTH_FAILED', `upstream asked for an unsupported authentication method (${code})`);
      }
    };

    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    const params: Record<string, string> = { user: u.user, database: u.database, ...opts.params };
    socket.write(startupMessage(params));
    socket.resume();
  });
}
