/**
 * Sluice masks JSON. Protobuf, CBOR and YAML responses would carry Secret values past it, so the
 * Accept header is narrowed to JSON forms before the request goes upstream (kubectl and client-go
 * accept JSON from every server), and a non-JSON answer is refused (see engine.ts).
 */
export function narrowAccept(accept: string | undefined): string {
  if (accept === undefined || accept.trim() === '') return 'application/json';
  const kept: string[] = [];
  for (const part of accept.split(',')) {
    const entry = part.trim();
    const mt = entry.split(';')[0]?.trim().toLowerCase() ?? '';
    if (mt === 'application/json' || mt.endsWith('+json')) kept.push(entry);
    else if (mt === '*/*' || mt === 'application/*') kept.push('application/json');
  }
  return kept.length === 0 ? 'application/json' : [...new Set(kept)].join(', ');
}
