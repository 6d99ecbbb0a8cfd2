export { startAuditStreams } from './start-streams.js';
export type { AuditStreams, AuditStreamDeps } from './start-streams.js';
export { STREAM_DEFAULTS } from './audit-streamer.js';
export type { StreamTuning } from './audit-streamer.js';
export { backoffDelay } from './backoff.js';
export type { BackoffPolicy } from './backoff.js';
export { formatSyslogMessage, octetCountedFrame, MAX_UDP_MESSAGE_BYTES } from './syslog-frame.js';
