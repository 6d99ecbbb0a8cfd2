/**
 * Builds the labelled masking corpus (corpus.jsonl beside this file), deterministically:
 * `npx tsx test/masking/corpus/generate.ts`. Every positive is a value that passes its format's
 * own check (Luhn, mod-97, SSA rules, NANP, Verhoeff, CPF and DNI check digits), embedded in prose, JSON, CSV and log lines; every
 * hard negative is something that looks like one and is not (Luhn-invalid 16-digit ids, UUIDs,
 * git SHAs, timestamps, invoice numbers, invalid SSNs, version strings, phone-like ids, …).
 *
 * Record: { "id", "label": "positive" | "negative", "type", "value", "text", "detectors"? }.
 * For a positive, `value` must vanish from the masked text and `type` must be counted; for a
 * negative, the masked text must equal the input.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CorpusRecord {
  readonly id: number;
  readonly label: 'positive' | 'negative';
  readonly type: string;
  readonly value: string;
  readonly text: string;
  /** Detector list for the masker (default: the default set). */
  readonly detectors?: readonly string[];
}

let seed = Number(process.env.CORPUS_SEED ?? 20240611);
function rnd(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
}
const int = (n: number): number => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const chars = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
const DIGITS = '0123456789';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_NUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B64URL = `${ALNUM}-_`;
const HEXL = '0123456789abcdef';

function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

function card(prefix: string, len: number): string {
  const body = prefix + chars(DIGITS, len - prefix.length - 1);
  return body + luhnCheckDigit(body);
}

function luhnInvalid(prefix: string, len: number): string {
  const c = card(prefix, len);
  const last = (Number(c[c.length - 1]) + 1 + int(8)) % 10;
  return c.slice(0, -1) + String(last);
}

function groupCard(c: string, sep: string): string {
  if (c.length === 15) return `${c.slice(0, 4)}${sep}${c.slice(4, 10)}${sep}${c.slice(10)}`;
  return c.match(/.{1,4}/g)!.join(sep);
}

