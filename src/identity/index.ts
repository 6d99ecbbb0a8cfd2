/** The identity stage: OIDC/JWT verification, the local issuer and claim→role mapping. */
export { createAuthenticator } from './authenticator.js';
export type { Authenticator, IdentityDeps } from './authenticator.js';
export { inspectToken } from './inspect-token.js';
export type { InspectResult } from './inspect-token.js';
export { mintLocalToken, LOCAL_ISSUER, DEFAULT_LOCAL_TTL_MS } from './local-issuer.js';
export type { MintOptions, MintDeps } from './local-issuer.js';
export { localKeyPath } from './local-key-file.js';
