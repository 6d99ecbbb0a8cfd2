/**
 * The Kubernetes engine: the API server behind Sluice, at `pathPrefix` (default `/k8s/<name>`)
 * on the shared HTTP listener. A kubeconfig whose `server` is that URL and whose `token` is the
 * agent's OIDC token works with kubectl unchanged. Requests are decided on the attributes the API
 * server itself derives (policy/k8s/request-info.ts), Secrets are masked in every response
 * shape, watches and followed logs are masked per event/line, and exec/attach/port-forward
 * WebSocket streams are proxied and recorded.
 */
import type { Socket } from 'node:net';
import type { ResolvedConnection } from '../../config/index.js';
import { SluiceError } from '../../errors.js';
import { MaskStats } from '../../masking/index.js';
import { REVEAL_PROFILE } from '../../policy/index.js';
import { k8sAction, k8sObject, k8sPatchType, parseRequestInfo, readK8sObject, type K8sRequestInfo } from '../../policy/k8s/index.js';
import type { Engine } from '../engine.js';
import {
  clipPreview,
  connectionLimits,
  contentKind,
  httpBodyPlan,
  createApprovalHolder,
  createProxy,
  createScrubber,
  createSessionCache,
  createUpgradeHandler,
  createUpstream,
  defaultPrefix,
  isSpdyUpgrade,
  isWebSocketUpgrade,
  bodyFingerprint,
  hasRequestBody,
  mediaType,
  resolveDecide,
  rulesRead,
  type BodyPlan,
  type Described,
  type Proxy,
  type ProxyProtocol,
  type RequestConnection,
  type RequestEngineContext,
  type Upstream,
} from '../request-proxy/index.js';
import { narrowAccept } from './accept.js';
import { maskKubernetesValue } from './secrets.js';
import { sendStatus, writeStatusToSocket } from './status.js';
import { proxyStream } from './stream-proxy.js';

type KubernetesConnection = Extract<ResolvedConnection, { type: 'kubernetes' }>;

interface K8sDescribed extends Described {
  readonly info: K8sRequestInfo;
}

