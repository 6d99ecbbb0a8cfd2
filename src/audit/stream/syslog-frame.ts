/**
 * RFC 5424 syslog messages for audit records, and their transport framing: one message per UDP
 * datagram (RFC 5426), octet counting over TCP (RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`).
 */
import type { StoredEvent } from '../store/types.js';

/** RFC 5424 §6.2.1 facility 13, "log audit". */
const FACILITY_LOG_AUDIT = 13;
/** RFC 5424 §6.2.1 severities used here. */
const SEVERITY_ERROR = 3;
const SEVERITY_WARNING = 4;
const SEVERITY_INFORMATIONAL = 6;

const APP_NAME = 'sluice';
/** RFC 5424 §6.3.3: the IANA-registered `meta` SD-ID; sequenceId is 1..2147483647. */
const MAX_SEQUENCE_ID = 2_147_483_647;
/**
 * Largest UDP payload sent. IPv4 allows 65,507 bytes; a longer record is cut at a UTF-8 boundary
 * (RFC 5426 §3.2 lets a message be truncated). TCP never truncates: use it for complete records.
 */
export const MAX_UDP_MESSAGE_BYTES = 65_000;

/** Header fields are PRINTUSASCII (%d33-126) with a length cap; NILVALUE `-` when empty. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

function severityOf(type: string, outcome: string | null): number {
  if (type === 'auth.failure' || outcome === 'denied') return SEVERITY_WARNING;
  if (type === 'upstream.error' || outcome === 'failure') return SEVERITY_ERROR;
  return SEVERITY_INFORMATIONAL;
}

/** The node that wrote the record: RFC 5424 HOSTNAME names the originator, not the relay. */
function nodeOf(ev: StoredEvent): string {
  try {
    const node = (JSON.parse(ev.body) as { node?: unknown }).node;
    return typeof node === 'string' ? node : '';
  } catch {
    return '';
  }
}

/**
 * `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [meta sequenceId="seq"] MSG`. TIMESTAMP is the
 * record's own time; MSG is the formatted record (jsonl, OCSF or CEF, none of which contains a raw
 * newline) without a BOM, i.e. RFC 5424 MSG-ANY, which JSON and CEF parsers read unchanged.
 */
export function formatSyslogMessage(ev: StoredEvent, msg: string, procId: string): string {
  const pri = FACILITY_LOG_AUDIT * 8 + severityOf(ev.type, ev.outcome);
  const timestamp = new Date(ev.ts).toISOString();
  const host = headerField(nodeOf(ev), 255);
  const sd = ev.seq >= 1 && ev.seq <= MAX_SEQUENCE_ID ? `[meta sequenceId="${ev.seq}"]` : '-';
  return `<${pri}>1 ${timestamp} ${host} ${APP_NAME} ${headerField(procId, 128)} ${headerField(ev.type, 32)} ${sd} ${msg}`;
}

/** RFC 6587 §3.4.1 octet counting: the byte length, a space, the message. */
export function octetCountedFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/** One datagram, cut to MAX_UDP_MESSAGE_BYTES without splitting a UTF-8 sequence. */
export function udpDatagram(message: string, max = MAX_UDP_MESSAGE_BYTES): Buffer {
  const buf = Buffer.from(message, 'utf8');
  if (buf.length <= max) return buf;
  let end = max;
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end -= 1;
  return buf.subarray(0, end);
}
