/**
 * Errors as the Kubernetes API server writes them: a `metav1.Status` with the reason kubectl
 * prints (`Error from server (Forbidden): …`), so an agent sees Sluice's refusal in its own client.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SluiceError } from '../../errors.js';

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  413: 'RequestEntityTooLarge',
  500: 'InternalError',
  502: 'ServiceUnavailable',
  503: 'ServiceUnavailable',
};

export function statusBody(code: number, message: string, details?: Record<string, unknown>): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[code] ?? 'InternalError',
    ...(details !== undefined ? { details } : {}),
    code,
  });
}

function messageOf(err: SluiceError, approvalId?: string): string {
  return `sluice: ${err.message}${approvalId !== undefined && !err.message.includes(approvalId) ? ` (approval ${approvalId})` : ''} [${err.code}]`;
}

export function sendStatus(res: ServerResponse, err: SluiceError, approvalId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = statusBody(err.httpStatus, messageOf(err, approvalId), approvalId !== undefined ? { name: approvalId, kind: 'approvals', group: 'sluice.dev' } : undefined);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (err.httpStatus === 401) headers['www-authenticate'] = 'Bearer realm="sluice"';
  if (approvalId !== undefined) headers['x-sluice-approval-id'] = approvalId;
  res.writeHead(err.httpStatus, headers);
  res.end(body);
}

/** The Status body for `err`, as a refused upgrade or a stream's error channel carries it. */
export function errorStatusBody(err: SluiceError, approvalId?: string): string {
  return statusBody(err.httpStatus, messageOf(err, approvalId));
}

/** The same Status on a raw socket, for refused upgrades (exec, attach, port-forward). */
export function writeStatusToSocket(socket: Socket, err: SluiceError, approvalId?: string): void {
  const body = errorStatusBody(err, approvalId);
  const reason = REASONS[err.httpStatus] ?? 'Error';
  if (!socket.writable) return;
  socket.end(`HTTP/1.1 ${err.httpStatus} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
