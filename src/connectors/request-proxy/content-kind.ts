/**
 * How a response body is masked, by its media type. Structured and textual types are masked;
 * media that cannot hold readable text passes through byte for byte. Anything unrecognised is
 * treated as text (fail closed), and passes unchanged only if it turns out not to be UTF-8.
 */
export type ContentKind = 'json' | 'json-lines' | 'event-stream' | 'text' | 'binary';

const JSON_LINES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/jsonlines', 'application/json-seq']);
const BINARY_EXACT = new Set([
  'application/octet-stream',
  'application/pdf',
  'application/zip',
  'application/gzip',
  'application/x-gzip',
  'application/x-tar',
  'application/x-7z-compressed',
  'application/wasm',
  'application/vnd.kubernetes.protobuf',
  'application/vnd.kubernetes.protobuf;stream=watch',
  'application/cbor',
  'application/protobuf',
  'application/x-protobuf',
  'application/grpc',
]);
const BINARY_TOP = new Set(['image', 'audio', 'video', 'font']);

/** The media type without parameters, lower-cased (`application/json`). */
export function mediaType(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * The delimiter of a CSV or TSV body, or undefined for other types. `text/csv` takes its
 * delimiter from the header line (`,`, `;` or tab): undefined inside the result means "sniff".
 */
export function csvDelimiter(contentType: string | undefined): { readonly delimiter: string | undefined } | undefined {
  const mt = mediaType(contentType);
  if (mt === 'text/tab-separated-values') return { delimiter: '\t' };
  if (mt === 'text/csv' || mt === 'application/csv' || mt === 'text/x-csv' || mt === 'text/comma-separated-values') return { delimiter: undefined };
  return undefined;
}

export function contentKind(contentType: string | undefined): ContentKind {
  const mt = mediaType(contentType);
  if (mt === 'application/json' || mt.endsWith('+json')) return 'json';
  if (JSON_LINES.has(mt)) return 'json-lines';
  if (mt === 'text/event-stream') return 'event-stream';
  if (BINARY_EXACT.has(mt)) return 'binary';
  const slash = mt.indexOf('/');
  if (slash > 0 && BINARY_TOP.has(mt.slice(0, slash))) return 'binary';
  return 'text';
}
