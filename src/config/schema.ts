/**
 * The `sluice.yaml` schema as users write it. zod gives every error a path to the bad key; the
 * loader (load-config.ts) turns the parsed document into the resolved `SluiceConfig`.
 */
import { z } from 'zod';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:6432');

const duration = z.union([z.string(), z.number()]);

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a name of letters, digits, "_", "-" or "." (at most 63 characters)');

const remoteIssuer = z
  .object({
    issuer: z.string().url('expected the issuer URL, e.g. https://token.actions.githubusercontent.com'),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Overrides discovery. */
    jwksUri: z.string().url().optional(),
    algorithms: z.array(z.string()).min(1).optional(),
    maxTokenLifetime: duration.optional(),
    /** Claim naming the subject when `sub` is not what people know the workload by. */
    subjectClaim: z.string().optional(),
  })
  .strict();

const localIssuer = z
  .object({
    local: z.literal(true),
    audience: z.string().min(1).optional(),
    maxTokenLifetime: duration.optional(),
  })
  .strict();

const roleMapping = z
  .object({
    name,
    /** CEL over `claims`, `issuer`, `subject`. Omitted: the role is granted only to local tokens minted for it. */
    when: z.string().min(1).optional(),
    /** Restrict to one issuer URL (or `local`). */
    issuer: z.string().optional(),
    /** Roles that may approve requests (approvals issue); agents never can. */
    approver: z.boolean().optional(),
    /** Roles that may read the audit log (sessions, replay) through the HTTP API and the web console. */
    auditor: z.boolean().optional(),
    /** For sessions opened under this role, in place of identity.tokenExpiryGrace (at most 24h). */
    tokenExpiryGrace: duration.optional(),
  })
  .strict();

const tlsFiles = z
  .object({
    cert: z.string().min(1),
    key: z.string().min(1),
  })
  .strict();

const maskStyle = z.string().min(1);

