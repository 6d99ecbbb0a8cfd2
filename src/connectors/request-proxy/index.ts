/**
 * The request-proxy kit shared by the HTTP-based engines (HTTP and Kubernetes): authenticate,
 * decide, hold, record, forward with the injected credential, and mask the response.
 */
export { HTTP_DEFAULTS, resolveDecide, defaultPrefix, connectionLimits, rulesRead, hasRequestBody, bodyFingerprint } from './context.js';
export type { RequestEngineContext, DecideRequest } from './context.js';
export { clipPreview, createProxy, readBearer, sourceOf, relativeTarget } from './proxy.js';
export type { Proxy, ProxyOptions, ProxyProtocol, Described, BodyPlan, Admitted } from './proxy.js';
export { createUpstream, MIN_SCRUB_LENGTH } from './upstream.js';
export type { Upstream, RequestConnection } from './upstream.js';
export { createScrubber, CREDENTIAL_MARK } from './scrub.js';
export type { Scrubber } from './scrub.js';
export { createSessionCache } from './session-cache.js';
export type { SessionCache, SessionCacheOptions, SessionRequest } from './session-cache.js';
export { createApprovalHolder } from './approval-hold.js';
export type { ApprovalHolder, HoldInput, HoldResult } from './approval-hold.js';
export { stripHopByHop, connectionTokens, HOP_BY_HOP } from './hop-by-hop.js';
export { byteLimit, maskLines } from './body-streams.js';
export { contentKind, csvDelimiter, mediaType } from './content-kind.js';
export { httpBodyPlan } from './body-plan.js';
export type { ContentKind } from './content-kind.js';
export { offeredProtocols, isSpdyUpgrade, isWebSocketUpgrade, bridgeUpgrade, connectUpstream, createAcceptor, createStreamRecorder, createUpgradeHandler, toBuffer, validCloseCode } from './websocket.js';
export type { Acceptor, BridgeHooks, StartInput, StreamRecorder, UpgradeOptions, UpstreamSocket } from './websocket.js';
