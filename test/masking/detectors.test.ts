/**
 * One block per built-in detector: positives in several formats, and the look-alikes it must
 * leave alone. Each detector is tested alone (a masker with only that detector), so a pass is
 * that detector's own doing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMasker, defaultMasker, DETECTOR_NAMES, MaskStats, type Masker } from '../../src/masking/index.js';

function only(detector: string): (text: string) => { out: string; hits: number } {
  const m = createMasker({ detectors: [detector] });
  return (text) => {
    const stats = new MaskStats();
    const out = m.maskText(text, stats);
    return { out, hits: stats.toJSON().filter((e) => e.detector === detector).reduce((a, e) => a + e.count, 0) };
  };
}

function hits(detector: string, positives: readonly string[], negatives: readonly string[]): void {
  const run = only(detector);
  for (const p of positives) {
    const { out, hits: n } = run(`before ${p} after`);
    assert.equal(n, 1, `${detector} should find ${JSON.stringify(p)} (got ${JSON.stringify(out)})`);
    assert.ok(out.startsWith('before ') && out.endsWith(' after'), `context kept: ${out}`);
  }
  for (const x of negatives) {
    const text = `before ${x} after`;
    assert.equal(run(text).out, text, `${detector} must leave ${JSON.stringify(x)} alone`);
  }
}

/** Each text of `cases` masks to its expected text; each of `unchanged` stays as it is. */
function masksAs(m: Masker, cases: ReadonlyArray<readonly [string, string]>, unchanged: readonly string[]): void {
  for (const [text, want] of cases) assert.equal(m.maskText(text), want);
  for (const text of unchanged) assert.equal(m.maskText(text), text);
}

test('DETECTOR_NAMES lists every built-in detector', () => {
  assert.deepEqual([...DETECTOR_NAMES].sort(), [
    'aws_access_key', 'aws_secret_key', 'credit_card', 'email', 'generic_secret', 'github_token', 'gitlab_token', 'google_api_key',
    'iban', 'ipv4', 'ipv6', 'jwt', 'npm_token', 'password', 'phone', 'private_key', 'slack_token', 'slack_webhook', 'stripe_key',
    'url_password', 'us_ssn', 'uk_nino', 'ca_sin', 'in_aadhaar', 'br_cpf', 'es_dni', 'openai_key', 'anthropic_key', 'huggingface_token', 'vendor_token',
    'password_hash', 'personal_data',
  ].sort());
  assert.ok(DETECTOR_NAMES.length <= 32, 'enabled detectors are one 32-bit mask');
});