function ibanFor(country: string, bbanLen: number): string {
  const bban = country === 'GB' || country === 'NL' ? `${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 4)}${chars(DIGITS, bbanLen - 4)}` : chars(DIGITS, bbanLen);
  const rearranged = `${bban}${country}00`;
  let rem = 0;
  for (const ch of rearranged) {
    const v = /[A-Z]/.test(ch) ? String(ch.charCodeAt(0) - 55) : ch;
    for (const d of v) rem = (rem * 10 + Number(d)) % 97;
  }
  const check = String(98 - rem).padStart(2, '0');
  return `${country}${check}${bban}`;
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

function pem(kind: string): string {
  const lines = Array.from({ length: 3 + int(4) }, () => chars(`${ALNUM}+/`, 64));
  return `-----BEGIN ${kind}PRIVATE KEY-----\n${lines.join('\n')}\n${chars(`${ALNUM}+/`, 20)}==\n-----END ${kind}PRIVATE KEY-----`;
}

const FIRST = ['Ana', 'Bruno', 'Chen', 'Dana', 'Emeka', 'Fatima', 'Greta', 'Hiro', 'Ines', 'Jonas'];
const LAST = ['Silva', 'Okafor', 'Novak', 'Larsen', 'Kowalski', 'Tanaka', 'Moreau', 'Rossi'];
const DOMAINS = ['example.com', 'mail.example.org', 'corp.example.co.uk', 'example.io', 'uni.example.edu'];

/** Containers for values that stand alone (PII, tokens). */
const plainContainers: ReadonlyArray<(v: string) => string> = [
  (v) => `Please contact the customer, details on file: ${v}. Thanks!`,
  (v) => `{"id": ${1000 + int(9000)}, "name": "${pick(FIRST)} ${pick(LAST)}", "value": "${v}", "created_at": "2024-03-0${1 + int(9)}T12:00:00Z"}`,
  (v) => `${int(99999)},${pick(FIRST)},${pick(LAST)},${v},2024-02-1${int(9)},active`,
  (v) => `2024-05-1${int(9)}T08:1${int(9)}:22.${100 + int(899)}Z INFO handler=update_profile field=${v} status=200`,
  (v) => `"${v}"`,
  (v) => v,
  (v) => `ERROR:  duplicate key value violates unique constraint "customers_pkey" DETAIL:  Key (ref)=(${v}) already exists.`,
  (v) => `INSERT INTO customers (name, ref) VALUES ('${pick(FIRST)}', '${v}');`,
];

const records: CorpusRecord[] = [];
let nextId = 1;
function add(label: 'positive' | 'negative', type: string, value: string, text: string, detectors?: readonly string[]): void {
  records.push({ id: nextId++, label, type, value, text, ...(detectors !== undefined ? { detectors } : {}) });
}
function positives(type: string, count: number, make: () => string, containers = plainContainers, detectors?: readonly string[]): void {
  for (let i = 0; i < count; i++) {
    const v = make();
    add('positive', type, v, containers[i % containers.length]!(v), detectors);
  }
}
function negatives(type: string, count: number, make: () => string, containers = plainContainers): void {
  for (let i = 0; i < count; i++) {
    const v = make();
    add('negative', type, v, containers[i % containers.length]!(v));
  }
}

// ---------------------------------------------------------------- positives

const cardKinds: ReadonlyArray<[string, number]> = [
  ['4', 16], ['51', 16], ['55', 16], ['2221', 16], ['2720', 16], ['34', 15], ['37', 15], ['6011', 16],
  ['65', 16], ['3528', 16], ['3589', 16], ['36', 14], ['62', 16], ['4', 19],
];
positives('credit_card', 64, () => {
  const [p, l] = pick(cardKinds);
  const c = card(p, l);
  const fmt = int(3);
  return fmt === 0 || l === 14 || l === 19 ? c : groupCard(c, fmt === 1 ? ' ' : '-');
});

const ssnArea = (): string => {
  for (;;) {
    const a = 1 + int(899);
    if (a !== 666) return String(a).padStart(3, '0');
  }
};
positives('us_ssn', 48, () => `${ssnArea()}${pick(['-', '-', ' '])}${String(1 + int(99)).padStart(2, '0')}-${String(1 + int(9999)).padStart(4, '0')}`.replace(/^(\d{3}) (\d{2})-/, '$1 $2 '));

const ibanKinds: ReadonlyArray<[string, number]> = [['DE', 18], ['GB', 18], ['FR', 23], ['NL', 14], ['ES', 20], ['IT', 23], ['CH', 17], ['BE', 12], ['PL', 24], ['AT', 16]];
positives('iban', 48, () => {
  const [cc, len] = pick(ibanKinds);
  let iban = ibanFor(cc, len);
  if (cc === 'FR' || cc === 'IT') iban = ibanFor(cc === 'FR' ? 'PT' : 'SE', cc === 'FR' ? 21 : 20); // digits-only BBANs
  return int(2) === 0 ? iban : iban.match(/.{1,4}/g)!.join(' ');
});

positives('email', 48, () => {
  const f = pick(FIRST).toLowerCase();
  const l = pick(LAST).toLowerCase();
  const local = pick([`${f}.${l}`, `${f}${int(99)}`, `${f}_${l}`, `${f}+billing`, `${f[0]}${l}`]);
  return `${local}@${pick(DOMAINS)}`;
});

const nanpArea = (): string => `${2 + int(8)}${int(10)}${int(10)}`;
const nanpExch = (): string => `${2 + int(8)}${int(10)}${int(10)}`;
const sub = (): string => chars(DIGITS, 4);
positives('phone', 60, () =>
  pick([
    () => `+1${nanpArea()}${nanpExch()}${sub()}`,
    () => `+1 ${nanpArea()} ${nanpExch()} ${sub()}`,
    () => `+1-${nanpArea()}-${nanpExch()}-${sub()}`,
    () => `(${nanpArea()}) ${nanpExch()}-${sub()}`,
    () => `${nanpArea()}-${nanpExch()}-${sub()}`,
    () => `${nanpArea()}.${nanpExch()}.${sub()}`,
    () => `1-800-${nanpExch()}-${sub()}`,
    () => `+44 20 ${chars(DIGITS, 4)} ${chars(DIGITS, 4)}`,
    () => `+44 7700 ${chars(DIGITS, 6)}`,
    () => `020 ${7 + int(2)}${chars(DIGITS, 3)} ${chars(DIGITS, 4)}`,
    () => `07700 ${chars(DIGITS, 6)}`,
    () => `+49 30 ${chars(DIGITS, 8)}`,
    () => `+33 1 ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)}`,
    () => `+81-3-${chars(DIGITS, 4)}-${chars(DIGITS, 4)}`,
  ])(),
);

positives('jwt', 40, () => {
  const header = b64url(JSON.stringify(pick([{ alg: 'HS256', typ: 'JWT' }, { alg: 'RS256', kid: chars(ALNUM, 8) }, { typ: 'JWT', alg: 'ES256' }])));
  const payload = b64url(JSON.stringify({ sub: chars(ALNUM, 10), iat: 1700000000 + int(1e6), role: pick(['ci', 'admin', 'reader']) }));
  return `${header}.${payload}.${chars(B64URL, 43)}`;
}, [...plainContainers, (v) => `Authorization: Bearer ${v}`, (v) => `curl -H "Authorization: Bearer ${v}" https://api.example.com/v1/me`]);

positives('private_key', 24, () => pem(pick(['', 'RSA ', 'EC ', 'OPENSSH ', 'ENCRYPTED ', 'DSA '])), [
  (v) => v,
  (v) => `key file contents:\n${v}\n-- end of file`,
  (v) => `{"private_key": ${JSON.stringify(v)}}`,
  (v) => `2024-05-11T08:11:22Z DEBUG loaded key\n${v}\n2024-05-11T08:11:23Z INFO ready`,
]);

positives('aws_access_key', 40, () => `${pick(['AKIA', 'ASIA'])}${chars(UPPER_NUM, 16)}`, [
  ...plainContainers,
  (v) => `aws_access_key_id = ${v}`,
  (v) => `export AWS_ACCESS_KEY_ID=${v}`,
]);
const awsSecret = (): string => chars(`${ALNUM}/+`, 40);
positives('aws_secret_key', 32, awsSecret, [
  (v) => `aws_secret_access_key = ${v}`,
  (v) => `export AWS_SECRET_ACCESS_KEY=${v}`,
  (v) => `{"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "${v}"}`.replace('SecretAccessKey', 'aws_secret_access_key'),
  (v) => `AWS_SECRET_ACCESS_KEY: "${v}"`,
]);

positives('github_token', 48, () =>
  int(5) === 0 ? `github_pat_${chars(ALNUM, 22)}_${chars(ALNUM, 59)}` : `${pick(['ghp', 'gho', 'ghu', 'ghs', 'ghr'])}_${chars(ALNUM, 36)}`,
  [...plainContainers, (v) => `git clone https://x-access-token:${v}@github.com/acme/app.git`, (v) => `GITHUB_TOKEN=${v} npm publish`],
);
positives('gitlab_token', 24, () => `glpat-${chars(`${ALNUM}_-`, 20)}`);
positives('slack_token', 32, () => `xox${pick(['b', 'p', 'a', 'r', 's'])}-${chars(DIGITS, 12)}-${chars(DIGITS, 13)}-${chars(ALNUM, 24)}`);
positives('slack_webhook', 24, () => `https://hooks.slack.com/services/T${chars(UPPER_NUM, 8)}/B${chars(UPPER_NUM, 10)}/${chars(ALNUM, 24)}`, [
  (v) => `SLACK_WEBHOOK=${v}`,
  (v) => `posting to ${v} failed: 500`,
  (v) => `{"webhook": "${v}"}`,
  (v) => v,
]);
positives('stripe_key', 32, () => `${pick(['sk_live', 'sk_test', 'rk_live'])}_${chars(ALNUM, 24 + int(75))}`);
positives('google_api_key', 32, () => `AIza${chars(`${ALNUM}_-`, 35)}`);
positives('npm_token', 24, () => `npm_${chars(ALNUM, 36)}`, [...plainContainers, (v) => `//registry.npmjs.org/:_authToken=${v}`]);

const pw = (): string => pick([`${chars(ALNUM, 10 + int(8))}`, `${pick(['Summer', 'Winter', 'Dragon'])}${2000 + int(25)}!`, `p@ss-${chars(ALNUM, 6)}`, `${chars(ALNUM, 4)}%2F${chars(ALNUM, 6)}`]);
positives('url_password', 40, pw, [
  (v) => `postgres://app_user:${v}@db.internal:5432/app`,
  (v) => `DATABASE_URL=postgresql://admin:${v}@10.0.0.12/prod?sslmode=require`,
  (v) => `connecting to mysql://root:${v}@mysql.example.com:3306/shop`,
  (v) => `{"dsn": "mongodb+srv://svc:${v}@cluster0.example.net/test"}`,
  (v) => `redis://:${v}@cache.example.com:6379/0`,
  (v) => `amqp://guest:${v}@rabbit:5672/`,
]);
positives('password', 48, pw, [
  (v) => `password=${v}`,
  (v) => `{"username": "ana", "password": "${v}"}`,
  (v) => `DB_PASSWORD='${v}'`,
  (v) => `  password: ${v}`,
  (v) => `login failed for user=ana passwd=${v} from 10.1.2.3`,
  (v) => `client_secret: "${v}"`,
  (v) => `host=db port=5432 user=app password=${v} dbname=app`,
  (v) => `ALTER USER app WITH PASSWORD = '${v}';`.replace(' = ', ' = '),
  (v) => `SECRET_KEY="${v}"`,
  (v) => `smtp_pass=${v}`,
]);
positives('generic_secret', 48, () => pick([chars(HEXL, 32), chars(ALNUM, 24 + int(16)), `${chars(ALNUM, 8)}-${chars(ALNUM, 8)}-${chars(ALNUM, 8)}`]), [
  (v) => `api_key=${v}`,
  (v) => `{"access_token": "${v}", "token_type": "bearer", "expires_in": 3600}`,
  (v) => `X-Api-Key: ${v}`,
  (v) => `curl "https://api.example.com/v2/items?apikey=${v}&limit=10"`,
  (v) => `auth_token: ${v}`,
  (v) => `Authorization: Bearer ${v}`,
  (v) => `STRIPE_SIGNING_KEY=${v}`,
  (v) => `session_key = "${v}"`,
]);

// Opt-in detectors, measured with the `network` group switched on.
positives('ipv4', 24, () => `${1 + int(223)}.${int(256)}.${int(256)}.${1 + int(254)}`, [
  (v) => `client ${v} connected`,
  (v) => `{"remote_addr": "${v}"}`,
  (v) => `${v} - - [11/May/2024:08:11:22 +0000] "GET / HTTP/1.1" 200`,
], ['all']);
positives('ipv6', 16, () => pick([`2001:db8:${chars(HEXL, 4)}::${chars(HEXL, 3)}`, `fe80::${chars(HEXL, 4)}:${chars(HEXL, 4)}:${chars(HEXL, 4)}:${chars(HEXL, 4)}`, `2001:0db8:85a3:0000:0000:8a2e:0370:${chars(HEXL, 4)}`]), [
  (v) => `client ${v} connected`,
  (v) => `{"remote_addr": "${v}"}`,
], ['all']);

// ---------------------------------------------------------------- hard negatives

negatives('luhn_invalid_16', 80, () => {
  const c = luhnInvalid(pick(['4', '51', '55', '6011', '37', '2221']), pick([16, 16, 15]));
  return int(2) === 0 ? c : groupCard(c, pick([' ', '-']));
});
negatives('invalid_iin_16', 40, () => card(pick(['1', '7', '8', '9', '0']), 16));
negatives('ean13_barcode', 30, () => {
  const body = `${pick(['40', '50', '69', '87', '30'])}${chars(DIGITS, 10)}`;
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += Number(body[i]) * (i % 2 === 0 ? 1 : 3);
  return body + String((10 - (sum % 10)) % 10);
}, [(v) => `SKU ${v} in stock`, (v) => `{"gtin": "${v}"}`, (v) => `${int(999)},${v},12.99`]);
negatives('uuid', 60, () => `${chars(HEXL, 8)}-${chars(HEXL, 4)}-4${chars(HEXL, 3)}-${pick(['8', '9', 'a', 'b'])}${chars(HEXL, 3)}-${chars(HEXL, 12)}`);
negatives('uuid_digits', 20, () => `${chars(DIGITS, 8)}-${chars(DIGITS, 4)}-4${chars(DIGITS, 3)}-8${chars(DIGITS, 3)}-${chars(DIGITS, 12)}`);
negatives('git_sha', 60, () => chars(HEXL, pick([40, 40, 7, 12])));
negatives('sha256', 20, () => chars(HEXL, 64));
negatives('timestamp', 80, () =>
  pick([
    () => `2024-0${1 + int(9)}-${10 + int(18)}T${10 + int(13)}:${10 + int(49)}:${10 + int(49)}.${chars(DIGITS, 3)}Z`,
    () => `2024-0${1 + int(9)}-${10 + int(18)} ${10 + int(13)}:${10 + int(49)}:${10 + int(49)}+00`,
    () => `${1600000000 + int(1e8)}`,
    () => `${1600000000000 + int(1e11)}`,
    () => `${10 + int(18)}/0${1 + int(9)}/2024 ${10 + int(13)}:${10 + int(49)}`,
    () => `20240${1 + int(9)}${10 + int(18)}${10 + int(13)}${10 + int(49)}${10 + int(49)}`,
    () => `2024-0${1 + int(9)}-${10 + int(18)} ${10 + int(13)}:${10 + int(49)}:${10 + int(49)}.${chars(DIGITS, 6)}`,
  ])(),
);
negatives('invoice_number', 60, () =>
  pick([
    () => `INV-2024-${chars(DIGITS, 6)}`,
    () => `ORD-${chars(DIGITS, 8)}`,
    () => `#${chars(DIGITS, 9)}`,
    () => `PO ${chars(DIGITS, 4)}-${chars(DIGITS, 4)}-${chars(DIGITS, 2)}`,
    () => `order ${chars(DIGITS, 10)}`,
    () => `${chars(DIGITS, 4)}-${chars(DIGITS, 4)}-${chars(DIGITS, 4)}-${chars(DIGITS, 4)}-${chars(DIGITS, 4)}`,
    () => `case ${chars(DIGITS, 12)}`,
  ])(),
);
const notItinGroup = (g: number): number => ((g >= 50 && g <= 65) || (g >= 70 && g <= 88) || (g >= 90 && g <= 92) || g >= 94 ? 1 + (g % 49) : g);
negatives('invalid_ssn', 60, () =>
  pick([
    () => `000-${String(1 + int(99)).padStart(2, '0')}-${String(1 + int(9999)).padStart(4, '0')}`,
    () => `666-${String(1 + int(99)).padStart(2, '0')}-${String(1 + int(9999)).padStart(4, '0')}`,
    // No SSN starts with 9; an ITIN does, with a middle group of 50–65, 70–88, 90–92 or 94–99 (personal data), so not those.
    () => `9${chars(DIGITS, 2)}-${String(notItinGroup(1 + int(99))).padStart(2, '0')}-${String(1 + int(9999)).padStart(4, '0')}`,
    () => `${ssnArea()}-00-${String(1 + int(9999)).padStart(4, '0')}`,
    () => `${ssnArea()}-${String(1 + int(99)).padStart(2, '0')}-0000`,
  ])(),
);
negatives('version', 40, () => pick([`v${int(20)}.${int(30)}.${int(100)}`, `${int(5)}.${int(20)}.${int(10)}-beta.${int(5)}`, `node@${18 + int(4)}.${int(20)}.${int(9)}`, `1.${int(99)}.${int(999)}.${int(9999)}`]));
negatives('phone_like_id', 60, () =>
  pick([
    () => `1${chars(DIGITS, 2)}-${chars(DIGITS, 3)}-${chars(DIGITS, 4)}`, // NANP area cannot start with 1
    () => `${2 + int(8)}${chars(DIGITS, 2)}-1${chars(DIGITS, 2)}-${chars(DIGITS, 4)}`, // nor the exchange
    () => `ticket ${chars(DIGITS, 3)}-${chars(DIGITS, 3)}`,
    () => `${chars(DIGITS, 3)}-${chars(DIGITS, 4)}`,
    () => `ext. ${chars(DIGITS, 4)}`,
    () => `+${chars(DIGITS, 3)} points`,
    () => `${1 + int(8)}${chars(DIGITS, 5)}`,
    () => `${2 + int(8)}${chars(DIGITS, 9)}`,
  ])(),
);
negatives('ip_when_disabled', 30, () => `${1 + int(223)}.${int(256)}.${int(256)}.${1 + int(254)}`);
negatives('money_and_numbers', 40, () => pick([`$${int(99999)}.${chars(DIGITS, 2)}`, `${int(999)},${chars(DIGITS, 3)},${chars(DIGITS, 3)}`, `${int(100)}%`, `${chars(DIGITS, 5)} rows`, `${int(9)}.${chars(DIGITS, 14)}`]));
negatives('not_email', 30, () => pick(['git@github.com:acme/app.git', 'icon@2x.png', 'user@localhost', '@types/node', 'npm i @sluice/core', 'foo@bar', 'ana at example dot com', 'a@b']));
negatives('base64_blob', 30, () => Buffer.from(chars(ALNUM, 30 + int(30))).toString('base64'));
negatives('not_secret_assignment', 80, () =>
  pick([
    `max_tokens=${int(8192)}`,
    `"prompt_tokens": ${int(9999)}`,
    `token_count: ${int(9999)}`,
    `password_expires_at=2025-0${1 + int(9)}-01`,
    `"token_type": "bearer"`,
    `aws_region=us-east-${1 + int(2)}`,
    `secret_name: prod/db/${pick(['app', 'ro'])}`,
    `password_policy=strong`,
    `Reset your password: click the link we sent you`,
    `Forgot password? Use the token: it arrives by email`,
    `WHERE password = $1`,
    `UPDATE users SET password = ? WHERE id = ?`,
    `password=\${DB_PASSWORD}`,
    `password: env:APPDB_PASSWORD`,
    `"password": null`,
    `"password": "********"`,
    `password=[REDACTED:password]`,
    `api_key_header=X-Api-Key`,
    `token_url=https://auth.example.com/token`,
    `"api_key_prefix": "sk"`,
    `status=200 duration_ms=${int(999)} bytes=${int(99999)}`,
  ]),
);
negatives('token_lookalike', 40, () =>
  pick([
    `ghp_${chars(ALNUM, 10)}`,
    `xoxb-${chars(DIGITS, 4)}`,
    `sk_live_${chars(ALNUM, 4)}`,
    `AKIA${chars(UPPER_NUM, 10)}`,
    `AIza${chars(ALNUM, 12)}`,
    `npm_${chars(ALNUM, 12)}`,
    `glpat-${chars(ALNUM, 8)}`,
    `eyJ${chars(ALNUM, 6)}`,
    `eyJhbGciOiJub25lIn0`,
    `github_pat_${chars(ALNUM, 8)}`,
  ]),
);
negatives('public_pem', 10, () => `-----BEGIN ${pick(['CERTIFICATE', 'PUBLIC KEY', 'RSA PUBLIC KEY'])}-----\n${chars(`${ALNUM}+/`, 64)}\n${chars(`${ALNUM}+/`, 40)}\n-----END CERTIFICATE-----`, [(v) => v, (v) => `ca bundle:\n${v}\n`]);
negatives('url_without_password', 30, () =>
  pick([
    `postgres://app@db.internal:5432/app`,
    `https://example.com/search?q=password+reset&page=${int(9)}`,
    `postgres://user:\${PGPASSWORD}@db/app`,
    `https://github.com/acme/app/blob/main/src/index.ts#L${int(500)}`,
    `http://127.0.0.1:${1024 + int(60000)}/healthz`,
    `s3://bucket-${int(99)}/logs/2024/05/11/app.log.gz`,
  ]),
);
negatives('prose', 60, () =>
  pick([
    'The agent ran a read-only query against the orders table and returned 20 rows.',
    'We shipped version 2 of the API on Monday; migration notes are in the wiki.',
    'A human approved the schema change after reviewing the EXPLAIN output.',
    'Call me at the office tomorrow, the meeting is in room 4-12.',
    'Total: 4 items, 3 shipped, 1 pending (ETA 2-3 days).',
    'Build #4521 passed in 3m 12s on runner ubuntu-22.04.',
    'The token bucket refills at 100 requests per second.',
    'Secrets are stored in the vault; nobody should paste them into chat.',
    'Kubernetes pod web-7d4b9c8f6-x2kqp restarted 3 times.',
    'ERROR: relation "public.customers" does not exist at character 15',
  ]),
);

// ---------------------------------------------------------------- national identifiers
// Appended last so the records above keep their ids and values. Check digits are computed here,
// from the issuers' rules, independently of src/masking.

const NINO_FIRST = 'ABCEGHJKLMNOPRSTWXYZ';
const NINO_SECOND = 'ABCEGHJKLMNPRSTWXYZ';
function nino(): string {
  let prefix = '';
  do prefix = pick([...NINO_FIRST]) + pick([...NINO_SECOND]);
  while (['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'].includes(prefix));
  const d = chars(DIGITS, 6);
  const suffix = pick(['A', 'B', 'C', 'D']);
  return int(2) === 0 ? `${prefix}${d}${suffix}` : `${prefix} ${d.slice(0, 2)} ${d.slice(2, 4)} ${d.slice(4)} ${suffix}`;
}
function sinDigits(valid: boolean): string {
  const body = pick(['1', '2', '3', '4', '5', '6', '7', '9']) + chars(DIGITS, 7);
  const check = Number(luhnCheckDigit(body));
  return body + String(valid ? check : (check + 1 + int(8)) % 10);
}
const group3 = (d: string, sep: string): string => `${d.slice(0, 3)}${sep}${d.slice(3, 6)}${sep}${d.slice(6)}`;
const VD = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1], [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]];
const VP = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1], [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]];
const VINV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];
function verhoeffCheckDigit(body: string): string {
  let c = 0;
  for (let i = 0; i < body.length; i++) c = VD[c]![VP[(i + 1) % 8]![Number(body[body.length - 1 - i])]!]!;
  return String(VINV[c]);
}
function aadhaarDigits(valid: boolean): string {
  const body = pick(['2', '3', '4', '5', '6', '7', '8', '9']) + chars(DIGITS, 10);
  const check = Number(verhoeffCheckDigit(body));
  return body + String(valid ? check : (check + 1 + int(8)) % 10);
}
const group4 = (d: string, sep: string): string => `${d.slice(0, 4)}${sep}${d.slice(4, 8)}${sep}${d.slice(8)}`;
function cpf(valid: boolean): string {
  let d = chars(DIGITS, 9);
  for (const n of [9, 10]) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += Number(d[i]) * (n + 1 - i);
    d += String(((sum * 10) % 11) % 10);
  }
  if (!valid) d = d.slice(0, 10) + String((Number(d[10]) + 1 + int(8)) % 10);
  return `${d.slice(0, 3)}.${d.slice(3, 6)}.${d.slice(6, 9)}-${d.slice(9)}`;
}
function dni(valid: boolean): string {
  const nie = int(3) === 0;
  const lead = nie ? pick(['X', 'Y', 'Z']) : '';
  const digits = chars(DIGITS, nie ? 7 : 8);
  const n = Number(`${nie ? 'XYZ'.indexOf(lead) : ''}${digits}`);
  const letters = 'TRWAGMYFPDXBNJZSQVHLCKE';
  const letter = letters[valid ? n % 23 : (n % 23 + 1 + int(20)) % 23]!;
  return `${lead}${digits}${!nie && int(4) === 0 ? '-' : ''}${letter}`;
}
const idContainers = [
  (v: string) => `customer national id: ${v}`,
  (v: string) => `{"national_id": "${v}", "country": "x"}`,
  (v: string) => `1042,Ana,Silva,${v},2024-02-14,active`,
  (v: string) => `INSERT INTO people (name, id_number) VALUES ('Ines', '${v}');`,
  (v: string) => `2024-05-16T08:12:22.620Z INFO kyc check passed for ${v} status=200`,
];
// A field or label naming a national id is masked by its name whatever the check digits say
// (personal_data), so the look-alikes sit under neutral names.
const lookalikeContainers = idContainers.map((c, i) => (i === 0 ? (v: string) => `customer reference: ${v}` : i === 1 ? (v: string) => `{"reference": "${v}", "country": "x"}` : c));
positives('uk_nino', 24, nino, idContainers);
positives('ca_sin', 24, () => group3(sinDigits(true), pick([' ', '-'])), idContainers);
positives('in_aadhaar', 24, () => group4(aadhaarDigits(true), pick([' ', '-'])), idContainers);
positives('br_cpf', 24, () => cpf(true), idContainers);
positives('es_dni', 24, () => dni(true), idContainers);
negatives('nino_invalid', 30, () => pick([`${pick(['QQ', 'BG', 'GB', 'NK', 'TN', 'ZZ', 'DA', 'AO'])}${chars(DIGITS, 6)}${pick(['A', 'B', 'C', 'D'])}`, `AB${chars(DIGITS, 6)}${pick(['E', 'F', 'X'])}`, `AB${chars(DIGITS, 5)}C`]), lookalikeContainers);
negatives('sin_like', 30, () => group3(sinDigits(false), pick([' ', '-'])), lookalikeContainers);
negatives('aadhaar_like', 30, () => group4(aadhaarDigits(false), pick([' ', '-'])), lookalikeContainers);
negatives('cpf_invalid', 30, () => (int(4) === 0 ? `${chars('1', 3)}.111.111-11` : cpf(false)), lookalikeContainers);
negatives('dni_wrong_letter', 30, () => dni(false), lookalikeContainers);
negatives('number_groups', 30, () => pick([`${chars(DIGITS, 3)} ${chars(DIGITS, 3)} ${chars(DIGITS, 3)} ${chars(DIGITS, 3)}`, `order ${chars(DIGITS, 8)} shipped`, `${chars(DIGITS, 4)} ${chars(DIGITS, 4)} ${chars(DIGITS, 4)} ${chars(DIGITS, 4)} ${chars(DIGITS, 4)}`, `v${chars(DIGITS, 3)}.${chars(DIGITS, 3)}.${chars(DIGITS, 3)}`]));