export const maskSchema = z
  .object({
    /** Glob on `schema.table.column`, `table.column` or a bare column name → replacement style. */
    columns: z.record(z.string(), maskStyle).optional(),
    /** Detector names applied to every other text value; `all` or `default` select groups. */
    detectors: z.array(z.string()).optional(),
    /** Per-detector replacement style overrides. */
    styles: z.record(z.string(), maskStyle).optional(),
    /** Key for `hash` style (keyed HMAC), a secret reference. */
    hashKey: z.string().optional(),
    /** Binary-format values of non-text types: pass them or null the column. */
    binary: z.enum(['pass', 'null']).optional(),
    custom: z
      .array(
        z
          .object({
            name,
            pattern: z.string().min(1),
            flags: z.string().regex(/^[imsu]*$/).optional(),
            validator: z.string().optional(),
            style: maskStyle.optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

const postgresUpstream = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(5432),
    database: z.string().min(1),
    user: z.string().min(1),
    password: z.string().optional(),
    /** disable | require (TLS, no verification) | verify-full (default when a CA is given). */
    sslmode: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']).default('disable'),
    ca: z.string().optional(),
    connectTimeout: duration.optional(),
  })
  .strict();

const httpUpstream = z
  .object({
    url: z.string().url(),
    ca: z.string().optional(),
    insecureSkipVerify: z.boolean().optional(),
    timeout: duration.optional(),
    auth: z
      .union([
        z.object({ bearer: z.string() }).strict(),
        z.object({ basic: z.object({ user: z.string(), password: z.string() }).strict() }).strict(),
        z.object({ header: z.object({ name: z.string(), value: z.string() }).strict() }).strict(),
        z.object({ clientCert: z.object({ cert: z.string(), key: z.string() }).strict() }).strict(),
      ])
      .optional(),
  })
  .strict();

const connection = z.discriminatedUnion('type', [
  z
    .object({
      name,
      type: z.literal('postgres'),
      upstream: postgresUpstream,
      mask: maskSchema.optional(),
    })
    .strict(),
  z
    .object({
      name,
      type: z.literal('http'),
      upstream: httpUpstream,
      /** Route by path prefix (default `/http/<name>`) or by Host header. */
      pathPrefix: z.string().startsWith('/').optional(),
      host: z.string().optional(),
      mask: maskSchema.optional(),
      maxRequestBytes: z.number().int().positive().optional(),
      maxResponseBytes: z.number().int().positive().optional(),
      /** How long a `review` request is held for its approval before Sluice answers 202 (retry later). */
      approvalWait: duration.optional(),
      /** Upstream cookies: kept by Sluice per agent session (`hold`, default) or passed to the agent (`pass`). */
      cookies: z.enum(['hold', 'pass']).optional(),
    })
    .strict(),
  z
    .object({
      name,
      type: z.literal('kubernetes'),
      upstream: httpUpstream,
      pathPrefix: z.string().startsWith('/').optional(),
      mask: maskSchema.optional(),
      maxRequestBytes: z.number().int().positive().optional(),
      /** Cap on a buffered response body and on one line of a watch or log stream. */
      maxResponseBytes: z.number().int().positive().optional(),
      /** How long a `review` request is held for its approval before Sluice answers 403 (retry later). */
      approvalWait: duration.optional(),
    })
    .strict(),
]);

const ruleList = z.union([z.literal('*'), z.array(z.string().min(1)).min(1)]);

const approvalSpec = z
  .object({
    approvers: z.array(z.string().min(1)).min(1).optional(),
    required: z.number().int().min(1).max(10).optional(),
    timeout: duration.optional(),
    /** Approval opens a window for the same statement fingerprint. */
    grant: duration.optional(),
    explain: z.boolean().optional(),
  })
  .strict();

const rule = z
  .object({
    name: name.optional(),
    allow: ruleList.optional(),
    deny: ruleList.optional(),
    review: ruleList.optional(),
    /** CEL over identity, action and protocol facts (`sql`, `http`, `k8s`). */
    when: z.string().min(1).optional(),
    /** HTTP/Kubernetes: path globs this rule covers. */
    paths: z.array(z.string().min(1)).optional(),
    approval: approvalSpec.optional(),
    /** Kubernetes: reveal Secret values to this rule's matches. */
    reveal: z.boolean().optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const effects = [r.allow, r.deny, r.review].filter((e) => e !== undefined).length;
    if (effects !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a rule has exactly one of allow, deny or review' });
    }
  });

const policy = z
  .object({
    /** A role name, or '*' for every role. */
    role: z.union([name, z.literal('*')]),
    /** A connection name, or '*' for every connection. */
    connection: z.union([name, z.literal('*')]),
    rules: z.array(rule).min(1),
  })
  .strict();

const store = z.union([
  z.object({ sqlite: z.string().min(1) }).strict(),
  z.object({ postgres: z.string().min(1) }).strict(),
]);

export const auditSchema = z
  .object({
    /** Signed checkpoint every N events … */
    checkpointEvery: z.number().int().positive().optional(),
    /** … or every T. */
    checkpointInterval: duration.optional(),
    /** Signing key path (kept apart from the store); default `<dataDir>/audit-signing.key`. */
    signingKey: z.string().optional(),
    /** Maximum bytes of masked result preview kept per statement. */
    previewBytes: z.number().int().min(0).optional(),
    /** Maximum rows of masked result preview kept per statement. */
    previewRows: z.number().int().min(0).optional(),
    /** Group-commit window. */
    commitWindow: duration.optional(),
    retention: duration.optional(),
    /** Only `refuse` is accepted: a command whose record cannot be written is refused. */
    onFailure: z.literal('refuse').optional(),
    /**
     * SQLite store sync level. `normal` (default) survives a killed process; `full` also survives
     * power loss at the cost of an fsync per group commit.
     */
    synchronous: z.enum(['normal', 'full']).optional(),
    /** Checkpoint origin line (C2SP tlog-checkpoint); default `sluice.local/audit/<log id>`. */
    origin: z.string().regex(/^[^\s]+$/, 'expected an origin without spaces, e.g. audit.example.com/sluice').optional(),
    /**
     * Live copies of committed records (best effort on top of the durable log, at least once).
     * Checked again when the streams start: scheme, loopback rule, port, header secrets.
     */
    stream: z
      .array(
        z.union([
          z
            .object({
              http: z.string().url(),
              format: z.enum(['jsonl', 'ocsf', 'cef']).optional(),
              /** Values may be `env:`/`file:` secret references. */
              headers: z.record(z.string(), z.string()).optional(),
              /** Allow http:// to a non-loopback host (records would cross the network in cleartext). */
              insecure: z.boolean().optional(),
            })
            .strict(),
          z.object({ syslog: hostPort, format: z.enum(['jsonl', 'ocsf', 'cef']).optional(), protocol: z.enum(['udp', 'tcp']).optional() }).strict(),
        ]),
      )
      .optional(),
  })
  .strict();

export const approvalsSchema = z
  .object({
    /** Public URL of the gateway's HTTP listener, used in notices and notifications. */
    publicUrl: z.string().url().optional(),
    defaultTimeout: duration.optional(),
    notify: z
      .array(
        z.union([
          z.object({ slack: z.string().url() }).strict(),
          z.object({ webhook: z.string().url(), secret: z.string().optional() }).strict(),
        ]),
      )
      .optional(),
  })
  .strict();

export const configSchema = z
  .object({
    listen: z
      .object({
        postgres: hostPort.optional(),
        http: hostPort.optional(),
      })
      .strict()
      .default({}),
    /** Node name recorded in audit events. */
    node: z.string().optional(),
    dataDir: z.string().optional(),
    store: store.default({ sqlite: './data/sluice.db' }),
    tls: tlsFiles.optional(),
    /** Allow cleartext token auth from non-loopback clients without TLS. Off: refused. */
    allowInsecureRemote: z.boolean().optional(),
    limits: z
      .object({
        maxConnections: z.number().int().positive().optional(),
        maxMessageBytes: z.number().int().min(1024).optional(),
        idleTimeout: duration.optional(),
      })
      .strict()
      .optional(),
    identity: z
      .object({
        issuers: z.array(z.union([remoteIssuer, localIssuer])).min(1),
        roles: z.array(roleMapping).default([]),
        clockSkew: duration.optional(),
        maxTokenLifetime: duration.optional(),
        maxTokenBytes: z.number().int().min(256).max(65536).optional(),
        /** `end` (default): a session, stream or WebSocket ends `tokenExpiryGrace` after its token expires; `keep`: it lives on. */
        onTokenExpiry: z.enum(['end', 'keep']).optional(),
        /** How long past its token's expiry a session may run (default 1h, at most 24h). */
        tokenExpiryGrace: duration.optional(),
        /** How long a PostgreSQL statement running at that end may go on before it is cancelled (default 60s, at most 1h). */
        tokenExpiryDrain: duration.optional(),
      })
      .strict(),
    connections: z.array(connection).default([]),
    policies: z.array(policy).default([]),
    audit: auditSchema.optional(),
    approvals: approvalsSchema.optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
export type RawConnection = z.infer<typeof connection>;
export type RawRule = z.infer<typeof rule>;
export type RawMask = z.infer<typeof maskSchema>;
export type RawIssuer = z.infer<typeof remoteIssuer> | z.infer<typeof localIssuer>;
