/**
 * The web console: a reviewer's and an auditor's page on the gateway's HTTP listener, at /console/.
 *
 * It is three static files (console/index.html, app.js, app.css: no build step, no framework, no
 * third-party script) that call the same REST APIs as the CLI with the user's own bearer token:
 * approvals (approve, deny) and the audit log's sessions and timelines. The page holds no
 * authority of its own; every decision is the API's.
 *
 * Everything it shows (statement text, claims, reasons, result previews) was written by an agent
 * or an upstream, so the page is built for hostile content: text only ever becomes DOM text nodes,
 * never markup, and a strict Content-Security-Policy (scripts and styles from this origin only, no
 * inline script, no framing, connections only to this origin) stands behind that. The token is
 * kept in the tab's sessionStorage and sent as a header, never as a cookie, so no other site can
 * make the browser act with it.
 *
 * GET /api/v1/me tells the page who the token is and what it may do here (decided by the server,
 * after claim→role mapping), so it can offer the right views.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceError } from '../errors.js';
import type { Identity } from '../pipeline/types.js';
import { apiHandler, bearerToken, methodNotAllowed, sendJson, sendProblem, type HttpHandler } from './http-server.js';

export const CONSOLE_PREFIX = '/console';
export const ME_API_PATH = '/api/v1/me';

const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** Sent with every console response, errors included. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** The assets, read once at start: a missing file is a broken install, found before anything listens. */
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [path, a] of Object.entries(ASSETS)) {
    out.set(path, { body: readFileSync(new URL(`./console/${a.file}`, import.meta.url)), type: a.type });
  }
  return out;
}

export function createConsole(): HttpHandler {
  const assets = loadAssets();
  return (req: IncomingMessage, res: ServerResponse, path: string): void => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD');
    if (path === CONSOLE_PREFIX) {
      res.writeHead(308, { ...CONSOLE_HEADERS, location: `${CONSOLE_PREFIX}/`, 'content-length': 0 });
      res.end();
      return;
    }
    const asset = assets.get(path.slice(CONSOLE_PREFIX.length));
    if (asset === undefined) {
      for (const [k, v] of Object.entries(CONSOLE_HEADERS)) res.setHeader(k, v);
      return sendProblem(res, new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no console page ${path.slice(0, 200)}`));
    }
    res.writeHead(200, { ...CONSOLE_HEADERS, 'content-type': asset.type, 'content-length': asset.body.length });
    res.end(method === 'HEAD' ? undefined : asset.body);
  };
}

export interface MeDeps {
  readonly authenticate: (token: string) => Promise<Identity>;
  /** Undefined when no role may approve: the approvals API is not mounted. */
  readonly isReviewer?: (identity: Identity) => boolean;
  /** Undefined when no role is an auditor: the sessions API is not mounted. */
  readonly auditorRoles?: ReadonlySet<string>;
  readonly maxTokenBytes?: number;
}

/** `GET /api/v1/me`: the caller's identity as the gateway sees it, and which APIs it may use. */
export function createMeApi(deps: MeDeps): HttpHandler {
  const maxTokenBytes = deps.maxTokenBytes ?? 16 * 1024;
  return apiHandler(async (req, res, path) => {
    const who = await deps.authenticate(bearerToken(req, maxTokenBytes));
    if (path !== ME_API_PATH) throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `no route for ${path.slice(0, 200)}`);
    if ((req.method ?? 'GET') !== 'GET') return methodNotAllowed(res, 'GET');
    sendJson(res, 200, {
      issuer: who.issuer,
      subject: who.subject,
      roles: who.roles,
      ...(who.model !== undefined ? { model: who.model } : {}),
      ...(who.sponsor !== undefined ? { sponsor: who.sponsor } : {}),
      expiresAt: who.expiresAt * 1000,
      approvals: deps.isReviewer === undefined ? 'off' : deps.isReviewer(who) ? 'reviewer' : 'own',
      audit: deps.auditorRoles === undefined ? 'off' : who.roles.some((r) => deps.auditorRoles?.has(r) === true) ? 'auditor' : 'none',
    });
  });
}
