export { loadConfigFile, parseConfig, defaultConfigPath, isLoopbackHost, DEFAULTS } from './load-config.js';
export type { SluiceConfig, ResolvedIssuer, ResolvedRemoteIssuer, ResolvedLocalIssuer, ResolvedConnection, PostgresUpstream, LoadOptions } from './load-config.js';
export { Secret, resolveSecret, isSecretReference } from './secret.js';
export { parseDuration, formatDuration } from './duration.js';
export type { RawConfig, RawConnection, RawRule, RawMask } from './schema.js';
