/**
 * The decide stage: ordered rules per role and connection, first match wins, default deny.
 *
 * Rules match on a statement's *effective verbs* (see sql/verbs.ts), not its headline kind:
 * an allow rule matches only when it covers every verb, a deny or review rule when it names any
 * of them. So `allow: [select]` can never pass `WITH d AS (DELETE …) SELECT …` or
 * `SELECT nextval('s')`, and `deny: [delete]` catches both a DELETE and a MERGE that deletes.
 *
 * Before any rule: unparseable or unrecognised SQL is denied (no rule, not even `'*'`, can allow
 * it), so is a setting that would make the server read SQL differently from the parser
 * (sql/parser-safety.ts), and read-only roles are held to their read-only session
 * (read-only-guard.ts).
 */
import { createHash } from 'node:crypto';
import type { SluiceConfig } from '../config/index.js';
import type { RawRule } from '../config/index.js';
import { SluiceError, type SluiceErrorCode } from '../errors.js';
import { compileCondition, ConditionFailure, toCelValue, type Condition } from '../pipeline/cel.js';
import type { Action, Decision, Effect, Identity, SqlFacts } from '../pipeline/types.js';
import { readOnlyViolation } from './read-only-guard.js';
import { parserSafetyViolation } from './sql/parser-safety.js';
import { analyzeSql, type StatementFacts } from './sql/facts.js';
import { expandRuleList, READ_ONLY_VERBS, type VerbList } from './vocabulary.js';
import { compilePathPattern, type PathPattern } from './http/path-pattern.js';
import { isJsonRpcBatch } from './http/facts.js';
import { expandHttpRuleList } from './http/verbs.js';
import { expandK8sRuleList } from './k8s/verbs.js';

/** Built-in rule names that appear in decisions and audit records. */
export const BUILTIN_RULES = {
  defaultDeny: 'default-deny',
  unparseable: 'sql-unparseable',
  unknownStatement: 'sql-unknown-statement',
  readOnlyGuard: 'read-only-guard',
  /** Settings that would make the server read statement text differently from Sluice's parser. */
  parserSafety: 'sql-parser-safety',
  emptyQuery: 'empty-query',
  /** Allows transaction control, DEALLOCATE and session resets that no rule names (see `isSessionControl`). */
  sessionControl: 'session-control',
  /** PostgreSQL connector: SQL EXECUTE/FETCH/MOVE of a protocol statement or portal that is not a pure read. */
  protocolStatement: 'sql-protocol-statement',
  /** PostgreSQL connector: Execute of a portal or statement Sluice did not see parsed and bound. */
  untrackedStatement: 'sql-untracked-statement',
  /** PostgreSQL connector: a masked column computed on, a whole row as a value, or renamed columns computed on. */
  maskedColumnUse: 'masked-column-use',
  /** A write (UPDATE, MERGE; HTTP PUT/PATCH; Kubernetes create/replace/patch) carrying a value Sluice masked. */
  maskedValueWrite: 'masked-value-write',
  /** PostgreSQL connector: COPY … TO STDOUT whose output columns could not be described for masking. */
  copyUnmaskable: 'sql-copy-unmaskable',
  /** HTTP and Kubernetes connectors: a body rules read (`http.json`, `k8s.object`) that cannot be read, or could be read two ways (refused, 400). */
  requestBody: 'request-body-unreadable',
} as const;

/**
 * Bumped whenever matching semantics change (verbs, aliases, the read-only function list), so the
 * recorded policy version changes with them even when the config file does not.
 */
const POLICY_SEMANTICS = 5;

/** Most (role, connection) pairs whose rule lists are memoised; both come from config, so this is generous. */
const MAX_MEMO = 4096;

export interface SqlStatementDecision {
  /** The statement's own text. */
  readonly text: string;
  readonly facts: StatementFacts;
  readonly decision: Decision;
}

