/**
 * The built-in detector catalogue: names (stable, used in config, `[REDACTED:name]` and stats),
 * groups and default styles. The scanner (scan.ts) refers to detectors by index into
 * `DETECTORS`, so enabling a set is one bitmask.
 */

export type StyleName = 'redact' | 'partial' | 'last4' | 'mask' | 'hash';
export type ColumnStyleName = StyleName | 'null' | 'keep';
export const STYLE_NAMES: readonly StyleName[] = ['redact', 'partial', 'last4', 'mask', 'hash'];
export const COLUMN_STYLE_NAMES: readonly ColumnStyleName[] = ['redact', 'partial', 'last4', 'mask', 'hash', 'null', 'keep'];

export type DetectorGroup = 'pii' | 'secrets' | 'network';

interface DetectorInfo {
  readonly name: string;
  readonly group: DetectorGroup;
  readonly style: StyleName;
  /** How `hash` normalises a value so that differently formatted copies hash alike. */
  readonly normalise: 'digits' | 'alnum-upper' | 'lower' | 'none';
}

export const DETECTORS = [
  { name: 'credit_card', group: 'pii', style: 'partial', normalise: 'digits' },
  { name: 'us_ssn', group: 'pii', style: 'partial', normalise: 'digits' },
  { name: 'iban', group: 'pii', style: 'partial', normalise: 'alnum-upper' },
  { name: 'email', group: 'pii', style: 'partial', normalise: 'lower' },
  { name: 'phone', group: 'pii', style: 'partial', normalise: 'digits' },
  { name: 'ipv4', group: 'network', style: 'redact', normalise: 'none' },
  { name: 'ipv6', group: 'network', style: 'redact', normalise: 'lower' },
  { name: 'jwt', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'private_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'aws_access_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'aws_secret_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'github_token', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'gitlab_token', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'slack_token', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'slack_webhook', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'stripe_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'google_api_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'npm_token', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'url_password', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'password', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'generic_secret', group: 'secrets', style: 'redact', normalise: 'none' },
  // National identifiers beyond the US SSN, each with its issuer's check.
  { name: 'uk_nino', group: 'pii', style: 'partial', normalise: 'alnum-upper' },
  { name: 'ca_sin', group: 'pii', style: 'partial', normalise: 'digits' },
  { name: 'in_aadhaar', group: 'pii', style: 'partial', normalise: 'digits' },
  { name: 'br_cpf', group: 'pii', style: 'partial', normalise: 'digits' },
  { name: 'es_dni', group: 'pii', style: 'partial', normalise: 'alnum-upper' },
  // Model-provider keys: what an agent's own environment holds, and must not read back.
  { name: 'openai_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'anthropic_key', group: 'secrets', style: 'redact', normalise: 'none' },
  { name: 'huggingface_token', group: 'secrets', style: 'redact', normalise: 'none' },
  /** Other vendors' API tokens, keys and webhook URLs with a recognisable form (docs/masking.md). */
  { name: 'vendor_token', group: 'secrets', style: 'redact', normalise: 'none' },
  /** Password hashes (crypt, bcrypt, Argon2, PBKDF2, SCRAM, md5, MySQL): crackable offline. */
  { name: 'password_hash', group: 'secrets', style: 'redact', normalise: 'none' },
  /**
   * National identifiers without a detector of their own (codice fiscale, NRIC, PAN, HETU, RRN,
   * Chinese resident ID, NHS), and values of fields named for a personal identifier or a birth
   * date (`ssn`, `passport_number`, `dob`).
   */
  { name: 'personal_data', group: 'pii', style: 'redact', normalise: 'none' },
  // Enabled detectors are one 32-bit mask (`bit(index)`, bitwise operators): this list is full.
  // Another detector needs a wider mask, or joins one of these names.
] as const satisfies readonly DetectorInfo[];

export type DetectorName = (typeof DETECTORS)[number]['name'];

/** Index constants for the scanner (position in DETECTORS). */
export const D = {
  card: 0,
  ssn: 1,
  iban: 2,
  email: 3,
  phone: 4,
  ipv4: 5,
  ipv6: 6,
  jwt: 7,
  privateKey: 8,
  awsAccessKey: 9,
  awsSecretKey: 10,
  github: 11,
  gitlab: 12,
  slack: 13,
  slackWebhook: 14,
  stripe: 15,
  google: 16,
  npm: 17,
  urlPassword: 18,
  password: 19,
  genericSecret: 20,
  ukNino: 21,
  caSin: 22,
  inAadhaar: 23,
  brCpf: 24,
  esDni: 25,
  openai: 26,
  anthropic: 27,
  huggingface: 28,
  vendorToken: 29,
  passwordHash: 30,
  personalData: 31,
} as const;

export const DETECTOR_NAMES: readonly string[] = DETECTORS.map((d) => d.name);

export function bit(index: number): number {
  return 1 << index;
}

function maskOf(pred: (d: DetectorInfo) => boolean): number {
  let m = 0;
  DETECTORS.forEach((d, i) => {
    if (pred(d)) m |= bit(i);
  });
  return m;
}

/** Group names usable in `detectors:` and `styles:`. `default` is everything except IP addresses. */
export const GROUPS: Readonly<Record<string, number>> = {
  all: maskOf(() => true),
  default: maskOf((d) => d.group !== 'network'),
  pii: maskOf((d) => d.group === 'pii'),
  secrets: maskOf((d) => d.group === 'secrets'),
  network: maskOf((d) => d.group === 'network'),
};

export const DEFAULT_SET = GROUPS.default as number;

export function detectorIndex(name: string): number {
  return DETECTOR_NAMES.indexOf(name);
}