// ---------------------------------------------------------------- model-provider keys and more vendor tokens
// Appended last, like the national identifiers, so earlier records keep their ids and values.

const B64URL_RUN = (n: number): string => chars(`${ALNUM}-_`, n);
const tokenContainers = [
  (v: string) => `OPENAI_API_KEY=${v}`,
  (v: string) => `{"api_key": "${v}", "model": "gpt-4o"}`,
  (v: string) => `export TOKEN="${v}"`,
  (v: string) => `2024-05-16T08:12:22Z DEBUG using credential ${v} for upstream`,
  (v: string) => `agent output: the key is ${v}.`,
];
positives('openai_key', 24, () => pick([
  `sk-proj-${B64URL_RUN(20)}T3BlbkFJ${B64URL_RUN(20)}${chars(ALNUM, 60)}`,
  `sk-svcacct-${B64URL_RUN(100)}`,
  `sk-${chars(ALNUM, 20)}T3BlbkFJ${chars(ALNUM, 20)}`,
]), tokenContainers);
positives('anthropic_key', 24, () => `sk-ant-${pick(['api03', 'admin01'])}-${B64URL_RUN(93)}AA`, tokenContainers);
positives('huggingface_token', 24, () => `hf_${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 34)}`, tokenContainers);
positives('vendor_token', 30, () => pick([
  `dckr_pat_${B64URL_RUN(27)}`,
  `pypi-AgEIcHlwaS5vcmc${B64URL_RUN(120)}`,
  `${pick(['shpat', 'shpca', 'shppa', 'shpss'])}_${chars(HEXL, 32)}`,
  `${pick(['dop', 'doo', 'dor'])}_v1_${chars(HEXL, 64)}`,
  `AGE-SECRET-KEY-1${chars('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)}`,
]), tokenContainers);
negatives('token_prefix_lookalike', 40, () => pick([
  `sk-learn ${pick(['1.4.2', '1.5.0'])}`,
  `sk-${chars(ALNUM, 24)}`,
  `sk-proj-${chars(ALNUM, 12)}`,
  `sk-ant-${chars('abcdefghijklmnopqrstuvwxyz', 8)}`,
  `hf_${chars(ALNUM, 12)}`,
  `task-proj-${chars(ALNUM, 50)}`,
  `desk-${chars(ALNUM, 40)}`,
  `shpat_${chars(HEXL, 20)}`,
  `dop_v1_${chars(HEXL, 40)}`,
  `pypi-${chars(ALNUM, 60)}`,
  'AGE-SECRET-KEY-1 is the age identity prefix',
  're-run co-op hf-hub sk-mode',
]));