export interface SqlDecisions {
  /** Deny if any statement is denied, else review if any needs review, else allow. */
  readonly decision: Decision;
  readonly statements: readonly SqlStatementDecision[];
  /** The parser's error message when the text does not parse. */
  readonly error?: string;
}

export interface PolicyEngine {
  /** `sha256:<hex>` of the policies and matching semantics; recorded with every decision in audit. */
  readonly version: string;
  /** Decide one action (one SQL statement; text with several statements is decided as a whole). */
  decide(identity: Identity, role: string, action: Action): Decision;
  /** Decide every statement of `sql` for `connection`. */
  decideAll(identity: Identity, role: string, connection: string, sql: string): SqlDecisions;
  /** True when the role's rules for `connection` allow and review only read-only verbs. */
  isReadOnly(role: string, connection: string): boolean;
}

interface CompiledRule {
  readonly name: string;
  readonly effect: Effect;
  /** The rule list read as SQL verbs (aliases `read`/`write` are SQL's). */
  readonly verbs: VerbList;
  /** The same list read as HTTP methods and as Kubernetes verbs (their own aliases). */
  readonly httpVerbs: VerbList;
  readonly k8sVerbs: VerbList;
  readonly condition?: Condition;
  /** HTTP/Kubernetes path globs: SQL actions skip such rules; HTTP and Kubernetes actions must match one. */
  readonly hasPaths: boolean;
  readonly paths: readonly PathPattern[];
  readonly approval?: Readonly<Record<string, unknown>>;
  /** Kubernetes: Secret values are shown unmasked to requests this rule allows. */
  readonly reveal: boolean;
}

/** `Decision.maskProfile` of a rule with `reveal: true`. */
export const REVEAL_PROFILE = 'reveal';

interface CompiledPolicy {
  readonly role: string;
  readonly connection: string;
  readonly rules: readonly CompiledRule[];
}

interface RuleSet {
  readonly rules: readonly CompiledRule[];
  readonly readOnly: boolean;
}

export type PolicyConfig = Pick<SluiceConfig, 'policies'> & { readonly connections?: SluiceConfig['connections'] };

/**
 * Build the engine once at startup. Throws SLUICE_CONFIG_INVALID naming the bad key for an unknown
 * SQL kind in a rule list or a CEL condition that does not compile.
 */
