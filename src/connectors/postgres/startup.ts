/**
 * The untyped first message of a PostgreSQL connection: SSLRequest, GSSENCRequest, CancelRequest or
 * StartupMessage. https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { SluiceError } from '../../errors.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './protocol.js';

/** PostgreSQL itself refuses startup packets over 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_BYTES = 10_000;

export type StartupPacket =
  | { readonly name: 'ssl-request' }
  | { readonly name: 'gssenc-request' }
  | { readonly name: 'cancel-request'; readonly pid: number; readonly secret: number }
  | { readonly name: 'startup'; readonly params: ReadonlyMap<string, string> };

/**
 * Try to read one startup packet from `buf`. Returns null when more bytes are needed, otherwise
 * the packet and the number of bytes it used. Throws SLUICE_PROTOCOL_VIOLATION on malformed input.
 */
export function readStartupPacket(buf: Buffer): { packet: StartupPacket; used: number } | null {
  if (buf.length < 4) return null;
  const length = buf.readInt32BE(0);
  if (length < 8 || length > MAX_STARTUP_BYTES) {
    throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `invalid startup packet length ${length}`);
  }
  if (buf.length < length) return null;
  const code = buf.readInt32BE(4);
  if (code === SSL_REQUEST_CODE) {
    if (length !== 8) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'invalid SSLRequest length');
    return { packet: { name: 'ssl-request' }, used: 8 };
  }
  if (code === GSSENC_REQUEST_CODE) {
    if (length !== 8) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'invalid GSSENCRequest length');
    return { packet: { name: 'gssenc-request' }, used: 8 };
  }
  if (code === CANCEL_REQUEST_CODE) {
    if (length !== 16) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'invalid CancelRequest length');
    return { packet: { name: 'cancel-request', pid: buf.readInt32BE(8), secret: buf.readInt32BE(12) }, used: 16 };
  }
  if (code >>> 16 !== 3) {
    throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0`);
  }
  // Minor versions above 0 (3.2 adds longer cancel keys) share the parameter layout: Sluice speaks
  // 3.0 upstream and to the client, so it reads the packet as 3.0.
  const params = new Map<string, string>();
  let i = 8;
  const end = length;
  for (;;) {
    if (i >= end) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'startup packet is not terminated');
    if (buf[i] === 0) {
      if (i !== end - 1) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'trailing bytes after startup parameters');
      break;
    }
    const kEnd = buf.indexOf(0, i);
    if (kEnd < 0 || kEnd >= end) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'unterminated startup parameter name');
    const vEnd = buf.indexOf(0, kEnd + 1);
    if (vEnd < 0 || vEnd >= end) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'unterminated startup parameter value');
    const key = buf.toString('utf8', i, kEnd);
    if (params.has(key)) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `duplicate startup parameter ${key}`);
    params.set(key, buf.toString('utf8', kEnd + 1, vEnd));
    i = vEnd + 1;
  }
  if (!params.has('user')) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'no PostgreSQL user name specified in startup packet');
  return { packet: { name: 'startup', params }, used: length };
}