// ---------------------------------------------------------------- vendor tokens, second batch (gitleaks' formats)
// Appended last, so earlier records keep their ids and values.

const HEXU = '0123456789ABCDEF';
positives('vendor_token', 40, () => pick([
  `SG.${B64URL_RUN(22)}.${B64URL_RUN(43)}`,
  `SK${chars(HEXL, 32)}`,
  `ATATT3${B64URL_RUN(186)}=${chars(HEXU, 8)}`,
  `hvs.${B64URL_RUN(95)}`,
  `glsa_${chars(ALNUM, 32)}_${chars(HEXL, 8)}`,
  `NRAK-${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 27)}`,
  `HRKU-AA${B64URL_RUN(58)}`,
  `PMAK-${chars(HEXL, 24)}-${chars(HEXL, 34)}`,
  `key-${chars(HEXL, 32)}`,
  `dp.${pick(['pt', 'st', 'sa', 'ct'])}.${chars(ALNUM, 43)}`,
  `lin_api_${chars(ALNUM, 40)}`,
  `sbp_${chars(HEXL, 40)}`,
  `sq0atp-${B64URL_RUN(22)}`,
]), tokenContainers);
negatives('token_prefix_lookalike', 30, () => pick([
  `SKU${chars(HEXL, 32)}`,
  `SK-${chars(HEXL, 12)}`,
  'Dr. S.K. Rao and the S.G. team signed the SLA.',
  `hvs.${chars(ALNUM, 30)}`,
  `monkey-${chars(HEXL, 32)}`,
  `key-${chars(HEXL, 16)}`,
  `dp.${chars('abcdefghijklmnopqrstuvwxyz', 5)}`,
  `glsa_${chars(ALNUM, 12)}`,
  `PMAK-${chars(HEXL, 12)}`,
  `NRAK-${chars(ALNUM, 10)}`,
  `sbp_${chars(HEXL, 12)}`,
  'see docs.example.com/dp.html and hvs.md for details',
]));

