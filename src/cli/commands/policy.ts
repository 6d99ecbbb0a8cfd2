/**
 * `sluice policy check`: decide a SQL text, or an HTTP or Kubernetes request, against the config's
 * policies without a server, the same way the gateway would (the same parser, the same request
 * facts), and print the decision with those facts as JSON.
 */
import { defaultConfigPath, loadConfigFile, Secret, type RawMask } from '../../config/index.js';
import { SluiceError } from '../../errors.js';
import { createMasker, defaultMasker, type Masker } from '../../masking/index.js';
import type { Decision, Identity } from '../../pipeline/types.js';
import { BUILTIN_RULES, createPolicyEngine, initSqlParser, maskedColumnViolation, REVEAL_PROFILE, type PolicyEngine, type SqlDecisions } from '../../policy/index.js';
import { httpAction, httpFacts, parseRequestTarget, readJsonBody } from '../../policy/http/index.js';
import { k8sAction, k8sFacts, k8sPatchType, parseRequestInfo, readK8sObject } from '../../policy/k8s/index.js';
import { parseFlags, runSubcommand, UsageError, writeJson, type CliIo } from '../io.js';

const HELP = `Usage:
  sluice policy check --config F --role R --connection C --sql "SQL" [--subject S]
                      [--claims JSON] [--model M]
  sluice policy check --config F --role R --connection C --request "METHOD /path?query"
                      [--header "Name: value" ...] [--body TEXT] [--subject S] [--claims JSON]
                      [--model M]

check    Decide SQL (one or more statements; "-" reads it from stdin) for role R on
         connection C and print JSON:
           {"effect": "allow"|"deny"|"review", "rule", "reason", "policyVersion",
            "readOnly", "facts": {…}}
         With several statements, "facts" is an array and "statements" lists each
         statement's text and decision; the overall effect is deny if any statement is
         denied, else review if any needs review, else allow.
         --subject, --claims (a JSON object) and --model fill the identity that CEL
         "when" conditions see (identity.subject, identity.claims, identity.model).

For an HTTP or Kubernetes connection, --request names the request as the upstream sees it
(the path after Sluice's /http/<name> or /k8s/<name> prefix) and prints
  {"effect", "rule", "reason", "policyVersion", "request", "facts": {…}}
with the facts CEL sees: http.method/path/query/headers/host, or for Kubernetes the
attributes the API server derives (k8s.verb, resource, subresource, namespace, name, …)
and "reveal" when the deciding rule shows Secret values. --header adds a request header
(repeatable); credentials (authorization, cookie) never become facts. --body gives the request
body as the connector reads it for rules that use it: http.json on an HTTP connection (a
JSON-RPC or MCP call: "tools/call" and the tool's name), k8s.object on a Kubernetes one (the
manifest or patch of a create, update or patch; its type from --header "Content-Type: …",
JSON by default). A body with a repeated key, or one that does not parse, is refused as the
connector refuses it (rule request-body-unreadable).

For a PostgreSQL connection the check also applies the connection's masking as the gateway
does: a statement that computes on a masked column (upper(password), a filter, a set
operation, a whole row as a value) is denied by "masked-column-use". The decisions that need a
live session (sql-protocol-statement, sql-untracked-statement, sql-copy-unmaskable, and
masked-column-use for a sort by position over SELECT *, which the upstream describes) are not
shown.

Rule lists name SQL kinds: select insert update delete merge ddl dcl copy call do set
transaction explain prepare execute listen lock utility, plus show, side-effect, the
aliases read (select, explain, show) and write (insert, update, delete, merge), or '*'.
An allow rule must cover every verb a statement can perform; unparseable SQL is always
denied.

Exit status: 0 allow, 3 deny, 4 review, 2 usage error, 1 config or other error.
--config defaults to $SLUICE_CONFIG, else ./sluice.yaml. Upstream secrets (env:…) need
not be set: the check never connects anywhere.
`;

export const EXIT_DENY = 3;
export const EXIT_REVIEW = 4;

/** SQL read from stdin: generous for a script, bounded for a mistake. */
const MAX_STDIN_BYTES = 16 * 1024 * 1024;

