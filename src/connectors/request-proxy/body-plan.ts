/**
 * How an ordinary HTTP response body is masked, by its content type: JSON by its fields and values,
 * JSON lines and server-sent events as they stream, CSV and TSV by the columns their header names,
 * other text line by line, `application/octet-stream` as text when it turns out to be text, and
 * other binary media untouched. The HTTP connector masks every response this way; the Kubernetes
 * connector masks this way what the API server only relays (the `proxy` subresource: a pod's or a
 * service's own HTTP answer).
 */
import type { IncomingMessage } from 'node:http';
import { CsvMasker, type Masker, type MaskStats } from '../../masking/index.js';
import { contentKind, csvDelimiter, mediaType } from './content-kind.js';
import type { BodyPlan } from './proxy.js';

export function httpBodyPlan(upRes: IncomingMessage, masker: Masker): BodyPlan {
  const kind = contentKind(upRes.headers['content-type']);
  const text = (t: string, stats: MaskStats): string => masker.maskText(t, stats);
  const json = (v: unknown, stats: MaskStats): unknown => masker.maskJson(v, stats);
  switch (kind) {
    case 'json':
      return { mode: 'json', mask: json, text };
    case 'json-lines':
      return { mode: 'json-lines', mask: json, text };
    case 'event-stream':
      return { mode: 'events', mask: json, text };
    case 'text': {
      // CSV/TSV: the header names the columns; rules and secret-like names apply under it.
      const csv = csvDelimiter(upRes.headers['content-type']);
      return csv === undefined ? { mode: 'text', text, stream: true } : { mode: 'text', text, stream: true, records: () => new CsvMasker(masker, csv.delimiter) };
    }
    case 'binary':
      // A file served as plain bytes (an `.env` from an object store) is masked when it is text.
      return mediaType(upRes.headers['content-type']) === 'application/octet-stream' ? { mode: 'binary', textIfReadable: text } : { mode: 'binary' };
    default: {
      const never: never = kind;
      return { mode: 'refuse', reason: `unknown content kind ${String(never)}` };
    }
  }
}
