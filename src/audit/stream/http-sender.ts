/**
 * HTTP transport: one POST per batch. JSON Lines go as `application/x-ndjson`, OCSF as one JSON
 * array (`application/json`), CEF as newline-separated text. Only a 2xx acknowledges the batch.
 */
import type { ExportFormat } from '../export/export-records.js';
import type { HttpDestination } from './destinations.js';
import { DeliveryError, describeError, withTimeout, type Sender, type StreamBatch } from './sender.js';

export interface HttpSenderOptions {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
}

const CONTENT_TYPE: Readonly<Record<ExportFormat, string>> = {
  jsonl: 'application/x-ndjson',
  ocsf: 'application/json',
  cef: 'text/plain; charset=utf-8',
};

const HTTP_PAYLOAD_TOO_LARGE = 413;

export function encodeHttpBody(format: ExportFormat, lines: readonly string[]): string {
  switch (format) {
    case 'jsonl':
    case 'cef':
      return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
    case 'ocsf':
      // Each line is already one JSON object, so the array is assembled without reparsing.
      return `[${lines.join(',')}]`;
    default: {
      const never: never = format;
      throw new TypeError(`unknown stream format ${String(never)}`);
    }
  }
}

export function createHttpSender(dest: HttpDestination, options: HttpSenderOptions): Sender {
  const target = dest.url.href;
  return {
    async send(batch: StreamBatch, signal: AbortSignal): Promise<void> {
      const headers: Record<string, string> = { 'content-type': CONTENT_TYPE[dest.format], 'user-agent': 'sluice-audit-stream' };
      // Configured headers win (a collector may want its own content type); revealed only here.
      for (const [name, value] of dest.headers) headers[name] = value.reveal();
      let res: Response;
      try {
        res = await options.fetch(target, {
          method: 'POST',
          headers,
          body: encodeHttpBody(dest.format, batch.lines),
          // A redirect would re-send records, and maybe the auth header, somewhere not configured.
          redirect: 'manual',
          signal: withTimeout(signal, options.timeoutMs),
        });
      } catch (err) {
        throw new DeliveryError('failed', describeError(err), { cause: err });
      }
      // The body is not needed; cancelling it frees the connection for the next batch.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return;
      throw new DeliveryError(res.status === HTTP_PAYLOAD_TOO_LARGE ? 'too_large' : 'failed', `HTTP ${res.status}`);
    },
    async close(): Promise<void> {
      // fetch keeps no per-destination state.
    },
  };
}