export async function run(args: string[], io: CliIo): Promise<number> {
  return runSubcommand('policy', args, io, HELP, { check: runCheck });
}

async function runCheck(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, {
    config: { type: 'string' },
    role: { type: 'string' },
    connection: { type: 'string' },
    sql: { type: 'string' },
    request: { type: 'string' },
    header: { type: 'string', multiple: true },
    body: { type: 'string' },
    subject: { type: 'string' },
    claims: { type: 'string' },
    model: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    io.stdout.write(HELP);
    return 0;
  }
  if (values.role === undefined) throw new UsageError('policy check needs --role');
  if (values.connection === undefined) throw new UsageError('policy check needs --connection');
  if (values.sql !== undefined && values.request !== undefined) throw new UsageError('policy check takes --sql or --request, not both');
  if (values.sql === undefined && values.request === undefined) {
    throw new UsageError('policy check needs --sql "SQL" (or --sql - to read stdin), or --request "METHOD /path" for an HTTP or Kubernetes connection');
  }
  const claims = parseClaims(values.claims);

  const config = loadConfigFile(defaultConfigPath(values.config, io.env), { env: tolerantEnv(io.env) });
  const role = values.role;
  const connection = values.connection;
  if (!config.identity.roles.some((r) => r.name === role)) {
    throw new SluiceError('SLUICE_ROLE_NOT_GRANTED', `role ${role} is not defined under identity.roles`);
  }
  const conn = config.connections.find((c) => c.name === connection);
  if (conn === undefined) {
    throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `connection ${connection} is not defined under connections`);
  }
  if (values.request !== undefined && conn.type === 'postgres') throw new UsageError(`connection ${connection} is a postgres connection: check SQL with --sql`);
  if (values.sql !== undefined && conn.type !== 'postgres') throw new UsageError(`connection ${connection} is a ${conn.type} connection: check a request with --request "METHOD /path"`);

  await initSqlParser();
  const engine = createPolicyEngine(config);
  const identity: Identity = {
    issuer: 'sluice-policy-check',
    subject: values.subject ?? 'policy-check',
    claims,
    roles: [role],
    ...(values.model !== undefined ? { model: values.model } : {}),
    expiresAt: Math.floor(Date.now() / 1000) + 300,
  };
  if (values.body !== undefined && values.request === undefined) throw new UsageError('--body goes with --request');
  if (values.request !== undefined) return checkRequest(io, engine, identity, role, connection, conn.type === 'kubernetes', values.request, values.header ?? [], values.body);
  const sql = values.sql === '-' ? await readStdin(io) : (values.sql as string);
  const result = withMaskedColumns(engine.decideAll(identity, role, connection, sql), checkMasker(conn.mask, conn.name));
  const single = result.statements.length === 1 ? result.statements[0] : undefined;
  writeJson(io, {
    effect: result.decision.effect,
    rule: result.decision.rule,
    reason: result.decision.reason,
    ...(result.decision.approval !== undefined ? { approval: result.decision.approval } : {}),
    policyVersion: engine.version,
    readOnly: engine.isReadOnly(role, connection),
    ...(result.error !== undefined ? { error: result.error } : {}),
    facts: single !== undefined ? single.facts : result.statements.map((s) => s.facts),
    ...(single === undefined
      ? {
          statements: result.statements.map((s) => ({
            text: s.text,
            effect: s.decision.effect,
            rule: s.decision.rule,
            reason: s.decision.reason,
          })),
        }
      : {}),
  });
  return exitFor(result.decision.effect);
}

/**
 * The connection's masker, for which columns it masks. Its hash key only shapes masked values,
 * which a check never produces, so a key that is not set here (`env:` unset) is stood in for.
 */
function checkMasker(mask: RawMask | undefined, name: string): Masker {
  if (mask === undefined) return defaultMasker();
  return createMasker(mask, { secret: () => new Secret('policy-check-stand-in-key', 'policy check'), where: `connections.${name}.mask` });
}