/** Pod subresources served as WebSocket streams. */
const STREAM_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/** Methods whose body is an object or a patch: create, update, patch. */
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export function createKubernetesEngine(ctx: RequestEngineContext): Engine {
  const conns = ctx.config.connections.filter((c): c is KubernetesConnection => c.type === 'kubernetes');
  const decide = conns.length > 0 ? resolveDecide(ctx) : () => ({ effect: 'deny' as const, rule: 'default-deny', reason: 'no connection' });
  if (conns.length > 0 && ctx.http === undefined) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `connections ${conns.map((c) => c.name).join(', ')} are Kubernetes connections: set listen.http`);
  }
  const sessions = createSessionCache(ctx.pipeline, { protocol: 'kubernetes', log: ctx.log });
  const holder = createApprovalHolder(ctx.approvals);
  const proxies: Proxy[] = [];
  const upstreams: Upstream[] = [];
  const streams = new Set<Socket>();

  for (const c of conns) {
    const where = `connections[${ctx.config.connections.indexOf(c)}]`;
    const upstream = createUpstream(ctx.config, c as RequestConnection, where);
    upstreams.push(upstream);
    const masker = ctx.maskerFor(c.name);
    const prefix = (c.pathPrefix ?? defaultPrefix('kubernetes', c.name)).replace(/\/+$/, '');
    const limits = connectionLimits(c, where);

    const readsObject = rulesRead(ctx.config, c.name, /\bk8s\s*\.\s*object\b/);
    const protocol: ProxyProtocol<K8sDescribed> = {
      protocol: 'kubernetes',
      // Objects are created and replaced whole: a masked Secret or env value must not be stored.
      guardsWriteBack: (method) => method === 'POST' || method === 'PUT' || method === 'PATCH',
      // Where rules read `k8s.object`, a write's body is read before deciding.
      needsBody: (req) => readsObject && WRITE_METHODS.has((req.method ?? '').toUpperCase()) && hasRequestBody(req),
      describe(req, target, body) {
        const method = (req.method ?? 'GET').toUpperCase();
        const info = parseRequestInfo(method, target.path, target.query);
        const text = `${method} ${target.path}${target.rawQuery === '' ? '' : `?${target.rawQuery}`}`;
        const contentType = req.headers['content-type'];
        const object = body !== undefined ? readK8sObject(body, contentType) : undefined;
        const patchType = k8sPatchType(method, contentType);
        // A grant window covers only the same object: its digest is in the fingerprint.
        const digest = object?.value !== undefined && body !== undefined ? bodyFingerprint(body) : '';
        return {
          action: k8sAction(c.name, info, text, { ...(patchType !== undefined ? { patchType } : {}), ...(object?.value !== undefined ? { object: object.value } : {}) }),
          fingerprint: `${info.verb} ${k8sObject(info)}${digest}`,
          info,
          ...(object?.error !== undefined ? { bodyError: object.error } : {}),
        };
      },
      // A held write's manifest, masked as a response would be: a Secret's values never reach a reviewer.
      previewBody(body, req, described) {
        const object = readK8sObject(body, req.headers['content-type']);
        if (object.value === undefined) return undefined;
        const masked = maskKubernetesValue(object.value, { masker, secretsRequest: described.info.resource === 'secrets', reveal: false }, new MaskStats());
        return clipPreview(JSON.stringify(masked));
      },
      prepareHeaders(headers, described) {
        for (const name of Object.keys(headers)) {
          // Impersonation would make the API server authorise as someone the policy never saw.
          if (name.startsWith('impersonate-')) throw new SluiceError('SLUICE_POLICY_DENIED', 'impersonation headers are not allowed through Sluice');
        }
        if (described.info.subresource !== 'proxy' && described.info.verb !== 'proxy') headers.accept = narrowAccept(typeof headers.accept === 'string' ? headers.accept : undefined);
      },
      planBody(upRes, described, decision): BodyPlan {
        const { info } = described;
        // Traffic to a pod or service through the API server is an ordinary HTTP body.
        if (info.subresource === 'proxy' || info.verb === 'proxy') return httpBodyPlan(upRes, masker);
        const kind = contentKind(upRes.headers['content-type']);
        const reveal = decision.maskProfile === REVEAL_PROFILE;
        const options = { masker, secretsRequest: info.resource === 'secrets', reveal };
        const mask = (v: unknown, stats: import('../../masking/index.js').MaskStats): unknown => maskKubernetesValue(v, options, stats);
        const text = (t: string, stats: import('../../masking/index.js').MaskStats): string => masker.maskText(t, stats);
        switch (kind) {
          case 'json':
            // A watch is a stream of JSON events, one per line (apiserver's streaming JSON encoder).
            return info.verb === 'watch' ? { mode: 'json-lines', mask, text } : { mode: 'json', mask, text };
          case 'json-lines':
            return { mode: 'json-lines', mask, text };
          case 'text':
          case 'event-stream':
            return { mode: 'text', text, stream: true };
          case 'binary':
            return { mode: 'refuse', reason: `the API server answered ${mediaType(upRes.headers['content-type'])}, which Sluice cannot mask; only JSON is passed` };
          default: {
            const never: never = kind;
            return { mode: 'refuse', reason: `unknown content kind ${String(never)}` };
          }
        }
      },
      sendError: sendStatus,
      sendPending(res, described, approvalId, url) {
        sendStatus(
          res,
          new SluiceError('SLUICE_APPROVAL_REQUIRED', `${described.action.text} is waiting for approval ${approvalId} (${url}); run the same command again once it is approved`),
          approvalId,
        );
      },
    };

    const proxy = createProxy<K8sDescribed>({
      connection: c.name,
      prefix,
      pipeline: ctx.pipeline,
      decide,
      sessions,
      upstream,
      scrubber: createScrubber(upstream.secrets),
      holder,
      protocol,
      ...limits,
      maskText: (t, stats) => masker.maskText(t, stats),
      log: ctx.log,
    });
    proxies.push(proxy);

    const upgrade = createUpgradeHandler<K8sDescribed>({
      proxy,
      pipeline: ctx.pipeline,
      holder,
      approvalWaitMs: limits.approvalWaitMs,
      maskText: (t) => masker.maskText(t),
      log: (line) => ctx.log(`kubernetes ${c.name}: ${line}`),
      streams,
      check(req, a) {
        const { info } = a.described;
        if (isSpdyUpgrade(req) || !isWebSocketUpgrade(req)) {
          return new SluiceError(
            'SLUICE_PROTOCOL_VIOLATION',
            `Sluice proxies exec, attach and port-forward over WebSocket (v5.channel.k8s.io and older) only; the ${String(req.headers.upgrade ?? 'unknown')} upgrade is refused. Use kubectl 1.31 or later and leave KUBECTL_REMOTE_COMMAND_WEBSOCKETS / KUBECTL_PORT_FORWARD_WEBSOCKETS enabled`,
          );
        }
        if (!(info.isResourceRequest && info.resource === 'pods' && STREAM_SUBRESOURCES.has(info.subresource)) && info.verb !== 'proxy' && info.subresource !== 'proxy') {
          return new SluiceError('SLUICE_PROTOCOL_VIOLATION', `WebSocket upgrades are proxied for pods/exec, pods/attach, pods/portforward and proxy only, not ${k8sObject(info)}`);
        }
        return undefined;
      },
      reviewFacts: (a) => ({ kind: 'k8s', verb: a.described.info.verb, objects: a.described.action.objects }),
      pending: (a, id, url) => new SluiceError('SLUICE_APPROVAL_REQUIRED', `${a.described.action.text} is waiting for approval ${id} (${url}); run the same command again once it is approved`),
      refuse: writeStatusToSocket,
      start(s) {
        proxyStream({
          req: s.req,
          socket: s.socket,
          head: s.head,
          session: s.admitted.session,
          pathAndQuery: s.pathAndQuery,
          protocols: s.protocols,
          upstream,
          pipeline: ctx.pipeline,
          masker,
          command: s.command,
          record: s.admitted.described.info.subresource !== 'portforward',
          ...(s.approvalId !== undefined ? { approvalId: s.approvalId } : {}),
          log: ctx.log,
        });
      },
    });

    ctx.http?.mount(prefix, (req, res, path) => proxy.handle(req, res, path), upgrade);
  }

  return {
    protocol: 'kubernetes',
    listen() {
      return Promise.reject(new TypeError('the Kubernetes engine is served by the shared HTTP listener (listen.http); it has no listener of its own'));
    },
    async close(graceMs = 5000) {
      await Promise.all(proxies.map((p) => p.drain(graceMs)));
      for (const s of streams) s.destroy();
      await sessions.close();
      for (const u of upstreams) u.destroy();
    },
    get sessions() {
      return proxies.reduce((n, p) => n + p.inFlight, 0) + streams.size;
    },
  };
}