export function createPolicyEngine(config: PolicyConfig): PolicyEngine {
  const connections = config.connections ?? [];
  const connectionType = new Map(connections.map((c) => [c.name, c.type]));
  const allPostgres = connections.every((c) => c.type === 'postgres');
  const policies: CompiledPolicy[] = config.policies.map((p, i) => {
    const type = connectionType.get(p.connection);
    // SQL vocabulary is enforced where the rules can only meet SQL; typos there must not silently never match.
    const strictSql = p.connection === '*' ? allPostgres : type === undefined || type === 'postgres';
    const strict = { sql: strictSql, http: type === 'http' && p.connection !== '*', k8s: type === 'kubernetes' && p.connection !== '*' };
    return {
      role: p.role,
      connection: p.connection,
      rules: p.rules.map((r, j) => compileRule(r, `policies[${i}].rules[${j}]`, `${p.role}/${p.connection}#${j}`, strict)),
    };
  });
  const version = `sha256:${createHash('sha256')
    .update(stableStringify({ semantics: POLICY_SEMANTICS, policies: config.policies }))
    .digest('hex')}`;

  const memo = new Map<string, RuleSet>();
  const ruleSet = (role: string, connection: string): RuleSet => {
    const key = `${role}\u0000${connection}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const rules: CompiledRule[] = [];
    for (const p of policies) {
      if ((p.role === role || p.role === '*') && (p.connection === connection || p.connection === '*')) rules.push(...p.rules);
    }
    const set: RuleSet = { rules, readOnly: rules.every(isReadOnlyRule) };
    if (memo.size < MAX_MEMO) memo.set(key, set);
    return set;
  };

  const decide = (identity: Identity, role: string, action: Action): Decision => {
    if (action.kind === 'http' || action.kind === 'k8s') return decideVerbs(ruleSet(role, action.connection), identity, role, action, requestVerbs(action), undefined);
    if (action.kind !== 'sql') return decideVerbs(ruleSet(role, action.connection), identity, role, action, [action.verb.toLowerCase()], undefined);
    const facts = action.sql;
    if (facts === undefined) {
      // No facts from the connector: analyse the text here, all statements as one.
      return decideAll(identity, role, action.connection, action.text).decision;
    }
    return decideStatement(identity, role, action, facts);
  };

  const decideStatement = (identity: Identity, role: string, action: Action, facts: SqlFacts): Decision => {
    if (facts.kind === 'unknown') {
      const parseError = (facts as Partial<StatementFacts>).parseError;
      if (parseError !== undefined || facts.statement === 'ParseError') {
        return {
          effect: 'deny',
          rule: BUILTIN_RULES.unparseable,
          reason: `SQL could not be parsed (${parseError ?? 'syntax error'}); unparseable statements are always denied`,
        };
      }
      return {
        effect: 'deny',
        rule: BUILTIN_RULES.unknownStatement,
        reason: `statement ${facts.statement} is not recognised; unrecognised statements are always denied`,
      };
    }
    const unsafe = parserSafetyViolation(facts);
    if (unsafe !== undefined) return { effect: 'deny', rule: BUILTIN_RULES.parserSafety, reason: unsafe };
    const set = ruleSet(role, action.connection);
    if (set.readOnly) {
      const why = readOnlyViolation(facts);
      if (why !== undefined) return { effect: 'deny', rule: BUILTIN_RULES.readOnlyGuard, reason: `role ${role} is read-only on ${action.connection}: ${why}` };
    }
    return decideVerbs(set, identity, role, action, verbsOf(facts), facts, isSessionControl(facts));
  };

  const decideAll = (identity: Identity, role: string, connection: string, sql: string): SqlDecisions => {
    const analysis = analyzeSql(sql);
    const statements = analysis.statements.map((facts, i): SqlStatementDecision => {
      const text = analysis.texts[i] ?? sql;
      return { text, facts, decision: decideStatement(identity, role, sqlAction(connection, text, facts), facts) };
    });
    const result: SqlDecisions = { decision: combine(statements), statements };
    return analysis.error !== undefined ? { ...result, error: analysis.error } : result;
  };

  return {
    version,
    decide,
    decideAll,
    isReadOnly: (role, connection) => ruleSet(role, connection).readOnly,
  };
}

/** The Action a connector hands to `decide` for one parsed statement. */
export function sqlAction(connection: string, text: string, facts: StatementFacts): Action {
  const objects = [...new Set([...facts.tablesRead, ...facts.tablesWritten])];
  return { connection, kind: 'sql', verb: facts.kind, objects, text, sql: facts };
}

/** The error code a connector reports for a decision that stops a statement. */
export function decisionErrorCode(decision: Decision): SluiceErrorCode | undefined {
  if (decision.effect === 'allow') return undefined;
  if (decision.effect === 'review') return 'SLUICE_APPROVAL_REQUIRED';
  return decision.rule === BUILTIN_RULES.unparseable ? 'SLUICE_SQL_UNPARSEABLE' : 'SLUICE_POLICY_DENIED';
}

function compileRule(r: RawRule, where: string, defaultName: string, strict: { readonly sql: boolean; readonly http: boolean; readonly k8s: boolean }): CompiledRule {
  const [effect, list] =
    r.allow !== undefined ? (['allow', r.allow] as const) : r.deny !== undefined ? (['deny', r.deny] as const) : r.review !== undefined ? (['review', r.review] as const) : [];
  if (effect === undefined) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: a rule has exactly one of allow, deny or review`);
  const verbs = expandRuleList(list, `${where}.${effect}`, strict.sql);
  const httpVerbs = expandHttpRuleList(list, `${where}.${effect}`, strict.http);
  const k8sVerbs = expandK8sRuleList(list, `${where}.${effect}`, strict.k8s);
  if (strict.sql && r.paths !== undefined) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}.paths: paths apply to HTTP and Kubernetes connections, not PostgreSQL`);
  }
  if (strict.sql && r.reveal !== undefined) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}.reveal: reveal applies to Kubernetes connections, not PostgreSQL`);
  }
  if (r.paths !== undefined && r.paths.length === 0) throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}.paths: list at least one path pattern (or leave paths out)`);
  const paths = (r.paths ?? []).map((p, k) => compilePathPattern(p, `${where}.paths[${k}]`));
  return {
    name: r.name ?? defaultName,
    effect,
    verbs,
    httpVerbs,
    k8sVerbs,
    ...(r.when !== undefined ? { condition: compileCondition(r.when, `${where}.when`) } : {}),
    hasPaths: r.paths !== undefined,
    paths,
    ...(r.approval !== undefined ? { approval: r.approval } : {}),
    reveal: r.reveal === true,
  };
}

/** Verbs of an HTTP or Kubernetes action: the method, or the effective Kubernetes verbs its facts carry. */
function requestVerbs(action: Action): readonly string[] {
  if (action.kind === 'k8s') {
    const verbs = action.k8s?.verbs;
    if (Array.isArray(verbs) && verbs.length > 0 && verbs.every((v): v is string => typeof v === 'string')) return verbs.map((v) => v.toLowerCase());
  }
  if (action.kind === 'http') {
    const overrides = action.http?.methodOverrides;
    // A method override names what the upstream may run instead, a WebSocket upgrade opens a
    // two-way channel: the request is decided as each.
    const upgrade = action.http?.upgrade === 'websocket' ? ['websocket'] : [];
    if ((Array.isArray(overrides) && overrides.length > 0) || upgrade.length > 0) return [action.verb.toLowerCase(), ...(Array.isArray(overrides) ? overrides.map((m) => String(m).toLowerCase()) : []), ...upgrade];
  }
  return [action.verb.toLowerCase()];
}

/** The decoded request path of an HTTP or Kubernetes action, if its facts carry one. */
function requestPath(action: Action): string | undefined {
  const facts = action.kind === 'http' ? action.http : action.kind === 'k8s' ? action.k8s : undefined;
  const path = facts?.path;
  return typeof path === 'string' ? path : undefined;
}

/**
 * Whether a path-scoped rule covers the action's path. Allow rules match the exact case; deny and
 * review rules any case. Without a known path, deny and review rules match and allow rules do not.
 */
function pathsMatch(rule: CompiledRule, action: Action): boolean {
  const path = requestPath(action);
  if (path === undefined) return rule.effect !== 'allow';
  if (rule.effect === 'allow') return rule.paths.some((p) => p.test(path));
  return rule.paths.some((p) => p.testFolded(path));
}

function isReadOnlyRule(rule: CompiledRule): boolean {
  if (rule.effect === 'deny') return true;
  if (rule.verbs === '*') return false;
  for (const v of rule.verbs) if (!READ_ONLY_VERBS.has(v)) return false;
  return true;
}

/**
 * Verbs of facts that did not come from `extractSqlFacts` (no `verbs` field): the kind, plus
 * `side-effect` whenever the facts admit any, so an allow-list of reads still cannot match.
 */
function verbsOf(facts: SqlFacts): readonly string[] {
  const verbs = (facts as Partial<StatementFacts>).verbs;
  if (verbs !== undefined && verbs.length > 0) return verbs;
  const out: string[] = [facts.kind];
  if (facts.sideEffects || facts.dynamic) out.push('side-effect');
  return out;
}

/** Two-phase commit outlives the session (COMMIT PREPARED can finish another session's work): not session control. */
const TWO_PHASE = /^(prepare transaction|commit prepared|rollback prepared)\b/;

/**
 * Settings drivers and frameworks set on their own that only shape the session's transactions and
 * output formats: transaction modes (JDBC's setReadOnly/setTransactionIsolation, psycopg2's
 * set_session), time zone and date styles (Django, Rails), float digits and application_name
 * (pgjdbc sends both on connect), message level. A client's application_name replaces the
 * `sluice:<subject>` label Sluice gives the upstream session; the audit log still names the agent.
 * Deliberately absent: search_path (would let a schema shadow built-in functions the read-only
 * list trusts), role and session_authorization, timeouts (limits a DBA may rely on), bytea_output
 * and everything else. standard_conforming_strings and client_encoding can only keep their values
 * (parser safety).
 */
const SESSION_SETTINGS: ReadonlySet<string> = new Set([
  'transaction', 'session characteristics', 'transaction_isolation', 'transaction_read_only', 'transaction_deferrable',
  'default_transaction_isolation', 'default_transaction_read_only', 'default_transaction_deferrable',
  'timezone', 'datestyle', 'intervalstyle', 'extra_float_digits', 'client_min_messages', 'application_name',
  'standard_conforming_strings', 'client_encoding',
]);

/**
 * Statements that only steer the client's own session and can neither read nor change data:
 * transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, …; not two-phase commit), DEALLOCATE,
 * CLOSE, UNLISTEN, the resets RESET ALL and DISCARD (which return every setting to the value the
 * session started with, where Sluice put its own), SET/RESET of SESSION_SETTINGS, and SHOW of one
 * setting. Drivers send them on their own (psycopg's BEGIN and its DEALLOCATE ALL after a
 * rollback; asyncpg's pool reset `CLOSE ALL; UNLISTEN *; RESET ALL`; PgBouncer-style `DISCARD
 * ALL`; SQLAlchemy's SHOWs on connect), so a rule list written for the data (`allow: [select]`,
 * then `deny: '*'`) must not break the driver. A rule that names their verb (`transaction`,
 * `prepare`, `select`, `listen`, `set`, `show`) explicitly still decides them; `'*'` lists and
 * default deny do not. The parser-safety and read-only guards still apply first.
 */
function isSessionControl(facts: SqlFacts): boolean {
  switch (facts.statement) {
    case 'DeallocateStmt':
    case 'ClosePortalStmt':
    case 'UnlistenStmt':
    case 'DiscardStmt':
      return true;
    case 'VariableSetStmt':
      return facts.setting !== undefined && (facts.setting === 'all' || SESSION_SETTINGS.has(facts.setting));
    case 'VariableShowStmt':
      // SHOW of one setting (SQLAlchemy asks for the isolation level and standard_conforming_strings
      // on connect); the server itself hides settings the upstream account may not read. Not SHOW ALL.
      return facts.setting !== undefined && facts.setting !== 'all';
    default:
      return facts.statement === 'TransactionStmt' && !TWO_PHASE.test(facts.transaction ?? '');
  }
}

function decideVerbs(set: RuleSet, identity: Identity, role: string, action: Action, verbs: readonly string[], facts: SqlFacts | undefined, sessionControl = false): Decision {
  let contexts: readonly Record<string, unknown>[] | undefined;
  const request = action.kind === 'http' || action.kind === 'k8s';
  /** The first rule passed over because its condition could not be evaluated, said in the decision's reason. */
  let unchecked: string | undefined;
  const noting = (d: Decision): Decision => (unchecked === undefined ? d : { ...d, reason: `${d.reason}; ${unchecked}` });
  for (const rule of set.rules) {
    const list = request ? (action.kind === 'http' ? rule.httpVerbs : rule.k8sVerbs) : rule.verbs;
    if (sessionControl && list === '*') continue;
    if (!ruleMatches(rule, verbs, list)) continue;
    if (rule.hasPaths) {
      // Path globs belong to HTTP and Kubernetes requests. SQL never meets them; any other kind
      // that reaches one is refused rather than matched without its paths.
      if (action.kind === 'sql') continue;
      if (!request) return { effect: 'deny', rule: rule.name, reason: `rule ${rule.name} is path-scoped and ${action.kind} actions have no path` };
      if (!pathsMatch(rule, action)) continue;
    }
    if (rule.condition !== undefined) {
      contexts ??= celContexts(identity, role, action, facts);
      // Where the request reads differently to different upstreams (a repeated query parameter),
      // an allow must hold for every reading and a deny or review for any one of them.
      const results = contexts.map(rule.condition);
      const holds = rule.effect === 'allow' ? results.every((r) => r === true) : results.some((r) => r === true);
      if (!holds) {
        const failed = results.find((r): r is ConditionFailure => r instanceof ConditionFailure);
        // A deny or review passed over this way is worth an operator's eye: `has(…)` guards an optional field.
        if (failed !== undefined && unchecked === undefined) unchecked = `rule ${rule.name} (${rule.effect}) did not apply: its condition could not be evaluated (${failed.message})`;
        continue;
      }
    }
    return noting(decisionFor(rule, verbs, facts));
  }
  if (sessionControl) {
    return noting({ effect: 'allow', rule: BUILTIN_RULES.sessionControl, reason: `${describe(verbs, facts)} only controls the session; allowed unless a rule names it` });
  }
  return noting({
    effect: 'deny',
    rule: BUILTIN_RULES.defaultDeny,
    reason: `no rule for role ${role} on ${action.connection} allows ${describe(verbs, facts)}`,
  });
}

function ruleMatches(rule: CompiledRule, verbs: readonly string[], list: VerbList): boolean {
  if (rule.effect === 'allow') {
    if (list === '*') return true;
    return verbs.every((v) => list.has(v));
  }
  if (list === '*') return true;
  return verbs.some((v) => list.has(v));
}

function decisionFor(rule: CompiledRule, verbs: readonly string[], facts: SqlFacts | undefined): Decision {
  const what = describe(verbs, facts);
  const approval = rule.approval !== undefined ? { approval: rule.approval } : {};
  const reveal = rule.reveal ? { maskProfile: REVEAL_PROFILE } : {};
  switch (rule.effect) {
    case 'allow':
      return { effect: 'allow', rule: rule.name, reason: `allowed by rule ${rule.name}: ${what}`, ...reveal };
    case 'deny':
      return { effect: 'deny', rule: rule.name, reason: `denied by rule ${rule.name}: ${what}` };
    case 'review':
      return { effect: 'review', rule: rule.name, reason: `rule ${rule.name} requires approval: ${what}`, ...approval, ...reveal };
    default: {
      const never: never = rule.effect;
      return { effect: 'deny', rule: BUILTIN_RULES.defaultDeny, reason: `unknown rule effect ${String(never)}` };
    }
  }
}

function describe(verbs: readonly string[], facts: SqlFacts | undefined): string {
  const reasons = facts?.sideEffectReasons ?? [];
  return reasons.length > 0 ? `${verbs.join(', ')} (${reasons.join('; ')})` : verbs.join(', ');
}

/**
 * The CEL contexts a condition is evaluated in: one per reading of an HTTP request's query
 * (queryReadings), and per call of a JSON-RPC batch body.
 */
function celContexts(identity: Identity, role: string, action: Action, facts: SqlFacts | undefined): Record<string, unknown>[] {
  const contexts = queryReadings(identity, role, action, facts);
  // A JSON-RPC batch is each of its calls: `http.json` is one call in each context, so a rule on
  // `http.json.method` meets every call (an allow must hold for all, a deny or review for any).
  const json = action.kind === 'http' ? action.http?.json : undefined;
  if (!isJsonRpcBatch(json)) return contexts;
  return contexts.flatMap((c) => json.map((call) => ({ ...c, http: { ...(c.http as Record<string, unknown>), json: toCelValue(call) } })));
}

/**
 * One context, unless an HTTP request's query reads differently to different upstreams. A
 * parameter repeated with different values (`?limit=10&limit=100000`) is the first value to Go,
 * Java's getParameter and Flask, the last to PHP and Rails, all joined by commas to ASP.NET; a
 * `;` separates parameters for Rack 2 and old Python (`?x=1;force=true`). `http.query` is then
 * given in each of those readings.
 */
function queryReadings(identity: Identity, role: string, action: Action, facts: SqlFacts | undefined): Record<string, unknown>[] {
  const base = celContext(identity, role, action, facts);
  const http = action.kind === 'http' ? action.http : undefined;
  const all = http?.queryAll as Readonly<Record<string, readonly string[]>> | undefined;
  if (all === undefined) return [base];
  const parses = [all];
  if (Object.entries(all).some(([k, vs]) => k.includes(';') || vs.some((v) => v.includes(';')))) parses.push(semicolonSplit(all));
  const readings = new Map<string, Record<string, string>>();
  const first = JSON.stringify(http?.query ?? {});
  for (const parse of parses) {
    for (const pick of [(v: readonly string[]) => v[0] ?? '', (v: readonly string[]) => v[v.length - 1] ?? '', (v: readonly string[]) => (new Set(v).size > 1 ? v.join(',') : (v[0] ?? ''))]) {
      const query: Record<string, string> = {};
      for (const [k, vs] of Object.entries(parse)) query[k] = pick(vs);
      const key = JSON.stringify(query);
      if (key !== first) readings.set(key, query);
    }
  }
  return [base, ...[...readings.values()].map((query) => ({ ...base, http: toCelValue({ ...http, query }) }))];
}

/** `all` as a parser that also splits on `;` reads it. */
function semicolonSplit(all: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [k, vs] of Object.entries(all)) {
    for (const v of vs) {
      for (const part of `${k}=${v}`.split(';')) {
        if (part === '') continue;
        const eq = part.indexOf('=');
        const name = eq < 0 ? part : part.slice(0, eq);
        (out[name] ??= []).push(eq < 0 ? '' : part.slice(eq + 1));
      }
    }
  }
  return out;
}

function celContext(identity: Identity, role: string, action: Action, facts: SqlFacts | undefined): Record<string, unknown> {
  return {
    identity: toCelValue({
      issuer: identity.issuer,
      subject: identity.subject,
      claims: identity.claims,
      roles: identity.roles,
      model: identity.model,
      sponsor: identity.sponsor,
    }),
    role,
    action: toCelValue({ connection: action.connection, kind: action.kind, verb: action.verb, objects: action.objects, text: action.text }),
    sql: toCelValue(facts ?? {}),
    http: toCelValue(action.http ?? {}),
    k8s: toCelValue(action.k8s ?? {}),
  };
}

/** Overall decision for several statements: any deny wins, then any review, else allow. */
function combine(statements: readonly SqlStatementDecision[]): Decision {
  if (statements.length === 0) return { effect: 'allow', rule: BUILTIN_RULES.emptyQuery, reason: 'empty query: no statements to run' };
  const denied = statements.find((s) => s.decision.effect === 'deny');
  const reviewed = statements.find((s) => s.decision.effect === 'review');
  const pick = denied ?? reviewed ?? statements[0];
  if (pick === undefined) return { effect: 'deny', rule: BUILTIN_RULES.defaultDeny, reason: 'no decision' };
  if (statements.length === 1) return pick.decision;
  const n = statements.indexOf(pick) + 1;
  if (pick.decision.effect === 'allow') return { ...pick.decision, reason: `all ${statements.length} statements allowed (first: ${pick.decision.reason})` };
  return { ...pick.decision, reason: `statement ${n} of ${statements.length}: ${pick.decision.reason}` };
}

/** JSON with sorted keys, so the version hash does not depend on key order in the file. */
function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`).join(',')}}`;
}
