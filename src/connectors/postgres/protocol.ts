/**
 * PostgreSQL v3 wire constants and the few backend messages the gateway builds itself.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Written by hand rather than with pg-protocol's serializer: the proxy forwards almost every
 * frame as its original bytes and only ever builds these handful of replies.
 */

export const PROTOCOL_V3 = 196608; // 3.0
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** Frontend (client → server) message types. */
export const Frontend = {
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Describe: 0x44, // D
  Execute: 0x45, // E
  Close: 0x43, // C
  Sync: 0x53, // S
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Terminate: 0x58, // X
  Password: 0x70, // p (also SASLInitialResponse / SASLResponse)
} as const;

/** Backend (server → client) message types. */
export const Backend = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

/** Authentication request codes inside an `R` message. */
export const Auth = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** ErrorResponse / NoticeResponse field codes. */
export const Field = {
  Severity: 0x53, // S
  SeverityNonLocalized: 0x56, // V
  Code: 0x43, // C
  Message: 0x4d, // M
  Detail: 0x44, // D
  Hint: 0x48, // H
  Position: 0x50, // P
  InternalQuery: 0x71, // q
  Where: 0x57, // W
  Schema: 0x73, // s
  Table: 0x74, // t
  Column: 0x63, // c
  Constraint: 0x6e, // n
} as const;

/** Build one typed backend/frontend message: type byte, int32 length (self-inclusive), body. */
export function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function cstring(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

export interface ErrorFields {
  readonly severity?: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING' | 'INFO';
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

function fieldsBody(f: ErrorFields): Buffer {
  const severity = f.severity ?? 'ERROR';
  const parts: Buffer[] = [
    Buffer.from([Field.Severity]), cstring(severity),
    Buffer.from([Field.SeverityNonLocalized]), cstring(severity),
    Buffer.from([Field.Code]), cstring(f.code),
    Buffer.from([Field.Message]), cstring(f.message),
  ];
  if (f.detail !== undefined) parts.push(Buffer.from([Field.Detail]), cstring(f.detail));
  if (f.hint !== undefined) parts.push(Buffer.from([Field.Hint]), cstring(f.hint));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function errorResponse(f: ErrorFields): Buffer {
  return frame(Backend.ErrorResponse, fieldsBody(f));
}

export function noticeResponse(f: ErrorFields): Buffer {
  return frame(Backend.NoticeResponse, fieldsBody({ ...f, severity: f.severity ?? 'NOTICE' }));
}

export function authenticationRequest(code: number, extra?: Buffer): Buffer {
  const body = Buffer.allocUnsafe(4 + (extra?.length ?? 0));
  body.writeInt32BE(code, 0);
  extra?.copy(body, 4);
  return frame(Backend.Authentication, body);
}

export const AUTH_OK = authenticationRequest(Auth.Ok);
export const AUTH_CLEARTEXT = authenticationRequest(Auth.CleartextPassword);

export function backendKeyData(pid: number, secret: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeInt32BE(pid, 0);
  body.writeInt32BE(secret, 4);
  return frame(Backend.BackendKeyData, body);
}

export function readyForQuery(status: number): Buffer {
  return frame(Backend.ReadyForQuery, Buffer.from([status]));
}

export function parameterStatus(name: string, value: string): Buffer {
  return frame(Backend.ParameterStatus, Buffer.concat([cstring(name), cstring(value)]));
}

/** Frontend Query message. */
export function queryMessage(sql: string): Buffer {
  return frame(Frontend.Query, cstring(sql));
}

/** Frontend Parse message with no parameter types. */
export function parseMessage(name: string, sql: string): Buffer {
  return frame(Frontend.Parse, Buffer.concat([cstring(name), cstring(sql), Buffer.from([0, 0])]));
}

/** Describe of a prepared statement (`S`) or a portal (`P`) by name. */
export function describeMessage(target: 'S' | 'P', name: string): Buffer {
  return frame(Frontend.Describe, Buffer.concat([Buffer.from(target), cstring(name)]));
}

export const SYNC = frame(Frontend.Sync, Buffer.alloc(0));
export const FLUSH = frame(Frontend.Flush, Buffer.alloc(0));

/** Frontend Bind of `statement` to `portal`: no parameters, text results. */
export function bindMessage(portal: string, statement: string): Buffer {
  return frame(Frontend.Bind, Buffer.concat([cstring(portal), cstring(statement), Buffer.from([0, 0, 0, 0, 0, 0])]));
}

/** Frontend Close of a prepared statement (`S`) or a portal (`P`). */
export function closeMessage(target: 'S' | 'P', name: string): Buffer {
  return frame(Frontend.Close, Buffer.concat([Buffer.from(target), cstring(name)]));
}

/** Frontend Execute of `portal` with no row limit. */
export function executeMessage(portal: string): Buffer {
  return frame(Frontend.Execute, Buffer.concat([cstring(portal), Buffer.from([0, 0, 0, 0])]));
}

/** Frontend PasswordMessage / SASL response carrying raw bytes. */
export function passwordMessage(body: Buffer): Buffer {
  return frame(Frontend.Password, body);
}

export function startupMessage(params: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(cstring(k), cstring(v));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(PROTOCOL_V3, 4);
  body.copy(out, 8);
  return out;
}

export function sslRequest(): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeInt32BE(8, 0);
  out.writeInt32BE(SSL_REQUEST_CODE, 4);
  return out;
}

export function cancelRequest(pid: number, secret: number): Buffer {
  const out = Buffer.allocUnsafe(16);
  out.writeInt32BE(16, 0);
  out.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  out.writeInt32BE(pid, 8);
  out.writeInt32BE(secret, 12);
  return out;
}

export const TERMINATE = frame(Frontend.Terminate, Buffer.alloc(0));

/** Transaction status bytes in ReadyForQuery. */
export const TxStatus = {
  Idle: 0x49, // I
  InTransaction: 0x54, // T
  Failed: 0x45, // E
} as const;

/** Read the fields of an ErrorResponse/NoticeResponse body into a map keyed by field code. */
export function parseErrorFields(body: Buffer): Map<number, string> {
  const fields = new Map<number, string>();
  let i = 0;
  while (i < body.length) {
    const code = body[i] as number;
    if (code === 0) break;
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    fields.set(code, body.toString('utf8', i + 1, end));
    i = end + 1;
  }
  return fields;
}

/** Rebuild an ErrorResponse/NoticeResponse from a field map. */
export function buildFieldsMessage(type: number, fields: ReadonlyMap<number, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of fields) parts.push(Buffer.from([code]), cstring(value));
  parts.push(Buffer.from([0]));
  return frame(type, Buffer.concat(parts));
}
