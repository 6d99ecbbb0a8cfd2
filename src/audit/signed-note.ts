/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and the checkpoint body they
 * carry (https://c2sp.org/tlog-checkpoint). The formats are Go's `golang.org/x/mod/sumdb/note`, so
 * checkpoints can be checked with existing tooling, not only with Sluice.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/** Signature type byte for Ed25519 in key hashes and encoded keys. */
const ALG_ED25519 = 0x01;
const EM_DASH = '\u2014';
// DER prefixes that wrap a raw 32-byte Ed25519 seed / public key (RFC 8410).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Buffer;
}

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
  readonly extensions: readonly string[];
}

export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoteError';
  }
}

/** Split on the first n-1 "+" only: the last field is base64, which may itself contain "+". */
function splitPlus(text: string, n: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (out.length < n - 1) {
    const i = rest.indexOf('+');
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + 1);
  }
  out.push(rest);
  return out;
}

function checkKeyName(name: string): void {
  // A name is non-empty and has no Unicode spaces or "+" (signed-note §Signatures).
  if (name.length === 0 || /[\s+]/u.test(name)) throw new NoteError(`invalid key name ${JSON.stringify(name)}`);
}

/** key ID = first 4 bytes of SHA-256(name || "\n" || 0x01 || public key), big-endian. */
export function computeKeyId(name: string, publicKey: Uint8Array): number {
  const h = createHash('sha256').update(name).update('\n').update(Buffer.from([ALG_ED25519])).update(publicKey).digest();
  return h.readUInt32BE(0);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export function generateSigner(name: string): NoteSigner {
  checkKeyName(name);
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  return signerFromSeed(name, seed);
}

function signerFromSeed(name: string, seed: Uint8Array): NoteSigner {
  if (seed.length !== 32) throw new NoteError('Ed25519 seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  return { name, keyId: computeKeyId(name, publicKey), publicKey: Buffer.from(publicKey), privateKey };
}

/** `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`, as `note.GenerateKey` writes it. */
export function encodeSignerKey(signer: NoteSigner): string {
  const seed = signer.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  return `PRIVATE+KEY+${signer.name}+${hex8(signer.keyId)}+${Buffer.concat([Buffer.from([ALG_ED25519]), seed]).toString('base64')}`;
}

export function parseSignerKey(text: string): NoteSigner {
  const parts = splitPlus(text.trim(), 5);
  if (parts.length !== 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw new NoteError('not a signer key (expected PRIVATE+KEY+name+id+key)');
  const [, , name, id, b64] = parts as [string, string, string, string, string];
  checkKeyName(name);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw new NoteError('signer key is not an Ed25519 key');
  const signer = signerFromSeed(name, raw.subarray(1));
  if (hex8(signer.keyId) !== id.toLowerCase()) throw new NoteError('signer key id does not match its key');
  return signer;
}

/** `<name>+<hex id>+<base64(0x01 || public key)>`. */
export function encodeVerifierKey(v: NoteVerifier): string {
  return `${v.name}+${hex8(v.keyId)}+${Buffer.concat([Buffer.from([ALG_ED25519]), v.publicKey]).toString('base64')}`;
}

export function parseVerifierKey(text: string): NoteVerifier {
  const parts = splitPlus(text.trim(), 3);
  if (parts.length !== 3) throw new NoteError('not a verifier key (expected name+id+key)');
  const [name, id, b64] = parts as [string, string, string];
  checkKeyName(name);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw new NoteError('verifier key is not an Ed25519 key');
  const publicKey = Buffer.from(raw.subarray(1));
  const keyId = computeKeyId(name, publicKey);
  if (hex8(keyId) !== id.toLowerCase()) throw new NoteError('verifier key id does not match its key');
  return { name, keyId, publicKey };
}

function checkText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw new NoteError('note text must be non-empty and end with a newline');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) throw new NoteError('note text contains control characters');
  if (text.includes('\n\n')) throw new NoteError('note text contains a blank line');
}

export function signNote(text: string, signer: NoteSigner): string {
  checkText(text);
  const sig = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  const idBytes = Buffer.alloc(4);
  idBytes.writeUInt32BE(signer.keyId, 0);
  return `${text}\n${EM_DASH} ${signer.name} ${Buffer.concat([idBytes, sig]).toString('base64')}\n`;
}

export interface OpenedNote {
  readonly text: string;
  /** Names of known keys whose signature verified. */
  readonly verifiedBy: readonly string[];
}

/** Split a note, verify every signature line from a known key; throws unless at least one verifies. */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('malformed note: no signature block');
  const text = note.slice(0, split + 1);
  checkText(text);
  const sigBlock = note.slice(split + 2);
  if (!sigBlock.endsWith('\n')) throw new NoteError('malformed note: signature block must end with a newline');
  const verifiedBy: string[] = [];
  for (const line of sigBlock.slice(0, -1).split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (m === null) throw new NoteError('malformed note: bad signature line');
    const [, name, b64] = m as unknown as [string, string, string];
    const raw = Buffer.from(b64, 'base64');
    if (raw.length < 5) throw new NoteError('malformed note: short signature');
    const keyId = raw.readUInt32BE(0);
    const v = verifiers.find((k) => k.name === name && k.keyId === keyId);
    if (v === undefined) continue; // signatures from unknown keys are ignored (signed-note §Verifying)
    const pub = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, v.publicKey]), format: 'der', type: 'spki' });
    if (!verify(null, Buffer.from(text, 'utf8'), pub, raw.subarray(4))) throw new NoteError(`invalid signature by ${name}`);
    verifiedBy.push(name);
  }
  if (verifiedBy.length === 0) throw new NoteError('no signature from a known key');
  return { text, verifiedBy };
}

export function formatCheckpoint(cp: Checkpoint): string {
  if (cp.origin.length === 0 || /\n/.test(cp.origin)) throw new NoteError('invalid origin');
  return [cp.origin, String(cp.size), cp.root.toString('base64'), ...cp.extensions].join('\n') + '\n';
}

export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.length < 3) throw new NoteError('malformed checkpoint');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size)) throw new NoteError('malformed checkpoint: bad tree size');
  const rootBytes = Buffer.from(root, 'base64');
  if (rootBytes.length !== 32 || rootBytes.toString('base64') !== root) throw new NoteError('malformed checkpoint: bad root hash');
  if (origin.length === 0) throw new NoteError('malformed checkpoint: empty origin');
  return { origin, size: Number(size), root: rootBytes, extensions };
}