test('model-provider keys and more vendor tokens: their formats, not look-alikes', () => {
  const run = (n: number, alphabet = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'): string => alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
  hits('openai_key', [`sk-proj-${run(120)}`, `sk-svcacct-${run(60)}_-${run(20)}`, `sk-${run(20)}T3BlbkFJ${run(20)}`], ['sk-learn', `sk-${run(48)}`, `sk-proj-${run(20)}`, `xsk-proj-${run(120)}`]);
  hits('anthropic_key', [`sk-ant-api03-${run(93)}AA`, `sk-ant-admin01-${run(95)}`], [`sk-ant-api03-${run(30)}`, `sk-ant-${run(95)}`]);
  hits('huggingface_token', [`hf_${run(34, 'abcdefghijklmnopqrstuvwxyzABCDEFGH')}`], [`hf_${run(12)}`, `hf_${run(60)}`, `xhf_${run(34)}`, `hf-${run(34)}`]);
  hits(
    'vendor_token',
    [`dckr_pat_${run(27)}`, `pypi-AgEIcHlwaS5vcmc${run(80)}`, `shpat_${run(32, '0123456789abcdef')}`, `dop_v1_${run(64, '0123456789abcdef')}`, `AGE-SECRET-KEY-1${run(58, 'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L')}`],
    [`dckr_pat_${run(8)}`, `pypi-${run(80)}`, `shpat_${run(31, '0123456789abcdef')}`, `dop_v1_${run(63, '0123456789abcdef')}`, 'AGE-SECRET-KEY-1 prefix'],
  );
  const hex = (n: number): string => run(n, '0123456789abcdef');
  hits(
    'vendor_token',
    [
      `SG.${run(22)}.${run(43)}`, // SendGrid
      `SK${hex(32)}`, // Twilio API key
      `ATATT3${run(180)}=${hex(8).toUpperCase()}`, // Atlassian
      `hvs.${run(95)}`, // HashiCorp Vault
      `hvb.${run(140)}`,
      `glsa_${run(32)}_${hex(8)}`, // Grafana
      `glc_${run(80)}==`,
      `NRAK-${run(27).toUpperCase()}`, // New Relic
      `HRKU-AA${run(58)}`, // Heroku
      `PMAK-${hex(24)}-${hex(34)}`, // Postman
      `key-${hex(32)}`, // Mailgun
      `dp.pt.${run(43)}`, // Doppler
      `dp.scim.${run(40)}`,
      `lin_api_${run(40)}`, // Linear
      `sbp_${hex(40)}`, // Supabase
      `sq0atp-${run(22)}`, // Square
      `sq0csp-${run(43)}`,
    ],
    [
      `SG.${run(21)}.${run(43)}`,
      `SK${hex(31)}`,
      `SKF${hex(32)}`,
      'The S.K. Lines. SG. is SendGrid, SGX. and SKF bearings.',
      `ATATT3${run(40)}`,
      `hvs.${run(40)}`,
      `xhvs.${run(95)}`,
      `glsa_${run(31)}_${hex(8)}`,
      `NRAK-${run(26)}`,
      `PMAK-${hex(24)}`,
      `key-${hex(31)}`,
      `monkey-${hex(32)}`,
      `dp.xx.${run(43)}`,
      `dp.pt.${run(20)}`,
      `lin_api_${run(39)}`,
      `sbp_${hex(39)}`,
      `sq0atp-${run(10)}`,
      'hv.s dp. e.g. i.e. version 1.2.3',
    ],
  );
});

test('vendor tokens, third batch (gitleaks and the vendors\' docs): bare in text, not their look-alikes', () => {
  const run = (n: number, alphabet = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'): string => alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
  const hex = (n: number): string => run(n, '0123456789abcdef');
  const digits = (n: number): string => run(n, '7391045826');
  hits(
    'vendor_token',
    [
      `dapi${hex(32)}`, // Databricks, digit first
      `dapiab${hex(30)}`, // Databricks, hex letters before the first digit
      `dapi${hex(32)}-2`,
      `${digits(10)}:AA${run(33)}`, // Telegram bot
      `${hex(32)}-us14`, // Mailchimp
      `sntrys_eyJpYXQiOjE2OTQwMDAwMDAsInVybCI6Imh0dHBzOi8vc2VudHJ5LmlvIn0=_${run(43)}`, // Sentry org token
      `sntryu_${hex(64)}`,
      `CCIPAT_${run(22)}_${hex(40)}`, // CircleCI
      `fo1_${run(43)}`, // Fly.io
      `pscale_pw_${run(43)}`, // PlanetScale
      `pscale_tkn_${run(43)}`,
      `pul-${hex(40)}`, // Pulumi
      `${run(14)}.atlasv1.${run(67)}`, // Terraform Cloud
      `v1.0-${hex(24)}-${hex(146)}`, // Cloudflare Origin CA
      `secret_${run(43)}`, // Notion
      `ntn_${run(46)}`,
      `whsec_${run(32)}`, // Stripe webhook secret
      `shippo_live_${hex(40)}`,
      `aio_${run(28)}`, // Adafruit IO
      `r8_${run(37)}`, // Replicate
      `gsk_${run(52)}`, // Groq
      `xai-${run(80)}`, // xAI
      `ya29.${run(120)}`, // Google OAuth access token
      `LTAI${run(20)}`, // Alibaba Cloud
      `AKID${run(32)}`, // Tencent Cloud
      `EAAA${run(60)}`, // Square
      `EAAG${run(120)}`, // Meta
      `dp.st.prd.${run(43)}`, // Doppler service token with its config
      `https://discord.com/api/webhooks/${digits(18)}/${run(68)}`,
      `https://acme.webhook.office.com/webhookb2/${hex(8)}-${hex(4)}@${hex(8)}/IncomingWebhook/${hex(32)}/${hex(8)}`,
    ],
    [
      `dapi${hex(31)}`,
      `xdapi${hex(32)}`,
      'the dapi1 endpoint and dapi v2',
      `${digits(7)}:AA${run(33)}`,
      `${digits(10)}:AB${run(33)}`,
      `${hex(31)}-us14`,
      'runs-us1 and status-us14',
      `sntrys_${run(20)}`,
      `CCIPAT_${run(22)}`,
      `fo1_${run(12)}`,
      `pscale_${run(43)}`,
      `pul-${hex(20)}`,
      `pulse-${hex(40)}`,
      `${run(14)}.atlasv2.${run(67)}`,
      'v1.0-beta and v1.0-rc1',
      `secret_${run(20)}`,
      'secret_key_base and secret_access_key',
      `whsec_${run(10)}`,
      `aio_${run(10)}`,
      `r8_${run(10)}`,
      `gsk_${run(20)}`,
      'xai-sdk xai-grok-beta',
      'ya29.x and ya29.short',
      `LTAI${run(10)}`,
      'AKID-bad',
      'EAAA and EAAGLE',
      'https://discord.com/channels/123/456 and https://acme.webhook.office.com/',
    ],
  );
  hits('gitlab_token', [`glrt-${run(20)}`, `glptt-${hex(40)}`, `gldt-${run(20)}`, `glsoat-${run(20)}`, `glagent-${run(50)}`, `GR1348941${run(20)}`, `gloas-${hex(64)}`], [`glrt-${run(8)}`, 'glrt- glptt-', `GR1348941${run(8)}`, `glx-${run(20)}`]);
  hits('google_api_key', [`GOCSPX-${run(28)}`, `1//0${run(100)}`, `1//03${run(60)}`], [`GOCSPX-${run(8)}`, '1//0 and 1/2/3', 'http://1//x']);
});

test('password_hash: crypt, bcrypt, Argon2, PBKDF2, SCRAM, md5 and MySQL hashes; not what shares their first characters', () => {
  const run = (n: number, alphabet = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789./'): string => alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
  const b64 = (n: number): string => run(n, 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/');
  const hex = (n: number): string => run(n, '0123456789abcdef');
  hits(
    'password_hash',
    [
      `$2b$12$${run(53)}`,
      `$2y$10$${run(53)}`,
      `$6$${run(16)}$${run(86)}`,
      `$6$rounds=656000$${run(16)}$${run(86)}`,
      `$5$${run(16)}$${run(43)}`,
      `$1$${run(8)}$${run(22)}`,
      `$apr1$${run(8)}$${run(22)}`,
      `$y$j9T$${run(22)}$${run(43)}`,
      `$argon2id$v=19$m=65536,t=3,p=4$${b64(22)}$${b64(43)}`,
      `$pbkdf2-sha256$29000$${run(22)}$${run(43)}`,
      `pbkdf2_sha256$870000$${run(22)}$${b64(43)}=`,
      `argon2$argon2id$v=19$m=102400,t=2,p=8$${b64(22)}$${b64(43)}`,
      `bcrypt_sha256$$2b$12$${run(53)}`,
      `SCRAM-SHA-256$4096:${b64(24)}==$${b64(43)}=:${b64(43)}=`,
      `md5${hex(32)}`,
      `*${hex(40).toUpperCase()}`,
    ],
    [
      `$2b$12$${run(30)}`,
      '$1 and $2 and $$ and ${HOME} and $6$ and $5.00',
      `$6$${run(16)}$${run(10)}`,
      `md5${hex(31)}`,
      `md5sum ${hex(32)}`,
      `xmd5${hex(32)}`,
      `*${hex(39).toUpperCase()}`,
      `SELECT * FROM t; count(*) ${hex(40).toUpperCase()}`,
      `pbkdf2_sha256 is the default`,
      `SCRAM-SHA-256 authentication`,
    ],
  );
  // /etc/shadow and pg_authid as they print.
  const m = createMasker({ detectors: ['password_hash'] });
  const shadow = `root:$6$${run(16)}$${run(86)}:19000:0:99999:7:::`;
  assert.equal(m.maskText(shadow), 'root:[REDACTED:password_hash]:19000:0:99999:7:::');
  assert.equal(m.maskText(` app      | SCRAM-SHA-256$4096:${b64(24)}==$${b64(43)}=:${b64(43)}=`), ' app      | [REDACTED:password_hash]');
});

test('keys naming card codes, PINs, OTP seeds and presigned-URL signatures mask their values', () => {
  const m = defaultMasker();
  for (const [text, gone] of [
    ['{"cvv": "123", "pan_last4": "4242"}', '123'],
    ['card_pin=4821', '4821'],
    ['totp_secret: JBSWY3DPEHPK3PXP', 'JBSWY3DPEHPK3PXP'],
    ['mfa_seed = "JBSWY3DPEHPK3PXP"', 'JBSWY3DPEHPK3PXP'],
    ['recovery_codes: a1b2-c3d4', 'a1b2-c3d4'],
    ['authentication_string: *6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9', '6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'],
    ['https://acct.blob.core.windows.net/c/f.csv?sv=2021-06-08&se=2026-12-01&sp=r&sig=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy%3D', 'Zm9vYmFyYmF6cXV4'],
    ['https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0f5d6a3b9c8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a', '0f5d6a3b9c8e7f6a'],
  ] as const) {
    const out = m.maskText(text);
    assert.ok(!out.includes(gone), `${text} → ${out}`);
  }
  for (const text of ['{"pinned": true, "pin_count": 3}', 'spin=3 pinot=noir', 'totp_enabled=true', 'signal=SIGTERM design=flat', 'X-Amz-Algorithm=AWS4-HMAC-SHA256']) {
    assert.equal(m.maskText(text), text);
  }
});

test('personal_data: national identifiers with their own checks, bare in text; look-alikes that fail the check stay', () => {
  hits(
    'personal_data',
    ['RSSMRA85M01H501Q', 'S1234567D', 'G1234567X', 'ABCPE1234F', '131052-308T', '010203A1230', '850314-1023451', '11010519491231002X', '44030419900307123X', '401 023 2137', '401-023-2137'],
    ['RSSMRA85M01H501R', 'xRSSMRA85M01H501Q', 'S1234567A', 'S1234567DX', 'ABCXE1234F', '131052-308U', '850314-1023452', '850314-102345', '110105194912310021', '401 023 2138', '4010232137', '2024-05-16', 'ORDER12345', 'AB1234567C'],
  );
});

test('personal_data: more national identifiers by their issuers\' checks (ITIN, Swedish, Danish, French, South African, Mexican, Australian)', () => {
  hits(
    'personal_data',
    [
      '912-78-1234', // US ITIN (middle group 70–88)
      '900 94 0000',
      '811218-9876', // Swedish personnummer (Luhn), also `+` past a hundred years
      '811218+9876',
      '811278-9873', // samordningsnummer: day + 60
      '070761-4285', // Danish CPR (mod 11)
      '255081416802538', // French NIR (key: 97 − first 13 mod 97)
      '2 55 08 14 168 025 38',
      '8001015009087', // South African identity number (date, 0/1, 8/9, Luhn)
      'HEGG560427MVZRRL04', // Mexican CURP (check digit)
      '51 824 753 556', // Australian ABN (mod 89)
      '2123 45670 1', // Australian Medicare (weights 1 3 7 9)
    ],
    [
      '912-45-1234', // middle group no ITIN has
      '811218-9875',
      '811318-9876', // month 13
      'backup-240515-1234',
      '240515-1234-7',
      '255081416802539',
      '2 55 08 14 168 025 39',
      '8001015009088',
      '8001015002087', // citizenship digit 2
      'HEGG560427MVZRRL05',
      'HEGG560427QVZRRL04',
      '51 824 753 557',
      '2123 45671 1', // the ninth digit is the check
      '7123 45670 1', // Medicare numbers start 2–6
    ],
  );
  // Those not read bare are masked under their names.
  assert.equal(
    defaultMasker().maskText('{"tfn": "123 456 789", "fnr": "01129955131", "my_number": "123456789018", "cpr_nr": "0707614285", "order_number": "12345"}'),
    '{"tfn": "[REDACTED:personal_data]", "fnr": "[REDACTED:personal_data]", "my_number": "[REDACTED:personal_data]", "cpr_nr": "[REDACTED:personal_data]", "order_number": "12345"}',
  );
});

test('password literals of SQL role statements (recorded in the audit log) are masked; other literals are not', () => {
  masksAs(
    createMasker({ detectors: ['password'] }),
    [
      ["ALTER ROLE app WITH PASSWORD 'hunter2'", "ALTER ROLE app WITH PASSWORD '[REDACTED:password]'"],
      ["CREATE ROLE bob LOGIN ENCRYPTED PASSWORD 'it''s-2'", "CREATE ROLE bob LOGIN ENCRYPTED PASSWORD '[REDACTED:password]'"],
      ["CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password 'hunter2')", "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password '[REDACTED:password]')"],
      ["CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2';", "CREATE USER 'bob'@'%' IDENTIFIED BY '[REDACTED:password]';"],
      ["ALTER USER bob IDENTIFIED WITH caching_sha2_password BY 'hunter2'", "ALTER USER bob IDENTIFIED WITH caching_sha2_password BY '[REDACTED:password]'"],
      ["SET PASSWORD FOR 'bob'@'%' = 'hunter2'", "SET PASSWORD FOR 'bob'@'%' = '[REDACTED:password]'"],
      ["SELECT PASSWORD('hunter2')", "SELECT PASSWORD('[REDACTED:password]')"],
    ],
    ["SELECT * FROM t WHERE status = 'open' AND note = 'password reset'", "ALTER ROLE app PASSWORD NULL", "ORDER BY 'x'", "UPDATE t SET password_hint = 'pet'", "it's the user's password"],
  );
});

test('PostgreSQL password files (.pgpass): the fifth field of a five-field line is the password', () => {
  masksAs(
    createMasker({ detectors: ['password'] }),
    [['db.internal:5432:appdb:app:S3cr3t Pw!\n*:*:*:replicator:An0ther\\:Pw\n', 'db.internal:5432:appdb:app:[REDACTED:password]\n*:*:*:replicator:[REDACTED:password]\n']],
    ['2024-05-16T08:12:22.620Z INFO a:1:b:c:d', 'fe80::1:2:3:4', 'a:1:b:c', 'host:port:db:user:pw', 'x 10:23:07:99:done', 'a:1:b:c:d:e'],
  );
});

test('config directives that give a secret after a space: Redis, .netrc, LDAP, Cisco IOS, BIND, Redis ACL, Dockerfile ENV', () => {
  const R = '[REDACTED:password]';
  masksAs(
    defaultMasker(),
    [
      ['bind 127.0.0.1\nrequirepass Sup3rS3cretRedis!\nmasterauth "pass with spaces"\n', `bind 127.0.0.1\nrequirepass ${R}\nmasterauth "${R}"\n`],
      ['machine api.example.com login deploy password N0tInAFormat123', `machine api.example.com login deploy password ${R}`],
      ['default login anonymous password guest@example.org', `default login anonymous password ${R}`],
      ['machine git.example.com\n  login ci\n  password qwerty\n', `machine git.example.com\n  login ci\n  password ${R}\n`],
      ['rootpw plainRootPw\nbindpw plainBindPw', `rootpw ${R}\nbindpw ${R}`],
      ['enable password Cisco123', `enable password ${R}`],
      ['enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0', 'enable secret 5 [REDACTED:password_hash]'],
      ['username admin privilege 15 password 0 CiscoPlain99', `username admin privilege 15 password 0 ${R}`],
      ['username admin secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM', 'username admin secret 9 [REDACTED:password_hash]'],
      ['neighbor 10.0.0.1 password 7 0822455D0A16', `neighbor 10.0.0.1 password 7 ${R}`],
      ['snmp-server community S3cr3tC0mm RO', `snmp-server community ${R} RO`],
      ['snmp-server user admin grp v3 auth sha AuthPass1 priv aes 128 PrivPass1', `snmp-server user admin grp v3 auth sha ${R} priv aes 128 ${R}`],
      ['tacacs-server host 10.1.1.1 key 7 TacKey99', `tacacs-server host 10.1.1.1 key 7 ${R}`],
      [' ip ospf message-digest-key 1 md5 7 OspfKey1', ` ip ospf message-digest-key 1 md5 7 ${R}`],
      [' key-string 7 06070E234D4B0B\n pre-shared-key CiscoPsk123', ` key-string 7 ${R}\n pre-shared-key ${R}`],
      ['key "tsig" { algorithm hmac-sha256; secret "c2VjcmV0a2V5MTIzNA=="; };', `key "tsig" { algorithm hmac-sha256; secret "${R}"; };`],
      ['key "tsig" {\n\talgorithm hmac-sha256;\n\tsecret "c2VjcmV0a2V5MTIzNA==";\n};', `key "tsig" {\n\talgorithm hmac-sha256;\n\tsecret "${R}";\n};`],
      ['user worker on >pw1 >pw2 ~jobs:* +@list', `user worker on >${R} >${R} ~jobs:* +@list`],
      ['userlist L\n  user admin insecure-password HaproxyPlain1', `userlist L\n  user admin insecure-password ${R}`],
      ['FROM node:20\nENV DB_PASSWORD hunter2\nENV PATH /usr/local/bin', `FROM node:20\nENV DB_PASSWORD ${R}\nENV PATH /usr/local/bin`],
      ['set -gx DB_PASSWORD fishPass1', `set -gx DB_PASSWORD ${R}`],
      ['fastcgi_param DB_PASS s3cret;', `fastcgi_param DB_PASS ${R};`],
      ['aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws configure set aws_secret_access_key [REDACTED:aws_secret_key]'],
      // What the line holds before the secret is still scanned, and comes first.
      ['machine h login ada@example.com password pw123', `machine h login a***@example.com password ${R}`],
    ],
    [
      'password changed for user bob',
      'Password expired',
      '   password combination.',
      'username and password login, session cookies',
      'username = password = None',
      'key = camelCase( key );',
      'key += key + key',
      'user that <code>bc</code> is ready',
      'user alice logged in from 10.0.0.1',
      'set self._password if they have data',
      'machine password is stored',
      'secret sharing',
      'enable password checks for all users',
      'requirepass',
      'ENV PATH /usr/bin',
    ],
  );
});

test('secrets inside escaped JSON, percent-encoded parameters, and an AWS secret key beside its access key id', () => {
  masksAs(
    defaultMasker(),
    [
      ['{\\"password\\":\\"hunter2xyz\\",\\"user\\":\\"ada\\"}', '{\\"password\\":\\"[REDACTED:password]\\",\\"user\\":\\"ada\\"}'],
      ['{"msg": "{\\"api_key\\": \\"9f8e7d6c5b4a39281716aabbccddeeff\\"}"}', '{"msg": "{\\"api_key\\": \\"[REDACTED:generic_secret]\\"}"}'],
      ['log="{\\\\\\"password\\\\\\": \\\\\\"hunter2xyz\\\\\\"}"', 'log="{\\\\\\"password\\\\\\": \\\\\\"[REDACTED:password]\\\\\\"}"'],
      ['{\\"password\\": \\"a\\\\\\"b\\", \\"x\\": 1}', '{\\"password\\": \\"[REDACTED:password]\\", \\"x\\": 1}'],
      ['q=password%3Dhunter2xyz%26user%3Dada', 'q=password%3D[REDACTED:password]%26user%3Dada'],
      ['next=%2Fcb%3Ftoken%3D9f8e7d6c5b4a39281716aabbccddeeff%26state%3Dabc', 'next=%2Fcb%3Ftoken%3D[REDACTED:generic_secret]%26state%3Dabc'],
      ['data=%7B%22password%22%3A%22hunter2xyz%22%2C%22user%22%3A%22ada%22%7D', 'data=%7B%22password%22%3A%22[REDACTED:password]%22%2C%22user%22%3A%22ada%22%7D'],
      ['ci,,AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,https://x', 'ci,,[REDACTED:aws_access_key],[REDACTED:aws_secret_key],https://x'],
      ['| AKIAIOSFODNN7EXAMPLE | wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY |', '| [REDACTED:aws_access_key] | [REDACTED:aws_secret_key] |'],
    ],
    [
      '{\\"user\\":\\"ada\\",\\"role\\":\\"admin\\"}',
      'width=100%, 50% done',
      'q=user%3Dada%26page%3D2',
      'data=%7B%22user%22%3A%22ada%22%7D',
    ],
  );
  assert.equal(defaultMasker().maskText('AKIAIOSFODNN7EXAMPLE then aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'), '[REDACTED:aws_access_key] then aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
});

test('short password flags of registry logins, MongoDB shells, sqlcmd and zip', () => {
  const R = '[REDACTED:password]';
  masksAs(
    defaultMasker(),
    [
      ['docker login -u ci -p DockerS3cret99 registry.example.com', `docker login -u ci -p ${R} registry.example.com`],
      ['podman login --username ci -p PodS3cret quay.io', `podman login --username ci -p ${R} quay.io`],
      ['mongosh --host db -u admin -p MongoS3cret', `mongosh --host db -u admin -p ${R}`],
      ['sqlcmd -S db -U sa -P SqlS3cret!', `sqlcmd -S db -U sa -P ${R}`],
      ['zip -P ZipS3cret out.zip a.txt', `zip -P ${R} out.zip a.txt`],
      ['7z a -pSevenS3cret out.7z dir', `7z a -p${R} out.7z dir`],
    ],
    ['docker run -p 8080:80 nginx', 'docker ps -p x', 'grep -P "a+" file', 'ssh -p 2222 host'],
  );
});

test('labels of several words key their values (forms, tickets, copied tables); prose and neutral labels do not', () => {
  masksAs(
    defaultMasker(),
    [
      ['Date of Birth: 14 March 1985\nWard: 3', 'Date of Birth: [REDACTED:personal_data]\nWard: 3'],
      ['Date of Birth: March 14, 1985', 'Date of Birth: [REDACTED:personal_data]'],
      ['Social Security Number: 123456789', 'Social Security Number: [REDACTED:personal_data]'],
      ["Driver's License: D1234567", "Driver's License: [REDACTED:personal_data]"],
      ['Tax ID: 12-3456789', 'Tax ID: [REDACTED:personal_data]'],
      ['National ID: AB 12 34 56 C', 'National ID: ** ** *4 56 C'],
      ['API Key: 9f8e7d6c5b4a39281716aabbccddeeff', 'API Key: [REDACTED:generic_secret]'],
      ['Secret Access Key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'Secret Access Key: [REDACTED:generic_secret]'],
      ['Phone Number: 020 7946 0958', 'Phone Number: *** **** 0958'],
    ],
    ['Build Number: 4411', 'Record Count: 12', 'Start Date: 2024-05-01', 'Step 2: run the tests', 'Date of Birth: not given', 'Date of Birth: see form 12 below', 'Ward: 3 Bed: 12'],
  );
});

test('connection-string keys (Azure Storage, Service Bus, Cosmos DB) are secrets; the key names beside them are not', () => {
  const storage = `DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=${'Zm9vYmFyYmF6cXV4'.repeat(5)}Zm9vYmE=;EndpointSuffix=core.windows.net`;
  const out = defaultMasker().maskText(storage);
  assert.ok(!out.includes('Zm9vYmFy'), out);
  assert.ok(out.includes('AccountName=acme;') && out.includes('EndpointSuffix=core.windows.net'), out);
  const bus = 'Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=';
  const masked = defaultMasker().maskText(bus);
  assert.ok(!masked.includes('Zm9vYmFy') && masked.includes('SharedAccessKeyName=RootManageSharedAccessKey;'), masked);
});

test('national identifiers: each format with its issuer check; look-alikes that fail it are left alone', () => {
  hits('uk_nino', ['AB123456C', 'AB 12 34 56 C', 'JG103759A', 'ZY999999D'], ['QQ123456C', 'BG123456A', 'AB123456E', 'AB12345C', 'xAB123456C', 'AB123456CX', 'ab123456c', 'AB 123456 C', 'AO123456A']);
  hits('ca_sin', ['130 692 544', '130-692-544', '999 999 998'], ['130 692 545', '046 454 286', '830 692 547', '130692544', '130 692 544 7', '12 130 692 544', '130 692-544']);
  hits('in_aadhaar', ['2345 6789 0124', '2345-6789-0124'], ['2345 6789 0123', '1345 6789 0124', '234567890124', '2345 6789 0124 1111', '2221 4739 7129 2530']);
  hits('br_cpf', ['529.982.247-25', '111.444.777-35'], ['529.982.247-24', '111.111.111-11', '52998224725', '529.982.247-250', '529-982-247-25']);
  hits('es_dni', ['12345678Z', '12345678-Z', 'X1234567L', 'Y0000000Z', '97345951S', '53771701R', '93174624Z'], ['12345678A', '1234567Z', '123456789Z', 'X12345678L', '12345678Zq', 'A1234567L']);
  // With the default set: a number that starts with 5 or 9 is first read as a Bitcoin key's start
  // (Wallet Import Format), and a failed look at that once ended the look at the number.
  assert.equal(defaultMasker().maskText('kyc check passed for 97345951S status=200'), 'kyc check passed for *****951S status=200');
  assert.equal(defaultMasker().maskText('1042,Ana,Silva,53771701R,2024-02-14'), '1042,Ana,Silva,*****701R,2024-02-14');
});

test('credit_card cut into equal chunks by one separator, as regexp_replace or string_agg can write it', () => {
  hits(
    'credit_card',
    ['4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1', '4.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1', '4,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1', '4_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1', '4/1/1/1/1/1/1/1/1/1/1/1/1/1/1/1', '41 11 11 11 11 11 11 11', '41111111 11111111', '411-111-111-111-111-1', '3 7 8 2 8 2 2 4 6 3 1 0 0 0 5', '4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1', '4  1  1  1  1  1  1  1  1  1  1  1  1  1  1  1', '41 - 11 - 11 - 11 - 11 - 11 - 11 - 11'],
    [
      '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 2', // Luhn
      '1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 2', // no issuer starts so
      '7 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1', // the tail of a longer number
      '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1', // 20 digits
      '41 111 11 111 11 111 11', // chunks of unequal length
      '4 1 1 1-1 1 1 1 1 1 1 1 1 1 1 1', // two separators
      '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1x',
      '7, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1', // the tail of a longer list
      '4, 1, 1, 1, 1, 1, 1, 1 1, 1, 1, 1, 1, 1, 1, 1', // the separator changes
    ],
  );
  const m = defaultMasker();
  assert.equal(m.maskText('card: 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 '), 'card: 4 1 1 1 * * * * * * * * 1 1 1 1 ');
  // Dates, versions, addresses and decimals are not cut into equal chunks of 13+ digits.
  for (const t of ['2026-11-27 12:00:00.123 10.0.0.1 v1.2.3 1,234,567.89 3.14159', '1.1.1.1 8.8.8.8 255.255.255.0', '1 2 3 4 5 6 7 8 9 10 11 12 13', 'ids: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14', 'In 2024, 12 of 15 runs passed.']) assert.equal(m.maskText(t), t);
});

test('credit_card: Luhn + IIN, 14–19 digits, spaces or dashes', () => {
  hits(
    'credit_card',
    ['4111111111111111', '4111 1111 1111 1111', '4111-1111-1111-1111', '5555 5555 5555 4444', '378282246310005', '3782 822463 10005', '6011111111111117', '30569309025904', '3530111333300000', '2223003122003222', '4111111111111111110'],
    ['4111111111111112', '4111 1111 1111 1112', '1234567812345670', '9111111111111111', '411111111111', 'x4111111111111111', '4111111111111111abc', '4111-1111-1111-1111-1111', '4006381333931', '550e8400-e29b-41d4-a716-446655440000'],
  );
});

test('us_ssn: dashed or spaced, invalid areas/groups/serials excluded', () => {
  hits('us_ssn', ['123-45-6789', '078-05-1121', '123 45 6789', '899-99-9999'], ['000-12-3456', '666-12-3456', '900-12-3456', '999-99-9999', '123-00-4567', '123-45-0000', '123456789', '1123-45-6789', '123-45-67890', '999-123-45-6789', '123-45-6789-01']);
});

test('iban: mod-97 with country lengths, compact or grouped', () => {
  hits('iban', ['DE89370400440532013000', 'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', 'GB82 WEST 1234 5698 7654 32', 'NL91ABNA0417164300'], ['DE89370400440532013001', 'DE8937040044053201300', 'XX89370400440532013000', 'de89370400440532013000', 'ADE89370400440532013000']);
});

test('email', () => {
  hits('email', ['jöhn@exämple.de', 'rené.müller@firma.ch', 'почта@пример.рф', '用户@例子.广告', 'ana@example.com', 'ana.silva+billing@mail.example.co.uk', 'a_b-c@sub.example.io', '12345@example.org'], ['git@github.com:acme/app.git', 'icon@2x.png', 'user@localhost', '@types/node', 'foo@bar', 'a@b.c']);
});

test('phone: E.164 and NANP/UK/FR national formats, not ids or timestamps', () => {
  hits(
    'phone',
    ['+14155552671', '+1 415 555 2671', '+1-415-555-2671', '(415) 555-2671', '415-555-2671', '415.555.2671', '1-800-555-0199', '+44 20 7946 0958', '020 7946 0958', '07700 900123', '+49 30 12345678', '01 23 45 67 89'],
    ['123-456-7890', '415-155-2671', '2024-01-15', '2024-01-15 10:23:45', '1700000000', '1700000000000', '+100', '555-2671', 'ticket 415-555', 'v1.2.3', '415-555-2671-9', 'PO 0400-0466-92', '10.0.0.1', '2 53 06 34 390 207 17', '12 01 23 45 67 89'],
  );
});

test('ipv4 and ipv6 are opt-in', () => {
  hits('ipv4', ['10.0.0.1', '192.168.1.254', '8.8.8.8'], ['256.1.1.1', '1.2.3', '1.2.3.4.5', 'v10.0.0.1']);
  hits('ipv6', ['2001:db8::1', 'fe80::1ff:fe23:4567:890a', '2001:0db8:85a3:0000:0000:8a2e:0370:7334'], ['10:23:45', 'std::vector', 'a:b']);
  const text = 'from 10.0.0.1 and 2001:db8::1';
  assert.equal(defaultMasker().maskText(text), text, 'default set leaves IP addresses alone');
});

const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
test('jwt: three base64url parts, header names alg', () => {
  hits('jwt', [jwt, `Bearer ${jwt}`], ['eyJhbGciOiJIUzI1NiJ9', 'eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', 'xeyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N']);
});

test('private_key: Bitcoin keys by their Base58Check (WIF and BIP-32 extended private keys); public keys and one-character changes stay', () => {
  hits(
    'private_key',
    [
      '5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ',
      'KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617',
      'L1aW4aubDFB7yfras2S1mN3bqg9nwySY8nkoLmJebSLD5BWv3ENZ',
      'xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi',
      'xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76',
    ],
    [
      '5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTK',
      'KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98618',
      'xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8',
      'xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHj',
      '1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa',
      'Kubernetes Linux KeyError v1 dev2',
    ],
  );
});

test('password: a wallet\'s recovery words under their names run to the last word', () => {
  masksAs(
    defaultMasker(),
    [
      ['mnemonic: legal winner thank year wave sausage worth useful legal winner thank yellow\nnetwork: main', 'mnemonic: [REDACTED:password]\nnetwork: main'],
      ['SEED_PHRASE=abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'SEED_PHRASE=[REDACTED:password]'],
      ['{"recovery_phrase": "legal winner thank year"}', '{"recovery_phrase": "[REDACTED:password]"}'],
    ],
    ['seed: 42', 'random_seed: 1234', 'Seed: 12 words', 'seed_url: https://example.com'],
  );
});

test('private_key: multi-line PEM blocks; without END the key body after the header is masked, and no more', () => {
  const key = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----';
  hits('private_key', [key, key.replace(/RSA /g, ''), key.replace(/RSA /g, 'OPENSSH '), key.replace(/RSA /g, 'ENCRYPTED ')], ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----']);
  const m = only('private_key');
  assert.equal(m('x -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg').out, 'x [REDACTED:private_key]');
  // Truncated keys: every body line goes, whatever separates them; what follows the body stays.
  const body = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\nNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ';
  for (const sep of ['\n', '\r\n', '\\n', '\\\\n', '\\r\\n', ' ']) {
    const text = `log: -----BEGIN PRIVATE KEY-----${sep}${body.split('\n').join(sep)}${sep}`;
    assert.equal(m(text + '\nnext line, kept.').out, `log: [REDACTED:private_key]${sep}\nnext line, kept.`, JSON.stringify(sep));
  }
  const encrypted = '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,1A2B3C4D5E6F7A8B\n\n' + body;
  assert.equal(m(`${encrypted}\n(truncated)`).out, '[REDACTED:private_key]\n(truncated)');
  // Cut short with an ellipsis, as a capped preview is: the cut line goes too.
  assert.equal(m(`-----BEGIN PRIVATE KEY-----\n${body.slice(0, 100)}… (truncated)`).out, '[REDACTED:private_key]… (truncated)');
  // A header mentioned in prose is masked alone; the prose goes on.
  assert.equal(m('The file starts with -----BEGIN RSA PRIVATE KEY----- and ends with its footer. Rotate it.').out, 'The file starts with [REDACTED:private_key] and ends with its footer. Rotate it.');
});

test('aws_access_key and aws_secret_key (40 chars next to an AWS secret key name)', () => {
  hits('aws_access_key', ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A'], ['AKIAIOSFODNN7EXAMPL', 'AKIAIOSFODNN7EXAMPLEX', 'xAKIAIOSFODNN7EXAMPLE', 'AKIAiosfodnn7example']);
  hits('aws_secret_key', ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"'], ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_region=us-east-1']);
});

test('github, gitlab, slack, stripe, google, npm tokens', () => {
  hits('github_token', ['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', 'gho_16C7e42F292c6912E7710c838347Ae178B4a', 'ghs_16C7e42F292c6912E7710c838347Ae178B4a', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV'], ['ghp_short', 'ghx_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx', 'x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']);
  hits('gitlab_token', ['glpat-xxxxxxxxxxxxxxxxxxxx', 'glpat-AbC_dEf-1234567890xyz'], ['glpat-short']);
  hits(
    'slack_token',
    ['xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', 'xoxp-1-2-3-abcdef123456', 'xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'],
    ['xoxz-123456789012-12345', 'xoxb-123', 'xapp-1-short', 'xapp-x-A0123456789-1234567890123-0123456789abcdef'],
  );
  hits('slack_webhook', ['https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'], ['https://hooks.slack.com/', 'https://slack.com/services/T0/B0/X']);
  hits('stripe_key', ['sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'rk_live_4eC39HqLyjWDarjtT1zdp7dc', 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'], ['pk_live_4eC39HqLyjWDarjtT1zdp7dc', 'sk_live_abc', 'desk_live_4eC39HqLyjWDarjtT1zdp7dc']);
  hits('google_api_key', ['AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI'], ['AIzaSyDdI0hCZtE6vySjMm', 'AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHIx']);
  hits('npm_token', ['npm_abcdefghijklmnopqrstuvwxyz0123456789'], ['npm_install', 'npm_abcdefghij']);
});

test('url_password: the password of a connection string, not the rest', () => {
  const m = only('url_password');
  assert.equal(m('postgres://app:s3cr3t!@db.example.com:5432/app').out, 'postgres://app:[REDACTED:url_password]@db.example.com:5432/app');
  assert.equal(m('redis://:hunter2@cache:6379').out, 'redis://:[REDACTED:url_password]@cache:6379');
  for (const x of ['postgres://app@db/app', 'postgres://app:${PGPASSWORD}@db/app', 'https://example.com/a:b@c', 'http://127.0.0.1:8080/x']) assert.equal(m(x).out, x);
});

test('password: password/secret/passwd assignments in code, config, JSON, SQL, DSNs', () => {
  hits(
    'password',
    ['password=hunter2', 'PASSWORD: "hunter 2"', '"password": "p@ss"', "db_password='x1'", 'client_secret: abc', 'passwd=letmein', 'password: letmein\n', 'pwd=abc123'],
    ['password=$1', 'password = ?', 'password=${DB_PASSWORD}', 'password: env:DB_PASSWORD', '"password": null', '"password": "****"', 'password_expires_at=2025-01-01', 'Reset your password: click the link', 'passport=X123', 'password=[REDACTED:password]'],
  );
});

test('generic_secret: high-entropy values next to token/api-key names', () => {
  hits(
    'generic_secret',
    ['api_key=8f14e45fceea167a5a36dedd4bea2543', '"access_token": "Zx81kPq0LmN3vB7cT2yW"', 'X-Api-Key: Zx81kPq0LmN3vB7cT2yW', 'Authorization: Basic dXNlcjpwYXNzd29yZA==', 'auth_token: a1b2c3d4e5f6'],
    ['max_tokens=4096', '"token_type": "bearer"', 'token_count: 1532', 'api_key=aaaaaaaaaaaa', 'api_key=short', 'token_url=https://auth.example.com/token', 'api_key_header=X-Api-Key'],
  );
});

test('a vendor token assigned to a secret key is named by its vendor', () => {
  const stats = new MaskStats();
  const out = defaultMasker().maskText('GITHUB_TOKEN=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', stats);
  assert.equal(out, 'GITHUB_TOKEN=[REDACTED:github_token]');
  assert.deepEqual(stats.toJSON(), [{ detector: 'github_token', count: 1 }]);
});

test('the issue example: card partial, ssn partial, github token redacted', () => {
  const m = defaultMasker();
  assert.equal(m.maskText('card: 4111 1111 1111 1111'), 'card: 4111 **** **** 1111');
  assert.equal(m.maskText('ssn: 123-45-6789'), 'ssn: ***-**-6789');
  assert.equal(m.maskText('api_key: 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'), 'api_key: [REDACTED:github_token]');
});

test('secrets keyed by XML elements and attributes, and by => (PHP, Ruby, Perl, hstore)', () => {
  hits(
    'password',
    [
      '<password>hunter2x</password>',
      '<Password>\n  hunter2x\n</Password>',
      '<ns2:Password><![CDATA[hunter2x]]></ns2:Password>',
      '<entry key="db.password">hunter2x</entry>',
      '<input type="password" name="password" value="hunter2x">',
      "'password' => 'hunter2x'",
      '"password"=>"hunter2x"',
      ':password => "hunter2x"',
    ],
    [
      '<password></password>',
      '<password/>',
      '<password>${DB_PASSWORD}</password>',
      '<passwordPolicy>min 8 chars</passwordPolicy>',
      '<label for="password">Password</label>',
      '<password-hint>the name of your first pet</password-hint>',
      '<password><value>x</value></password>',
      'const clean = password => password.trim();',
      "'password_min_length' => 12,",
    ],
  );
  hits('generic_secret', ['<add key="ApiKey" value="Zx81fQk2LmP0aR7tYw3B" />', '<apiToken>Zx81fQk2LmP0aR7tYw3B</apiToken>', 'api_key => "Zx81fQk2LmP0aR7tYw3B"'], ['<tokenCount>42</tokenCount>', '<max_tokens>100</max_tokens>', '<add key="Theme" value="Zx81fQk2LmP0aR7tYw3B" />']);
  // Every search from a `<` stops at the next `<`: a text of nothing but `<` and tag names stays linear.
  const m = defaultMasker();
  const evil = '<password '.repeat(200_000);
  const t0 = performance.now();
  assert.equal(m.maskText(evil), evil);
  assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
});

test('name/value pairs, long flags and YAML block scalars: the value of a secret-named setting', () => {
  hits(
    'password',
    [
      '{"name": "DB_PASSWORD", "value": "plainword1"}',
      '[{"Name":"password","Value":"plainword1"}]',
      '--db-password plainword1',
      "--password 'plain word'",
      'password: {noop}plainword1',
      'mysql -h db -uroot -pplainword1',
      'sshpass -p plainword1',
      'curl -u admin:plainword1',
      'curl --user admin:plainword1',
      'ldapsearch -x -D cn=admin -w plainword1',
      'redis-cli -h cache -a plainword1',
    ],
    ['{"name": "LOG_LEVEL", "value": "debug"}', '{"name": "DB_PASSWORD"}, {"value": "unrelated"}', '"name": "password_min_length", "value": "12"', '--password --verbose', '--password-file /run/secrets/db', '<option name="color" value="red">', '{"name": "feature.password-reset", "value": "enabled"}', 'ls -p dir', 'mysql -u root -p -h db', 'curl -u admin https://x', 'grep -u plainword1', 'redis-cli -a -n 1', 'docker login --password-stdin registry.example.com'],
  );
  const m = defaultMasker();
  // YAML: the indented lines after `|` or `>` are the value, and the YAML stays valid.
  assert.equal(m.maskText('db:\n  password: |\n    plainword1\n  user: app\n'), 'db:\n  password: |\n    [REDACTED:password]\n  user: app\n');
  assert.equal(m.maskText('token: >-\n  Zx81fQk2LmP0aR7tYw3B\n  Qw9Er8Ty7Ui6Op5As4Df\nnext: 1\n'), 'token: >-\n  [REDACTED:generic_secret]\nnext: 1\n');
  assert.equal(m.maskText('- name: DB_PASSWORD\n  value: plainword1\n- name: MODE\n  value: prod\n'), '- name: DB_PASSWORD\n  value: [REDACTED:password]\n- name: MODE\n  value: prod\n');
  assert.equal(m.maskText('password: |\n\nnext: 1\n'), 'password: |\n\nnext: 1\n', 'an empty block is no value');
});
