/**
 * The approvals REST API, mounted on the gateway's HTTP listener at /api/v1/approvals:
 *
 *   GET  /api/v1/approvals[?state=pending]   list (reviewers see all, others their own)
 *   GET  /api/v1/approvals/:id               one request
 *   POST /api/v1/approvals/:id/approve       {"comment"?: string}
 *   POST /api/v1/approvals/:id/deny          {"reason": string}
 *
 * Every call needs `Authorization: Bearer <token>`, verified like any agent token; what the token's
 * holder may do is decided by the service (separation of duties), not here. Errors are RFC 9457
 * problem bodies: 401 no/invalid token, 403 not an approver or self-approval, 404 unknown id,
 * 409 no longer pending, 413 body too large.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceError } from '../errors.js';
import type { Identity } from '../pipeline/types.js';
import { apiHandler, bearerToken, decodeSegment, methodNotAllowed, readBody, sendJson, type HttpHandler } from '../server/http-server.js';
import { notFound } from './errors.js';
import { canView } from './separation-of-duties.js';
import { APPROVALS_API_PREFIX, isApprovalId } from './service.js';
import type { ApprovalService, ApprovalState } from './types.js';

export interface ApprovalsApiOptions {
  /** Where the handler is mounted. Default /api/v1/approvals. */
  readonly prefix?: string;
  /** Largest JSON body accepted. Default 16 KiB (a comment or reason is at most 1000 characters). */
  readonly maxBodyBytes?: number;
  /** Largest bearer token accepted before verification. Default 16 KiB. */
  readonly maxTokenBytes?: number;
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== undefined && type !== '' && type !== 'application/json') throw new SluiceError('SLUICE_BAD_REQUEST', 'the request body must be application/json');
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new SluiceError('SLUICE_BAD_REQUEST', 'the request body is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SluiceError('SLUICE_BAD_REQUEST', 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new SluiceError('SLUICE_BAD_REQUEST', `"${key}" must be a string`);
  return v;
}

export function createApprovalsApi(service: ApprovalService, authenticate: (token: string) => Promise<Identity>, options: ApprovalsApiOptions = {}): HttpHandler {
  const prefix = (options.prefix ?? APPROVALS_API_PREFIX).replace(/\/+$/, '');
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024;
  const maxTokenBytes = options.maxTokenBytes ?? 16 * 1024;
  if (!prefix.startsWith('/')) throw new TypeError(`approvals API prefix must start with "/": ${prefix}`);

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (path !== prefix && !path.startsWith(prefix + '/')) throw new SluiceError('SLUICE_APPROVAL_NOT_FOUND', `no route for ${path.slice(0, 200)}`);
    const parts = path.slice(prefix.length).split('/').filter((p) => p !== '');
    // Authenticate before routing so an anonymous caller learns nothing, not even which ids exist.
    const who = await authenticate(bearerToken(req, maxTokenBytes));
    const method = req.method ?? 'GET';
    if (parts.length === 0) {
      if (method !== 'GET') return methodNotAllowed(res, 'GET');
      const url = new URL(req.url ?? '/', 'http://sluice.invalid');
      const state = url.searchParams.get('state') ?? undefined;
      const limit = url.searchParams.get('limit');
      const items = await service.list({
        ...(state !== undefined && state !== '' ? { state: state as ApprovalState } : {}),
        ...(limit !== null ? { limit: Number(limit) || 100 } : {}),
      });
      const reviewer = service.isReviewer(who);
      const visible = items.filter((v) => canView(v, who, reviewer));
      return sendJson(res, 200, { items: visible });
    }
    const id = decodeSegment(parts[0] as string) ?? '';
    if (!isApprovalId(id)) throw notFound(id);
    if (parts.length === 1) {
      if (method !== 'GET') return methodNotAllowed(res, 'GET');
      const view = await service.get(id);
      // A request the caller may not see is reported as missing, not as forbidden.
      if (view === undefined || !canView(view, who, service.isReviewer(who))) throw notFound(id);
      return sendJson(res, 200, view);
    }
    if (parts.length === 2 && (parts[1] === 'approve' || parts[1] === 'deny')) {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      const body = await readJson(req, maxBodyBytes);
      if (parts[1] === 'approve') {
        const view = await service.approve(id, who, optionalString(body, 'comment'));
        return sendJson(res, 200, view);
      }
      const reason = optionalString(body, 'reason');
      if (reason === undefined || reason.trim() === '') throw new SluiceError('SLUICE_BAD_REQUEST', 'a denial needs a "reason"');
      const view = await service.deny(id, who, reason);
      return sendJson(res, 200, view);
    }
    throw new SluiceError('SLUICE_APPROVAL_NOT_FOUND', `no route for ${path.slice(0, 200)}`);
  };

  return apiHandler(handle);
}