// Secrets keyed by XML element names and attributes, and by `=>` (PHP, Ruby, Perl, hstore).
positives('password', 24, pw, [
  (v) => `<datasource><user>app</user><password>${v}</password></datasource>`,
  (v) => `<server>\n  <id>nexus</id>\n  <password>${v}</password>\n</server>`,
  (v) => `<ns2:Credentials><ns2:Password><![CDATA[${v}]]></ns2:Password></ns2:Credentials>`,
  (v) => `<entry key="db.password">${v}</entry>`,
  (v) => `$config = ['host' => 'db', 'password' => '${v}'];`,
  (v) => `"user"=>"app", "password"=>"${v}"`,
]);
positives('generic_secret', 16, () => chars(ALNUM, 24 + int(16)), [
  (v) => `<add key="ApiKey" value="${v}" />`,
  (v) => `<apiToken>${v}</apiToken>`,
  (v) => `config.api_key => "${v}"`,
  (v) => `<input type="hidden" name="access_token" value="${v}">`,
]);
negatives('xml_and_arrow_lookalike', 30, () =>
  pick([
    '<label for="password">Password</label>',
    '<input type="password" name="password" autocomplete="current-password">',
    '<passwordPolicy>min 8 chars, one digit</passwordPolicy>',
    `<max_tokens>${int(8192)}</max_tokens>`,
    `<tokenCount>${int(999)}</tokenCount>`,
    '<password>${DB_PASSWORD}</password>',
    '<password></password>',
    '<secretName>prod/db/app</secretName>',
    'const clean = token => token.trim();',
    `'password_min_length' => ${8 + int(8)},`,
    '<a href="/account/password">Change your password</a>',
    '<password-hint>the name of your first pet</password-hint>',
  ]),
);

