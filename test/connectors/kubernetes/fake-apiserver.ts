/**
 * STAND-IN for a Kubernetes API server. No real API server can run in this environment, so the
 * Kubernetes connector tests run the real `kubectl` against Sluice, and Sluice against this
 * node:http server. It serves the shapes a v1.32 API server returns for what kubectl asks:
 *
 * - discovery: `/version`, `/api` (APIVersions), `/apis` (APIGroupList), `/api/v1` and
 *   `/apis/apps/v1` (APIResourceList) — legacy (unaggregated) discovery, which kubectl falls back
 *   to when the server does not answer `as=APIGroupDiscoveryList`;
 * - OpenAPI v3 (`/openapi/v3` and one document per group/version, reached by its
 *   `serverRelativeURL` with a `hash`), holding only what kubectl reads from it: each resource's
 *   PATCH operation with `x-kubernetes-group-version-kind` and the `fieldValidation` query
 *   parameter, from which `kubectl apply` learns that the server validates fields itself;
 *   `/openapi/v2` answers 404 (kubectl needs it only for servers without v3);
 * - server-side field validation: `fieldValidation=Strict` on a create or update refuses unknown
 *   top-level fields with the API server's `strict decoding error` BadRequest;
 * - namespaced CRUD for pods, secrets, configmaps and events (get, list, create, update, JSON and
 *   strategic merge patch treated as merge patch for maps, delete), `fieldSelector=metadata.name=`
 *   filtering, `metav1.Status` errors (`NotFound`, `AlreadyExists`, `Unauthorized`);
 * - `application/json;as=Table;v=v1;g=meta.k8s.io` Table output with `PartialObjectMetadata` rows
 *   (or full objects with `includeObject=Object`);
 * - watches (`?watch=` true as Go's ParseBool reads it: `1`, `t`, `true`, `True`, …): newline-delimited `{"type","object"}` events, ADDED for existing
 *   objects when no resourceVersion is given, then live events;
 * - `pods/log` (text/plain, `follow=true` streams lines as they are "written");
 * - `pods/exec` over WebSocket with the channel protocol (`v5.channel.k8s.io` … `channel.k8s.io`):
 *   stdout on channel 1, stderr 2, a `Status` on channel 3 at exit, stdin on 0, v5 close frames
 *   (255, channel); with `base64.channel.k8s.io`, text frames of an ASCII channel digit and
 *   base64. Commands: `cat` (echo stdin until closed), `cat PATH` (a stand-in file in 5-byte
 *   frames), `env`, `tar cf - PATH` (a ustar archive
 *   of a stand-in file, for `kubectl cp`), anything else echoes argv;
 * - `pods/portforward` over WebSocket tunnelling SPDY/3.1 (`SPDY/3.1+portforward.k8s.io`,
 *   fake-portforward.ts), the pod port being an echo service;
 * - the `services/<name>/proxy/<path>` subresource, which a real API server relays to the
 *   service: here the service's own answers are canned (a `.env` file as
 *   `application/octet-stream`, a CSV report, JSON metrics).
 *
 * It requires the bearer token Sluice injects, and records every request for the tests.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { PORT_FORWARD_PROTOCOL, servePortForward, type PortForwardLog } from './fake-portforward.js';

export interface FakeApiServer {
  readonly url: string;
  readonly requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders; upgrade?: boolean }>;
  /** What port-forward tunnels carried. */
  readonly portForward: PortForwardLog;
  /** Objects by `resource/namespace/name`. */
  readonly store: Map<string, Record<string, unknown>>;
  put(resource: string, obj: Record<string, unknown>): void;
  close(): Promise<void>;
}

type Obj = Record<string, unknown>;