/** The gateway's masked-column-use refusal, over the rules' decision (per statement, then overall). */
function withMaskedColumns(result: SqlDecisions, masker: Masker): SqlDecisions {
  if (masker.inert || result.decision.effect === 'deny') return result;
  let refused: Decision | undefined;
  const n = result.statements.length;
  const statements = result.statements.map((s, i) => {
    if (s.decision.effect === 'deny') return s;
    const reason = maskedColumnViolation(s.facts, (column, tables) => masker.protectsColumn(column, tables), (tables) => masker.hasTableRules(tables));
    if (reason === undefined) return s;
    const decision: Decision = { effect: 'deny', rule: BUILTIN_RULES.maskedColumnUse, reason };
    refused ??= n > 1 ? { ...decision, reason: `statement ${i + 1} of ${n}: ${reason}` } : decision;
    return { ...s, decision };
  });
  return refused === undefined ? result : { ...result, decision: refused, statements };
}

function exitFor(effect: 'allow' | 'deny' | 'review'): number {
  switch (effect) {
    case 'allow':
      return 0;
    case 'review':
      return EXIT_REVIEW;
    default:
      return EXIT_DENY;
  }
}

/** Decide one HTTP or Kubernetes request exactly as the connector describes it to the policy. */
function checkRequest(io: CliIo, engine: PolicyEngine, identity: Identity, role: string, connection: string, kubernetes: boolean, request: string, headerFlags: readonly string[], body?: string): number {
  const m = /^([A-Za-z]+)\s+(\S+)$/.exec(request.trim());
  if (m === null) throw new UsageError('--request must be "METHOD /path?query", e.g. --request "GET /v1/orders?limit=5"');
  const method = (m[1] as string).toUpperCase();
  const target = parseRequestTarget(m[2] as string);
  const headers: Record<string, string> = {};
  for (const h of headerFlags) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header must be "Name: value", got ${JSON.stringify(h)}`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  const text = `${method} ${target.path}${target.rawQuery === '' ? '' : `?${target.rawQuery}`}`;
  let facts: unknown;
  let decision;
  if (kubernetes) {
    const info = parseRequestInfo(method, target.path, target.query);
    const contentType = headers['content-type'] ?? 'application/json';
    const object = body !== undefined ? readK8sObject(Buffer.from(body, 'utf8'), contentType) : undefined;
    const patchType = k8sPatchType(method, contentType);
    const written = { ...(patchType !== undefined ? { patchType } : {}), ...(object?.value !== undefined ? { object: object.value } : {}) };
    facts = k8sFacts(info, written);
    decision =
      object?.error !== undefined
        ? unreadableBody(object.error)
        : engine.decide(identity, role, k8sAction(connection, info, text, written));
  } else {
    const json = body !== undefined ? readJsonBody(Buffer.from(body, 'utf8')) : undefined;
    const f = httpFacts(method, target, headers, [], json?.value);
    facts = f;
    decision =
      json?.error !== undefined
        ? unreadableBody(json.error)
        : engine.decide(identity, role, httpAction(connection, f, target.rawQuery));
  }
  writeJson(io, {
    effect: decision.effect,
    rule: decision.rule,
    reason: decision.reason,
    ...(decision.approval !== undefined ? { approval: decision.approval } : {}),
    ...(kubernetes ? { reveal: decision.maskProfile === REVEAL_PROFILE } : {}),
    policyVersion: engine.version,
    request: text,
    facts,
  });
  return exitFor(decision.effect);
}

/** The decision the connector makes for a body its rules read but cannot: refused (400) before any rule. */
function unreadableBody(err: SluiceError): Decision {
  return { effect: 'deny', rule: BUILTIN_RULES.requestBody, reason: err.message };
}

function parseClaims(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new UsageError('--claims must be a JSON object, e.g. --claims \'{"repository":"acme/app"}\'');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError('--claims must be a JSON object, e.g. --claims \'{"repository":"acme/app"}\'');
  }
  return value as Record<string, unknown>;
}

/**
 * The check never connects upstream, so an `env:` secret reference that is not set (the upstream
 * password on a developer's laptop) must not stop it. Unset names read as empty strings here only.
 */
function tolerantEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return new Proxy(env, {
    get: (target, key) => (typeof key === 'string' ? (target[key] ?? '') : undefined),
  });
}

async function readStdin(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > MAX_STDIN_BYTES) throw new UsageError(`SQL on stdin is larger than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