// Name/value pairs, long flags and YAML block scalars: the setting's name keys its value.
positives('password', 24, pw, [
  (v) => `{"name": "DB_PASSWORD", "value": "${v}"}`,
  (v) => `env:\n  - name: POSTGRES_PASSWORD\n    value: "${v}"\n  - name: MODE\n    value: prod`,
  (v) => `db:\n  password: |\n    ${v}\n  user: app`,
  (v) => `exec /usr/bin/app --db-password ${v} --port 8080`,
  (v) => `[{"Name":"/prod/db/password","Value":"${v}","Type":"SecureString"}]`,
  (v) => `smtp:\n  pass: >-\n    ${v}\n`,
]);
positives('password', 8, () => chars(ALNUM, 10 + int(6)), [
  (v) => `+ mysqldump -h db.internal -uadmin -p${v} shop > dump.sql`,
  (v) => `sshpass -p ${v} ssh deploy@10.0.0.5`,
  (v) => `curl -fsS -u ci-bot:${v} https://nexus.example.com/repository/`,
  (v) => `curl --user admin:${v} -X POST https://jenkins.example.com/job/x/build`,
]);
negatives('pair_and_flag_lookalike', 24, () =>
  pick([
    `{"name": "LOG_LEVEL", "value": "${pick(['debug', 'info', 'warn'])}"}`,
    '--password-file /run/secrets/db_password',
    '--token-path /var/run/secrets/token',
    '--password --stdin',
    `{"name": "password_min_length", "value": "${8 + int(8)}"}`,
    '{"name": "feature.password-reset", "value": "enabled"}',
    '- name: PASSWORD\n  valueFrom:\n    secretKeyRef: { name: db, key: password }',
    'description: |\n  Rotates the token every day.\n',
  ]),
);

// ---------------------------------------------------------------- vendor tokens, third batch; password hashes
// Appended last, so earlier records keep their ids and values.

