/** Messages between the gateway and its audit reader thread (reader.ts, reader-thread.ts). */
import type { SessionFilter } from '../store/types.js';

export interface ReaderThreadData {
  readonly path: string;
}

export type ReaderQuery = { readonly op: 'list'; readonly filter: SessionFilter } | { readonly op: 'timeline'; readonly sessionId: string; readonly limit: number };

export type ReaderRequest = ReaderQuery & { readonly id: number };

export type ReaderReply = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: { readonly code: string; readonly message: string } };