const KINDS: Readonly<Record<string, { kind: string; list: string; group: string; version: string; namespaced: boolean; short?: string[] }>> = {
  pods: { kind: 'Pod', list: 'PodList', group: '', version: 'v1', namespaced: true, short: ['po'] },
  secrets: { kind: 'Secret', list: 'SecretList', group: '', version: 'v1', namespaced: true },
  configmaps: { kind: 'ConfigMap', list: 'ConfigMapList', group: '', version: 'v1', namespaced: true, short: ['cm'] },
  events: { kind: 'Event', list: 'EventList', group: '', version: 'v1', namespaced: true, short: ['ev'] },
  namespaces: { kind: 'Namespace', list: 'NamespaceList', group: '', version: 'v1', namespaced: false, short: ['ns'] },
  deployments: { kind: 'Deployment', list: 'DeploymentList', group: 'apps', version: 'v1', namespaced: true, short: ['deploy'] },
};

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const GROUP_VERSIONS = [
  { path: 'api/v1', group: '' },
  { path: 'apis/apps/v1', group: 'apps' },
];
const OPENAPI_HASH = 'C0FFEE5EED0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF012345C0FFEE5EED0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF012345';

/** The OpenAPI v3 document of one group/version, cut down to each resource's PATCH operation. */
function openApiV3(group: string): Obj {
  const paths: Obj = {};
  for (const [name, k] of Object.entries(KINDS)) {
    if (k.group !== group) continue;
    const base = group === '' ? '/api/v1' : `/apis/${group}/v1`;
    paths[`${base}${k.namespaced ? '/namespaces/{namespace}' : ''}/${name}/{name}`] = {
      patch: {
        description: `partially update the specified ${k.kind}`,
        operationId: `patch${k.namespaced ? 'Namespaced' : ''}${k.kind}`,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group, version: 'v1', kind: k.kind },
        parameters: [
          { name: 'dryRun', in: 'query', description: 'When present, indicates that modifications should not be persisted.', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldValidation', in: 'query', description: 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.', schema: { type: 'string', uniqueItems: true } },
        ],
      },
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.4' }, paths };
}

/** Files in the stand-in pod's filesystem, for `tar cf -` (kubectl cp). */
const POD_FILES: Readonly<Record<string, string>> = {
  '/etc/app.conf': 'mode=prod\nlevel=info\n',
  '/var/log/app.log': 'login by ada@example.com\nready\n',
  '/srv/payments.csv': 'id,card,owner\n1,4111 1111 1111 1111,ada@example.com\n2,5500-0000-0000-0004,alan@example.org\n',
  '/etc/tls/key.pem': '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n-----END PRIVATE KEY-----\n',
};

/** One regular file as a POSIX ustar archive (header, data padded to 512, two zero blocks), as GNU tar writes it. */
function ustar(name: string, data: Buffer): Buffer {
  const h = Buffer.alloc(512);
  const field = (value: string, offset: number, length: number): void => void h.write(value, offset, length, 'ascii');
  const octal = (n: number, length: number): string => `${n.toString(8).padStart(length - 1, '0')}\0`;
  field(name, 0, 100);
  field(octal(0o644, 8), 100, 8);
  field(octal(0, 8), 108, 8);
  field(octal(0, 8), 116, 8);
  field(octal(data.length, 12), 124, 12);
  field(octal(1_735_689_600, 12), 136, 12);
  field('        ', 148, 8);
  field('0', 156, 1);
  field('ustar\0' + '00', 257, 8);
  field('root', 265, 32);
  field('root', 297, 32);
  let sum = 0;
  for (const b of h) sum += b;
  field(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad, Buffer.alloc(1024)]);
}

const TOP_LEVEL_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status', 'data', 'stringData', 'binaryData', 'type', 'immutable']);

function unknownField(obj: Obj): string | undefined {
  return Object.keys(obj).find((f) => !TOP_LEVEL_FIELDS.has(f));
}

function strictError(kind: string, field: string): Obj {
  return status(400, 'BadRequest', `${kind} in version "v1" cannot be handled as a ${kind}: strict decoding error: unknown field "${field}"`);
}