const CRYPT64 = `./${ALNUM}`;
const B64STD = `${ALNUM}+/`;
positives('vendor_token', 48, () => pick([
  `dapi${chars(HEXL, 32)}`,
  `${String(1 + int(8))}${chars(DIGITS, 9)}:AA${B64URL_RUN(33)}`,
  `${chars(HEXL, 32)}-us${1 + int(20)}`,
  `sntryu_${chars(HEXL, 64)}`,
  `CCIPAT_${chars(ALNUM, 22)}_${chars(HEXL, 40)}`,
  `fo1_${B64URL_RUN(43)}`,
  `pscale_${pick(['pw', 'tkn', 'oauth'])}_${B64URL_RUN(43)}`,
  `pul-${chars(HEXL, 40)}`,
  `${chars(ALNUM, 14)}.atlasv1.${B64URL_RUN(67)}`,
  `ntn_${chars(ALNUM, 46)}`,
  `whsec_${chars(ALNUM, 32)}`,
  `gsk_${chars(ALNUM, 52)}`,
  `xai-${chars(ALNUM, 80)}`,
  `ya29.${B64URL_RUN(150)}`,
  `LTAI${chars(ALNUM, 20)}`,
  `EAAA${B64URL_RUN(60)}`,
  `https://discord.com/api/webhooks/${chars(DIGITS, 18)}/${B64URL_RUN(68)}`,
]), tokenContainers);
positives('gitlab_token', 12, () => `${pick(['glrt', 'glptt', 'gldt', 'glft', 'glcbt'])}-${B64URL_RUN(20)}`, tokenContainers);
positives('google_api_key', 12, () => pick([`GOCSPX-${B64URL_RUN(28)}`, `1//0${B64URL_RUN(100)}`]), tokenContainers);
const hashContainers = [
  (v: string) => `root:${v}:19700:0:99999:7:::`,
  (v: string) => `{"id": ${int(9999)}, "email_verified": true, "hash": "${v}"}`,
  (v: string) => ` ${pick(['app', 'ci_bot', 'reporting'])} | t        | ${v}`,
  (v: string) => `INSERT INTO users VALUES (${int(999)}, 'ana', '${v}');`,
  (v: string) => `admin:${v}`,
];
positives('password_hash', 40, () => pick([
  `$2${pick(['a', 'b', 'y'])}$${pick(['10', '12', '14'])}$${chars(CRYPT64, 53)}`,
  `$6$${chars(CRYPT64, 16)}$${chars(CRYPT64, 86)}`,
  `$5$rounds=${5000 + int(100000)}$${chars(CRYPT64, 16)}$${chars(CRYPT64, 43)}`,
  `$apr1$${chars(CRYPT64, 8)}$${chars(CRYPT64, 22)}`,
  `$y$j9T$${chars(CRYPT64, 22)}$${chars(CRYPT64, 43)}`,
  `$argon2id$v=19$m=65536,t=3,p=4$${chars(B64STD, 22)}$${chars(B64STD, 43)}`,
  `pbkdf2_sha256$${600000 + int(300000)}$${chars(ALNUM, 22)}$${chars(B64STD, 43)}=`,
  `SCRAM-SHA-256$4096:${chars(B64STD, 22)}==$${chars(B64STD, 43)}=:${chars(B64STD, 43)}=`,
  `md5${chars(HEXL, 32)}`,
  `*${chars(HEXU, 40)}`,
]), hashContainers);
negatives('token_and_hash_lookalike', 40, () => pick([
  `dapi${chars(HEXL, 20)}`,
  `${chars(DIGITS, 10)}:AB${B64URL_RUN(33)}`,
  `deploy-us${1 + int(9)} rolled out`,
  `$${1 + int(9)} and $${1 + int(9)}.${chars(DIGITS, 2)} per unit`,
  `price: $${int(99)}$ and total: $${int(999)}`,
  `md5sum ${chars(HEXL, 32)}  file.tar.gz`,
  `sha256:${chars(HEXL, 64)}`,
  `SELECT * FROM orders WHERE id = ${int(9999)}`,
  `git ${chars(HEXL, 40)} * ${chars(HEXU, 40)}x`,
  `pbkdf2_sha256 with ${600000 + int(300000)} iterations`,
  'SCRAM-SHA-256 is the default password_encryption',
  `secret_${pick(['key', 'access_key', 'name'])}_${pick(['base', 'ref', 'id'])}`,
  `v1.0-${pick(['beta', 'rc1', 'final'])}`,
  `ya29.${pick(['x', 'example'])}`,
  'xai-sdk 1.2 and glrt- docs',
]));

// ---------------------------------------------------------------- personal data named by its field
// Appended last, so earlier records keep their ids and values.

const labelContainers = [
  (v: string) => `Date of Birth: ${v}`,
  (v: string) => `Social Security Number: ${v}\nPlan: gold`,
  (v: string) => `Passport No: ${v}`,
  (v: string) => `Tax ID: ${v}, filed 2024`,
];
const personalContainers = [
  (v: string) => `{"id": ${int(9999)}, "ssn": "${v}", "plan": "gold"}`,
  (v: string) => `patient dob=${v} ward=3`,
  (v: string) => `{"passportNumber": "${v}", "nationality": "PT"}`,
  (v: string) => `tax_id: ${v}`,
  (v: string) => `<dateOfBirth>${v}</dateOfBirth>`,
];
positives('personal_data', 30, () => pick([
  chars(DIGITS, 9),
  `19${50 + int(50)}-0${1 + int(9)}-${10 + int(18)}`,
  `${pick(['X', 'C', 'P'])}${chars(DIGITS, 8)}`,
  `${chars(DIGITS, 2)}-${chars(DIGITS, 7)}`,
  `${10 + int(18)}/0${1 + int(9)}/19${50 + int(50)}`,
]), personalContainers);
positives('personal_data', 16, () => pick([chars(DIGITS, 9), `19${50 + int(50)}-0${1 + int(9)}-${10 + int(18)}`, `${10 + int(18)} ${pick(['March', 'Sep', 'December'])} 19${50 + int(50)}`, `X${chars(DIGITS, 8)}`]), labelContainers);
negatives('label_lookalike', 16, () => pick([
  `Build Number: ${int(9999)}`,
  `Record Count: ${int(999)}`,
  `Start Date: 2024-0${1 + int(9)}-1${int(9)}`,
  `Error Code: ${int(999)}`,
  `Cell Count: ${int(99)}`,
  'Date of Birth: not provided',
  `API Key: ${pick(['rotated', 'see vault', '(unset)'])}`,
]));
// National identifiers with their own check characters, found bare (no field name needed).
const CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
function codiceFiscale(valid: boolean): string {
  const body = `${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 6)}${chars(DIGITS, 2)}${pick([...'ABCDEHLMPRST'])}${String(1 + int(28)).padStart(2, '0')}${pick([...'ABCDEFGHILMZ'])}${chars(DIGITS, 3)}`;
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    const c = body.charCodeAt(i);
    const v = c <= 57 ? c - 48 : c - 65;
    sum += i % 2 === 0 ? CF_ODD[v]! : v;
  }
  return body + String.fromCharCode(65 + ((sum % 26) + (valid ? 0 : 1 + int(24))) % 26);
}
function nric(valid: boolean): string {
  const p = pick(['S', 'T', 'F', 'G']);
  const d = chars(DIGITS, 7);
  const w = [2, 7, 6, 5, 4, 3, 2];
  let sum = p === 'T' || p === 'G' ? 4 : 0;
  for (let i = 0; i < 7; i++) sum += Number(d[i]) * w[i]!;
  const table = p === 'S' || p === 'T' ? 'JZIHGFEDCBA' : 'XWUTRQPNMLK';
  return `${p}${d}${table[(sum % 11 + (valid ? 0 : 1 + int(9))) % 11]}`;
}
function cnRic(valid: boolean): string {
  const body = `${pick(['110105', '440304', '310115', '510107'])}${1950 + int(60)}${String(1 + int(12)).padStart(2, '0')}${String(1 + int(28)).padStart(2, '0')}${chars(DIGITS, 3)}`;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * w[i]!;
  return body + '10X98765432'[(sum % 11 + (valid ? 0 : 1 + int(9))) % 11];
}
positives('personal_data', 30, () => pick([codiceFiscale(true), nric(true), cnRic(true)]), idContainers);
negatives('national_id_lookalike', 30, () => pick([codiceFiscale(false), nric(false), cnRic(false)]), lookalikeContainers);
const phoneContainers = [
  (v: string) => `{"name": "Ana", "phone": "${v}"}`,
  (v: string) => `mobile=${v}`,
  (v: string) => `"phoneNumber": "${v}",`,
];
positives('phone', 12, () => pick([`0${chars(DIGITS, 2)} ${chars(DIGITS, 4)} ${chars(DIGITS, 4)}`, `0${chars(DIGITS, 9)}`, `06 ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)}`]), phoneContainers);
negatives('personal_field_lookalike', 30, () => pick([
  '{"dob_verified": true, "ssn_last_checked_at": "2024-05-01"}',
  '{"phone": "n/a", "mobile": "unknown"}',
  `{"passport_country": "FR", "tax_rate": 0.${chars(DIGITS, 2)}}`,
  `{"taxonomy_id": ${int(9999)}, "microphone": "Yeti X"}`,
  '{"dob": null, "ssn": ""}',
  `{"cell": "B${int(99)}", "telemetry": "on"}`,
  `record_count=${int(999)} national_holiday=true`,
  `{"phone_extension": "${int(999)}", "dl_url": "https://example.com/f.zip"}`,
]));

// Config directives with the secret after a space (Redis, .netrc, LDAP, Cisco IOS, BIND, Dockerfile), and short flags of more clients.
positives('password', 36, () => chars(ALNUM, 10 + int(6)), [
  (v) => `bind 127.0.0.1 ::1\nport 6379\nrequirepass ${v}\nappendonly yes`,
  (v) => `replicaof 10.0.0.5 6379\nmasterauth ${v}`,
  (v) => `machine api.${pick(['github.com', 'heroku.com', 'example.org'])} login ${pick(FIRST).toLowerCase()} password ${v}`,
  (v) => `machine ftp.example.com\n  login deploy\n  password ${v}\n`,
  (v) => `base dc=example,dc=com\nbinddn cn=reader,dc=example,dc=com\nbindpw ${v}`,
  (v) => `hostname edge-${int(99)}\nenable password ${v}\n!`,
  (v) => `username ${pick(['admin', 'netops', 'backup'])} privilege 15 password 0 ${v}`,
  (v) => `snmp-server community ${v} RO`,
  (v) => `key "xfer-key" {\n\talgorithm hmac-sha256;\n\tsecret "${v}";\n};`,
  (v) => `user ${pick(['worker', 'app', 'reports'])} on >${v} ~jobs:* +@read`,
  (v) => `FROM python:3.12-slim\nENV DB_PASSWORD ${v}\nCMD ["python", "app.py"]`,
  (v) => `+ docker login -u ci -p ${v} registry.example.com`,
]);
negatives('directive_lookalike', 24, () =>
  pick([
    'password changed for user bob',
    `user ${pick(FIRST).toLowerCase()} logged in from 10.0.${int(255)}.${int(255)}`,
    'username = password = None',
    'key = compute_key( key );',
    'secret sharing schemes split a key',
    'machine password is rotated nightly',
    'enable password checks for every account',
    `docker run -p ${8000 + int(99)}:80 nginx`,
    'ENV PATH /usr/local/bin:$PATH',
    'set self._password if they have authentication data',
    '   password combination.',
  ]),
);

// More national identifiers, each valid by its issuer's check, and look-alikes one digit off.
const ymd = (): string => `${chars(DIGITS, 2)}${String(1 + int(12)).padStart(2, '0')}${String(1 + int(28)).padStart(2, '0')}`;
const offByOne = (id: string, at: number): string => id.slice(0, at) + String((Number(id[at]) + 1 + int(8)) % 10) + id.slice(at + 1);
function swedish(valid: boolean): string {
  const body = ymd() + chars(DIGITS, 3);
  const id = body + luhnCheckDigit(body);
  const d = valid ? id : offByOne(id, 9);
  return `${d.slice(0, 6)}-${d.slice(6)}`;
}
function nir(valid: boolean): string {
  const body = `${pick(['1', '2'])}${chars(DIGITS, 2)}${String(1 + int(12)).padStart(2, '0')}${String(1 + int(95)).padStart(2, '0')}${chars(DIGITS, 6)}`;
  const key = String(97 - Number(BigInt(body) % 97n)).padStart(2, '0');
  const id = valid ? body + key : body + String((Number(key) + 1 + int(50)) % 97).padStart(2, '0');
  return pick([id, `${id[0]} ${id.slice(1, 3)} ${id.slice(3, 5)} ${id.slice(5, 7)} ${id.slice(7, 10)} ${id.slice(10, 13)} ${id.slice(13)}`]);
}
function saId(valid: boolean): string {
  const body = `${ymd()}${chars(DIGITS, 4)}${pick(['0', '1'])}8`;
  const id = body + luhnCheckDigit(body);
  return valid ? id : offByOne(id, 12);
}
const itin = (): string => `9${chars(DIGITS, 2)}-${pick(['7', '8'])}${chars(DIGITS, 1)}-${chars(DIGITS, 4)}`;
positives('personal_data', 32, () => pick([swedish(true), nir(true), saId(true), itin()]), idContainers);
negatives('national_id_lookalike', 24, () => pick([swedish(false), nir(false), saId(false)]), lookalikeContainers);

const out = join(dirname(fileURLToPath(import.meta.url)), 'corpus.jsonl');
writeFileSync(out, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
const pos = records.filter((r) => r.label === 'positive').length;
console.log(`wrote ${records.length} records (${pos} positive, ${records.length - pos} negative) to ${out}`);