function resourceList(groupVersion: string, group: string): Obj {
  const resources: Obj[] = [];
  for (const [name, k] of Object.entries(KINDS)) {
    if (k.group !== group) continue;
    resources.push({ name, singularName: k.kind.toLowerCase(), namespaced: k.namespaced, kind: k.kind, verbs: VERBS, ...(k.short !== undefined ? { shortNames: k.short } : {}), ...(name === 'pods' || name === 'deployments' ? { categories: ['all'] } : {}), storageVersionHash: 'AAAAAAAAAAA=' });
    if (name === 'pods') {
      resources.push({ name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] });
      resources.push({ name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] });
      resources.push({ name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] });
      resources.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
      resources.push({ name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}

function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details !== undefined ? { details } : {}), code };
}

function age(obj: Obj): string {
  const ts = Date.parse(String((obj.metadata as Obj | undefined)?.creationTimestamp ?? ''));
  const s = Number.isFinite(ts) ? Math.max(0, Math.round((Date.now() - ts) / 1000)) : 0;
  return `${s}s`;
}

function tableFor(resource: string, items: Obj[], includeObject: string, resourceVersion: string): Obj {
  const col = (name: string, type = 'string', format = '') => ({ name, type, format, description: name, priority: 0 });
  let columns: Obj[];
  let cells: (o: Obj) => unknown[];
  switch (resource) {
    case 'pods':
      columns = [col('Name', 'string', 'name'), col('Ready'), col('Status'), col('Restarts', 'string'), col('Age')];
      cells = (o) => [(o.metadata as Obj).name, '1/1', ((o.status as Obj | undefined)?.phase as string) ?? 'Running', '0', age(o)];
      break;
    case 'secrets':
      columns = [col('Name', 'string', 'name'), col('Type'), col('Data', 'string'), col('Age')];
      cells = (o) => [(o.metadata as Obj).name, o.type ?? 'Opaque', Object.keys((o.data as Obj | undefined) ?? {}).length, age(o)];
      break;
    case 'configmaps':
      columns = [col('Name', 'string', 'name'), col('Data', 'string'), col('Age')];
      cells = (o) => [(o.metadata as Obj).name, Object.keys((o.data as Obj | undefined) ?? {}).length, age(o)];
      break;
    default:
      columns = [col('Name', 'string', 'name'), col('Age')];
      cells = (o) => [(o.metadata as Obj).name, age(o)];
  }
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: columns,
    rows: items.map((o) => ({
      cells: cells(o),
      object: includeObject === 'Object' ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

function merge(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Obj = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}

export async function startFakeApiServer(expectedToken: string): Promise<FakeApiServer> {
  const requests: FakeApiServer['requests'] = [];
  const store = new Map<string, Obj>();
  let rv = 100;
  const watchers = new Set<{ resource: string; namespace: string; name?: string; res: ServerResponse }>();

  const notify = (type: string, resource: string, obj: Obj): void => {
    const meta = obj.metadata as Obj;
    for (const w of watchers) {
      if (w.resource !== resource || (w.namespace !== '' && w.namespace !== meta.namespace) || (w.name !== undefined && w.name !== meta.name)) continue;
      w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
    }
  };
  const put = (resource: string, obj: Obj): void => {
    const meta = obj.metadata as Obj;
    const k = KINDS[resource];
    if (k === undefined) throw new Error(`unknown resource ${resource}`);
    rv += 1;
    const key = `${resource}/${String(meta.namespace ?? '')}/${String(meta.name)}`;
    const existed = store.has(key);
    const full: Obj = {
      kind: k.kind,
      apiVersion: k.group === '' ? k.version : `${k.group}/${k.version}`,
      ...obj,
      metadata: { uid: randomUUID(), creationTimestamp: new Date(Date.now() - 60_000).toISOString(), ...meta, resourceVersion: String(rv) },
    };
    store.set(key, full);
    notify(existed ? 'MODIFIED' : 'ADDED', resource, full);
  };

  const send = (res: ServerResponse, code: number, body: unknown, type = 'application/json'): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'audit-id': randomUUID() });
    res.end(text);
  };

  const readBody = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const q = url.searchParams;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.headers.authorization !== `Bearer ${expectedToken}`) {
      send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (path === '/version') return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.4', gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335', gitTreeState: 'clean', buildDate: '2025-04-22T16:03:52Z', goVersion: 'go1.23.6', compiler: 'gc', platform: 'linux/amd64' });
    if (path === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '10.0.0.1:6443' }] });
    if (path === '/apis') return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } }] });
    if (path === '/api/v1') return send(res, 200, resourceList('v1', ''));
    if (path === '/apis/apps/v1') return send(res, 200, resourceList('apps/v1', 'apps'));
    if (path === '/openapi/v3') return send(res, 200, { paths: Object.fromEntries(GROUP_VERSIONS.map((gv) => [gv.path, { serverRelativeURL: `/openapi/v3/${gv.path}?hash=${OPENAPI_HASH}` }])) });
    const gvDoc = GROUP_VERSIONS.find((gv) => path === `/openapi/v3/${gv.path}`);
    if (gvDoc !== undefined) return send(res, 200, openApiV3(gvDoc.group));
    if (path.startsWith('/openapi/')) return send(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');

    const proxied = /^\/api\/v1\/namespaces\/[^/]+\/services\/[^/]+\/proxy\/(.*)$/.exec(path);
    if (proxied !== null) {
      // What the service itself would answer; the API server passes its body and type through.
      switch (proxied[1]) {
        case 'config.env':
          return send(res, 200, 'LEVEL=info\nDATABASE_URL=postgres://app:Svc-Pw-2024@db:5432/app\nADMIN_EMAIL=ops@example.com\n', 'application/octet-stream');
        case 'report.csv':
          return send(res, 200, 'name,password,note\nada,hunter2-csv,card 4111 1111 1111 1111\n', 'text/csv');
        case 'metrics':
          return send(res, 200, { requests: 42, lastCaller: 'ada@example.com', token: 'svc-token-0123456789abcdef' });
        default:
          return send(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
      }
    }
    const m = /^\/(?:api\/v1|apis\/apps\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?$/.exec(path);
    if (m === null) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const namespace = m[1] ?? '';
    const resource = m[2] as string;
    const name = m[3];
    const sub = m[4];
    const kind = KINDS[resource];
    if (kind === undefined) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const key = `${resource}/${namespace}/${name ?? ''}`;
    const notFound = (): void => send(res, 404, status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource }));

    if (sub === 'log' && resource === 'pods') {
      if (!store.has(key)) return notFound();
      res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
      const lines = ['starting web server', 'connected as admin@example.com', 'card on file 4111 1111 1111 1111', 'ready'];
      if (q.get('follow') !== 'true') {
        res.end(lines.map((l) => `${l}\n`).join(''));
        return;
      }
      let i = 0;
      const tick = setInterval(() => {
        if (i < lines.length) res.write(`${lines[i++]}\n`);
        else {
          clearInterval(tick);
          res.end();
        }
      }, 40);
      res.on('close', () => clearInterval(tick));
      return;
    }
    if (sub !== undefined) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));

    const accept = String(req.headers.accept ?? '');
    switch (req.method) {
      case 'GET': {
        if (name !== undefined) {
          const obj = store.get(key);
          if (obj === undefined) return notFound();
          if (accept.includes('as=Table')) return send(res, 200, tableFor(resource, [obj], q.get('includeObject') ?? '', String(rv)));
          return send(res, 200, obj);
        }
        const selector = q.get('fieldSelector') ?? '';
        const byName = /metadata\.name==?([^,]+)/.exec(selector)?.[1];
        const items = [...store.entries()]
          .filter(([k]) => k.startsWith(`${resource}/${namespace}/`) || (namespace === '' && k.startsWith(`${resource}/`)))
          .map(([, v]) => v)
          .filter((o) => byName === undefined || (o.metadata as Obj).name === byName);
        // The API server reads `watch` with Go's strconv.ParseBool: the Python client sends `True`.
        const watch = q.get('watch');
        if (watch !== null && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(watch)) {
          res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
          res.flushHeaders();
          const w = { resource, namespace, ...(byName !== undefined ? { name: byName } : {}), res };
          watchers.add(w);
          const from = q.get('resourceVersion');
          if (from === null || from === '' || from === '0') for (const o of items) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
          const timeout = Number(q.get('timeoutSeconds') ?? '0');
          const t = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
          res.on('close', () => {
            watchers.delete(w);
            if (t !== undefined) clearTimeout(t);
          });
          return;
        }
        if (accept.includes('as=Table')) return send(res, 200, tableFor(resource, items, q.get('includeObject') ?? '', String(rv)));
        return send(res, 200, { kind: kind.list, apiVersion: kind.group === '' ? 'v1' : `${kind.group}/v1`, metadata: { resourceVersion: String(rv) }, items });
      }
      case 'POST': {
        const obj = JSON.parse(await readBody(req)) as Obj;
        if (q.get('fieldValidation') === 'Strict' && unknownField(obj) !== undefined) return send(res, 400, strictError(kind.kind, unknownField(obj) as string));
        const meta = (obj.metadata ?? {}) as Obj;
        const k = `${resource}/${namespace}/${String(meta.name)}`;
        if (store.has(k)) return send(res, 409, status(409, 'AlreadyExists', `${resource} "${String(meta.name)}" already exists`));
        if (q.get('dryRun') !== 'All') put(resource, { ...obj, metadata: { ...meta, namespace } });
        return send(res, 201, store.get(k) ?? obj);
      }
      case 'PUT': {
        if (!store.has(key)) return notFound();
        put(resource, JSON.parse(await readBody(req)) as Obj);
        return send(res, 200, store.get(key));
      }
      case 'PATCH': {
        const obj = store.get(key);
        if (obj === undefined) return notFound();
        const patch = JSON.parse(await readBody(req)) as unknown;
        const bad = q.get('fieldValidation') === 'Strict' && patch !== null && typeof patch === 'object' ? unknownField(patch as Obj) : undefined;
        if (bad !== undefined) return send(res, 400, strictError(kind.kind, bad));
        put(resource, merge(obj, patch) as Obj);
        return send(res, 200, store.get(key));
      }
      case 'DELETE': {
        const obj = store.get(key);
        if (obj === undefined) return notFound();
        store.delete(key);
        notify('DELETED', resource, obj);
        return send(res, 200, obj);
      }
      default:
        return send(res, 405, status(405, 'MethodNotAllowed', 'method not allowed'));
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, status(500, 'InternalError', String(err))));
  });

  // Server preference order, as in k8s.io/apiserver's remotecommand negotiation.
  const SUPPORTED = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];
  const wss = new WebSocketServer({
    noServer: true,
    // pods/portforward speaks only the SPDY tunnel; exec the channel protocols. The tunnel's name
    // is not an RFC 6455 token, which a Go API server takes but `ws` refuses: the upgrade handler
    // hands `ws` the offers with `/` as `%2F` and the choice is answered with its real name.
    handleProtocols: (offered: Set<string>, req: IncomingMessage) =>
      (req.url ?? '').split('?')[0]?.endsWith('/portforward') ? (offered.has(PORT_FORWARD_PROTOCOL.replace('/', '%2F')) ? PORT_FORWARD_PROTOCOL : false) : (SUPPORTED.find((p) => offered.has(p)) ?? false),
  });
  const portForward: PortForwardLog = { streams: [], received: 0 };
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, upgrade: true });
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|portforward)$/.exec(url.pathname);
    if (req.headers.authorization !== `Bearer ${expectedToken}`) {
      const body = JSON.stringify(status(401, 'Unauthorized', 'Unauthorized'));
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    if (m === null || !store.has(`pods/${m[1]}/${m[2]}`)) {
      const body = JSON.stringify(status(404, 'NotFound', 'pod not found'));
      socket.end(`HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    const offers = req.headers['sec-websocket-protocol'];
    if (typeof offers === 'string') req.headers['sec-websocket-protocol'] = offers.replaceAll('/', '%2F');
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => (m[3] === 'portforward' ? servePortForward(ws, portForward) : runExec(ws, url.searchParams.getAll('command'))));
  });

  const runExec = (ws: WebSocket, argv: string[]): void => {
    // base64.channel.k8s.io: text frames, an ASCII digit channel then base64; the rest: binary frames with a channel byte.
    const b64 = ws.protocol === 'base64.channel.k8s.io';
    const out = (ch: number, text: string | Buffer): void => (b64 ? ws.send(`${ch}${Buffer.from(text).toString('base64')}`) : ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(text)])));
    const exit = (): void => {
      out(3, JSON.stringify({ metadata: {}, status: 'Success' }));
      ws.close(1000);
    };
    const cmd = argv.join(' ');
    if (cmd === 'cat') {
      // Interactive: echoes stdin, so it answers only after the client has sent something.
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (b64 && !isBinary) {
          const text = data.toString('latin1');
          if (text[0] === '0') out(1, Buffer.from(text.slice(1), 'base64').toString());
          return;
        }
        const ch = data[0];
        if (ch === 0) out(1, data.subarray(1).toString());
        if (ch === 255 && data[1] === 0) exit();
      });
      return;
    }
    // A real container process starts milliseconds after the upgrade (apiserver → kubelet → CRI).
    // kubectl 1.32's WebSocket executor drops frames that arrive before it has created its streams
    // ("Unknown stream id 1, discarding message"), so an instant reply would race it.
    setTimeout(() => runCommand(argv, cmd, out, exit, ws), 20);
  };

  const runCommand = (argv: string[], cmd: string, out: (ch: number, text: string | Buffer) => void, exit: () => void, ws: WebSocket): void => {
    if (argv[0] === 'tar' && argv[1] === 'cf' && argv[2] === '-') {
      // `kubectl cp POD:PATH …` reads this archive from stdout; sent in 1 KiB frames like a real stream.
      const body = POD_FILES[argv[3] ?? ''];
      if (body === undefined) {
        out(2, `tar: ${argv[3] ?? ''}: Cannot stat: No such file or directory\n`);
        out(3, JSON.stringify({ metadata: {}, status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '2' }] }, message: 'command terminated with non-zero exit code: error executing command [tar cf -], exit code 2' }));
        ws.close(1000);
        return;
      }
      const tar = ustar((argv[3] as string).replace(/^\/+/, ''), Buffer.from(body));
      for (let i = 0; i < tar.length; i += 1024) ws.send(Buffer.concat([Buffer.from([1]), tar.subarray(i, i + 1024)]));
      exit();
      return;
    }
    if (argv[0] === 'cat' && argv.length === 2) {
      // A file read by a slow writer: stdout in 5-byte frames, so values straddle frames, as
      // they do when a container's writes and the kubelet's reads fall out of step.
      const body = Buffer.from(POD_FILES[argv[1] as string] ?? '');
      for (let i = 0; i < body.length; i += 5) out(1, body.subarray(i, i + 5));
      exit();
      return;
    }
    if (cmd === 'env') {
      out(1, 'HOME=/root\nDB_PASSWORD=hunter2\nAPI_KEY=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n');
      exit();
      return;
    }
    out(1, `${argv.join(' ')}\n`);
    exit();
  };

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    portForward,
    store,
    put,
    close: () =>
      new Promise<void>((r) => {
        for (const w of watchers) w.res.destroy();
        for (const c of wss.clients) c.terminate();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
