/**
 * One authenticated client connection proxied to its upstream. Every statement is decided before it
 * is forwarded; denied statements are replaced by a statement upstream rejects at parse time, so
 * PostgreSQL itself keeps the protocol's ordering and error semantics (abort the implicit
 * transaction, skip to Sync, the right ReadyForQuery status) and Sluice only swaps the error text.
 * Results stream frame by frame: unchanged frames go out as the original bytes.
 */
import type { Socket } from 'node:net';
import { SluiceError, toSluiceError } from '../../errors.js';
import type { AuditEventInput } from '../../audit/index.js';
import type { Pipeline, SessionSummary, SqlDecision } from '../../pipeline/pipeline.js';
import { atSessionEnd, sessionExpired, tokenExpiredError, type SessionInfo } from '../../pipeline/session.js';
import type { SqlFacts } from '../../pipeline/types.js';
import { createHash } from 'node:crypto';
import { findMaskMarker, MaskStats, type ColumnRef, type Masker } from '../../masking/index.js';
import { BUILTIN_RULES, fingerprintSql, maskedColumnViolation, starOrderingViolation, unsafeServerSetting, type CopyFormat, type ProtectsColumn, type StatementFacts } from '../../policy/index.js';
import type { ApprovalsLike } from '../engine.js';
import { BodyReader, FrameReader } from './frame-reader.js';
import {
  Backend,
  bindMessage,
  buildFieldsMessage,
  closeMessage,
  FLUSH,
  errorResponse,
  describeMessage,
  executeMessage,
  Field,
  frame,
  noticeResponse,
  Frontend,
  parseErrorFields,
  parseMessage,
  queryMessage,
  TxStatus,
} from './protocol.js';
import { buildRowMaskPlan, maskDataRow, parseRowDescription, type FieldDescription, type RowMaskPlan } from './rows.js';
import { CopyOutMasker, CopyShapeError } from './copy-out.js';
import { MAX_UPSTREAM_MESSAGE } from './upstream.js';
import { FIRST_USER_OID, type RelationLineage } from './lineage.js';

/**
 * Text sent upstream in place of a denied statement. It fails in the raw parser (42601) before
 * anything runs, so the upstream performs exactly PostgreSQL's error handling for us.
 */
const DENIED_SQL = 'SLUICE_DENIED /* statement refused by the Sluice gateway */';
const SYNTAX_ERROR = '42601';
/** Longest value kept in a result preview. */
const PREVIEW_VALUE_BYTES = 1024;
/** Chunks read ahead of the pump before the socket stops being read (backpressure). */
const MAX_QUEUED_CHUNKS = 16;
/** Client messages that start work upstream: refused once the session's token expired. */
const STARTS_WORK: ReadonlySet<number> = new Set([Frontend.Query, Frontend.Parse, Frontend.Bind, Frontend.Execute, Frontend.FunctionCall]);
/** How often an expired session that is still answering a statement looks again whether it is done. */
const EXPIRY_RECHECK_MS = 100;
/** How long the upstream gets to answer the cancel of a statement that outran the deadline. */
const EXPIRY_CANCEL_WAIT_MS = 5_000;
/** An Execute of this portal name fails with 34000 (invalid_cursor_name) before anything runs. */
const DENIED_PORTAL = 'sluice_denied_portal';
const UNDEFINED_CURSOR = '34000';
/** Refused statement names remembered per session (onParse). */
const MAX_REFUSED_NAMES = 1024;
/** Protocol names marked per session before every name counts as marked (MarkedNames). */
const MAX_MARKED_NAMES = 10_000;

/** Sluice's own statement and portal name for its settings probe (a control character no client name has). */
const PROBE_NAME = 'sluice\u0001settings';
/** The settings Sluice's parser depends on, in the order the probe reads them. */
const PROBED_SETTINGS = ['standard_conforming_strings', 'client_encoding', 'search_path'] as const;
const PROBE_SQL = `SELECT ${PROBED_SETTINGS.map((n) => `pg_catalog.current_setting('${n}')`).join(', ')}`;

/** Verbs that read data and change nothing: such statements may run while their record commits. */
const PURE_READ_VERBS: ReadonlySet<string> = new Set(['select', 'explain', 'show']);

/** Statements that create or change what a relation derives from: a view, a table's parents or partitions, a rename. */
const RELATION_DDL: ReadonlySet<string> = new Set([
  'ViewStmt',
  'CreateStmt',
  'CreateTableAsStmt',
  'CreateForeignTableStmt',
  'AlterTableStmt',
  'RenameStmt',
  'AlterObjectSchemaStmt',
  'DropStmt',
]);

function bareName(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** Whether a statement sorts or groups by columns of `*` (ProxySession.checkStarOrdering). */
function hasStarOrdering(d: SqlDecision): boolean {
  return d.decision.effect !== 'deny' && d.statements.some((st) => (st.facts as Partial<StatementFacts>).starOrdering !== undefined);
}

/** An UPDATE or MERGE, alone or inside a CTE: it replaces values a result may have shown masked. */
function overwrites(st: SqlDecision['statements'][number]): boolean {
  const verbs = (st.facts as Partial<StatementFacts>).verbs ?? [st.facts.kind];
  return verbs.includes('update') || verbs.includes('merge');
}

/** `d` refused because it writes `found`, a value Sluice masked (`masked-value-write`). */
function writeBackDenied(d: SqlDecision, found: string): SqlDecision {
  return {
    ...d,
    decision: {
      effect: 'deny',
      rule: BUILTIN_RULES.maskedValueWrite,
      reason: `it writes ${found}, a value Sluice masked, which would replace the real value; write the real value, or leave the column out`,
    },
  };
}

function isPureRead(d: SqlDecision): boolean {
  if (d.decision.effect !== 'allow' || d.statements.length === 0) return false;
  return d.statements.every((st) => {
    const verbs = (st.facts as { verbs?: readonly string[] }).verbs;
    return verbs !== undefined && verbs.every((v) => PURE_READ_VERBS.has(v)) && !st.facts.sideEffects && !st.facts.dynamic;
  });
}

/**
 * Names (of statements `S`, of portals `P`) marked for a session's life. Past MAX_MARKED_NAMES a
 * client naming endless statements gets every name treated as marked rather than unbounded memory.
 */
class MarkedNames {
  readonly #names = new Set<string>();
  #overflow = false;

  add(kind: 'S' | 'P', name: string): void {
    // SQL cannot name the unnamed statement or portal.
    if (name === '' || this.#overflow) return;
    if (this.#names.size >= MAX_MARKED_NAMES) {
      this.#overflow = true;
      this.#names.clear();
      return;
    }
    this.#names.add(kind + name);
  }

  has(kind: 'S' | 'P', name: string): boolean {
    return this.#overflow || this.#names.has(kind + name);
  }
}

/** How one COPY … TO STDOUT of a statement masks its rows. */
interface CopyPlan {
  readonly format: CopyFormat;
  readonly rows: RowMaskPlan;
}

/** A command record still being committed: no result byte of its command reaches the client before. */
interface AuditGate {
  readonly promise: Promise<void>;
  done: boolean;
}

interface PreparedInfo {
  readonly sql: string;
  readonly decision: SqlDecision;
  /** COPY … TO STDOUT: how to mask its rows (a fresh CopyOutMasker per Execute). */
  readonly copies?: readonly CopyPlan[];
  fields?: readonly FieldDescription[];
}

interface PortalInfo {
  readonly statement: PreparedInfo | undefined;
  /** Bound to a name whose Parse Sluice refused: its Execute is refused without a record of its own. */
  readonly refusedParse?: boolean;
  readonly resultFormats: readonly number[];
  /** Bound parameter bytes, kept for statements that need approval. */
  readonly params?: Buffer;
  /** A bound parameter of an UPDATE or MERGE carries a value Sluice masked: its Execute is refused. */
  readonly writesMasked?: string;
  fields?: readonly FieldDescription[];
}

interface Outcome {
  rows: number;
  bytes: number;
  tags: string[];
  error?: { code: string; message: string };
  masked: MaskStats;
  /** The first rows as the client saw them (masked), for replay. */
  preview?: { columns: string[]; rows: (string | null)[][] };
}

/** A simple Query whose every statement has ended (or which failed): only ReadyForQuery is to come. */
function awaitsOnlyReady(op: Extract<Op, { k: 'query' }>): boolean {
  return op.out.error !== undefined || op.out.tags.length >= Math.max(1, op.decision.statements.length);
}

function isLazy(op: Op): boolean {
  return (op.k === 'query' || op.k === 'execute') && op.lazy === true;
}

/** A result's fields on its audit record (tags go under `details`). */
function resultEventFields(r: ResultFields): Pick<AuditEventInput, 'outcome' | 'error' | 'rows' | 'bytes' | 'durationMs' | 'mask' | 'preview'> {
  return {
    outcome: r.outcome,
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.rows !== undefined ? { rows: r.rows } : {}),
    ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    ...(r.mask !== undefined ? { mask: r.mask } : {}),
    ...(r.preview !== undefined ? { preview: r.preview } : {}),
  };
}

/** What a command record calls the statement: its kind, or `empty` / `multi`. */
function commandKind(d: SqlDecision): string {
  const first = d.statements[0]?.facts;
  return d.statements.length === 1 && first !== undefined ? first.kind : d.statements.length === 0 ? 'empty' : 'multi';
}

/**
 * One upstream chunk's output, held back while a pure read's record is not yet written: it goes
 * out in one write at the end of the chunk, once every record in `gates` is durable.
 */
interface Held {
  readonly parts: Buffer[];
  readonly gates: AuditGate[];
}

/** How a command ended, as its record says. */
interface ResultFields {
  readonly outcome: 'success' | 'failure' | 'cancelled';
  readonly error?: { readonly code?: string; readonly message: string };
  readonly rows?: number;
  readonly bytes?: number;
  readonly durationMs?: number;
  readonly mask?: ReturnType<MaskStats['toJSON']>;
  readonly preview?: Outcome['preview'];
  readonly tags?: readonly string[];
}

/**
 * `lazy`: a pure read forwarded before its `command` record was written. The record is written
 * when its result is in, carrying the result too (one record instead of a `command` and a
 * `command.result`), or at the end of the first upstream chunk that does not complete it
 * (`begun`: part of its result was in a chunk).
 */
type Op =
  | { readonly k: 'query'; readonly sql: string; readonly denied?: SluiceError; readonly started: number; readonly out: Outcome; rows?: RowMaskPlan; readonly decision: SqlDecision; gate?: AuditGate; lazy?: boolean; begun?: boolean; copies?: CopyOutMasker[]; readonly onReady?: () => void }
  | { readonly k: 'parse'; readonly denied?: SluiceError; readonly name: string }
  | { readonly k: 'bind' }
  | { readonly k: 'describe'; readonly target: 'S' | 'P'; readonly name: string; readonly internal?: Extract<Op, { k: 'execute' }> }
  | { readonly k: 'execute'; readonly portal: PortalInfo | undefined; readonly sql: string; readonly started: number; readonly out: Outcome; rows?: RowMaskPlan; readonly decision?: SqlDecision; readonly denied?: SluiceError; gate?: AuditGate; lazy?: boolean; begun?: boolean; copies?: CopyOutMasker[] }
  | { readonly k: 'close' }
  | { readonly k: 'sync'; readonly onReady?: () => void }
  | { readonly k: 'denied-call'; readonly denied: SluiceError }
  // Sluice's own settings probe (readSettings): its answers never reach the client.
  | { readonly k: 'probe-step' }
  | { readonly k: 'probe'; values?: string[]; readonly done: (values: readonly string[] | undefined) => void };

export interface ProxySessionOptions {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Client bytes already read past the password message. */
  readonly clientLeftover: Buffer;
  readonly upstreamLeftover: Buffer;
  readonly txStatus: number;
  readonly session: SessionInfo;
  readonly pipeline: Pipeline;
  readonly masker: Masker;
  /** Holds `review` commands for approval; absent: they are refused as "approval required". */
  readonly approvals?: ApprovalsLike;
  /** End sessions idle this long (nothing in flight, nothing held); 0 never. */
  readonly idleTimeoutMs: number;
  /** How long a statement running at the session's deadline may go on before it is cancelled (identity.tokenExpiryDrain). */
  readonly expiryDrainMs?: number;
  /** Send the upstream a CancelRequest for this session's running statement. */
  readonly cancelUpstream?: () => Promise<void>;
  /** Rows of each result kept (masked) in its `command.result` record for replay; 0 keeps none. */
  readonly previewRows: number;
  /** The planner's row estimate for a statement (EXPLAIN, never executed). */
  readonly estimateRows?: (sql: string) => Promise<number | undefined>;
  /** Column rules need schema/table names, looked up from the table OIDs in RowDescription. */
  readonly needsTableNames: boolean;
  /** The upstream database's encoding (its startup `server_encoding`), for the client_encoding check. */
  readonly serverEncoding: string;
  readonly maxMessageBytes: number;
  /** Resolves table/schema names for RowDescription table OIDs (cached by the engine). */
  readonly resolveColumns: (fields: readonly FieldDescription[]) => ColumnRef[] | Promise<ColumnRef[]>;
  /** The output columns of a SELECT, described without running it (COPY … TO STDOUT masking). */
  readonly describeColumns?: (sql: string) => Promise<FieldDescription[]>;
  /** What views and child tables derive from (lineage.ts), while masking is on. */
  readonly lineage?: Pick<RelationLineage, 'ready' | 'protects' | 'hasProtectedColumns' | 'invalidate' | 'columnsOf'>;
  readonly log: (line: string) => void;
  readonly onClose: (summary: SessionSummary) => void;
}

export class ProxySession {
  private readonly clientReader: FrameReader;
  private readonly upstreamReader = new FrameReader(MAX_UPSTREAM_MESSAGE, 'upstream');
  private readonly ops: Op[] = [];
  private readonly statements = new Map<string, PreparedInfo>();
  private readonly portals = new Map<string, PortalInfo>();
  /** Statement names whose last Parse Sluice refused (that refusal is their record). Bounded: see onParse. */
  private readonly refusedParses = new Set<string>();
  /** Statement and portal names the protocol gave anything but a pure read (checkSessionNames). */
  private readonly protocolNames = new MarkedNames();
  private readonly clientQueue: Buffer[] = [];
  private readonly upstreamQueue: Buffer[] = [];
  private clientPumping = false;
  private upstreamPumping = false;
  private closed = false;
  /**
   * While a simple Query that may run code (anything but a pure read: a function, a trigger, a
   * COMMIT's deferred ones) is in flight: resolves at its ReadyForQuery, or when the session ends.
   */
  private answered: Promise<void> | undefined;
  private markAnswered: (() => void) | undefined;
  /** The extended-protocol batch since the last Sync executed a statement that may run code. */
  private batchRanCode = false;
  /** Resolves a settings probe in flight (readSettings) when the session ends first. */
  private probeWaiter: ((values: readonly string[] | undefined) => void) | undefined;
  private txStatus: number;
  private copyOutMasking = false;
  private unplacedLogged = false;
  /**
   * After an error in an extended-protocol batch, the upstream ignores every message until the
   * next Sync. Set when that Sync was not yet sent: the messages that come before it get no op.
   */
  private skippingToSync = false;
  /** The running COPY TO STDOUT's per-column masker (undefined: detectors on each line). */
  private copyOut: CopyOutMasker | undefined;
  /** Set when a COPY's rows could not be masked: its data is dropped and it ends in an error. */
  private copyFailed: SluiceError | undefined;
  private commands = 0;
  private denied = 0;
  private bytesOut = 0;
  private readonly masked = new MaskStats();
  /** The approval request this session is waiting on, if any. */
  private held: { readonly id: string; cancelled: boolean } | undefined;
  /** Set while the client is in COPY FROM STDIN: CopyData/CopyDone/CopyFail are forwarded as they come. */
  private copyIn = false;
  /** Output kept from the client until the records of the pure reads in it are durable. */
  private holding: Held | undefined;
  /** Cancels the end of the session at its token's expiry (atSessionEnd). */
  private cancelExpiry: () => void = () => undefined;
  /** Releases the client frame held because it arrived after the token expired (at shutdown). */
  private heldForExpiry: (() => void) | undefined;
  /** When the deadline came with a statement still running, and when that statement was cancelled. */
  private expiredAt: number | undefined;
  private expiryCancelledAt: number | undefined;

  constructor(private readonly o: ProxySessionOptions) {
    this.clientReader = new FrameReader(o.maxMessageBytes, 'client');
    this.txStatus = o.txStatus;
  }

  start(): void {
    const { client, upstream } = this.o;
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    client.on('close', () => this.shutdown('client closed'));
    upstream.on('close', () => this.shutdown('upstream closed'));
    client.on('error', () => this.shutdown('client error'));
    upstream.on('error', () => this.shutdown('upstream error'));
    // Backpressure: a slow client stops us reading from the upstream, not buffering its results.
    client.on('drain', () => upstream.resume());
    upstream.on('drain', () => client.resume());
    if (this.o.idleTimeoutMs > 0) {
      // Like PostgreSQL's idle_session_timeout: only a session waiting on its client is idle.
      client.setTimeout(this.o.idleTimeoutMs, () => {
        if (this.ops.length === 0 && this.held === undefined && !this.clientPumping && !this.upstreamPumping) {
          this.fatal(new SluiceError('SLUICE_IDLE_TIMEOUT', `terminating connection after ${this.o.idleTimeoutMs} ms idle (limits.idleTimeout)`));
        }
      });
    }
    this.cancelExpiry = atSessionEnd(this.o.session, () => this.endExpired());
    if (this.o.upstreamLeftover.length > 0) this.onUpstreamData(this.o.upstreamLeftover);
    if (this.o.clientLeftover.length > 0) this.onClientData(this.o.clientLeftover);
    client.resume();
    upstream.resume();
  }

  // ───────────────────────────── client → upstream ─────────────────────────────

  private onClientData(chunk: Buffer): void {
    this.clientQueue.push(chunk);
    // The pump handles chunks strictly in order, so reading on is safe; stop reading only when
    // chunks pile up (pausing per message cost a syscall each under load).
    if (this.clientQueue.length > MAX_QUEUED_CHUNKS) this.o.client.pause();
    if (!this.clientPumping) void this.pumpClient();
  }

  private async pumpClient(): Promise<void> {
    this.clientPumping = true;
    const { client, upstream } = this.o;
    try {
      while (this.clientQueue.length > 0 && !this.closed) {
        this.clientReader.feed(this.clientQueue.shift() as Buffer);
        upstream.cork();
        try {
          while (!this.closed && this.clientReader.next()) {
            const pending = this.handleClientFrame();
            if (pending !== undefined) {
              upstream.uncork();
              await pending;
              upstream.cork();
            }
          }
        } finally {
          upstream.uncork();
        }
      }
      if (client.isPaused() && upstream.writableNeedDrain !== true) client.resume();
    } catch (err) {
      this.fatal(err);
    } finally {
      this.clientPumping = false;
    }
  }

  /**
   * The token expired: the session ends once what is running finished (its answer reaches the
   * client; a statement that arrives meanwhile is held unread by handleClientFrame). A statement
   * waiting for approval is withdrawn, and a COPY FROM STDIN, whose data the client keeps
   * sending, is cut off: neither is work the upstream is doing.
   *
   * A statement still running `expiryDrainMs` after the deadline is cancelled upstream (its
   * client gets PostgreSQL's 57014), so no statement outlives the deadline by more than that;
   * if the upstream has not answered the cancel a few seconds later, the session ends anyway.
   */
  private endExpired(): void {
    if (this.closed) return;
    const now = Date.now();
    this.expiredAt ??= now;
    // The client side is idle when it waits on nothing but a frame held for the expiry.
    const clientIdle = !this.clientPumping || this.heldForExpiry !== undefined;
    const idle = this.ops.length === 0 && this.holding === undefined && clientIdle && !this.upstreamPumping;
    if (idle || this.held !== undefined || this.copyIn || (this.expiryCancelledAt !== undefined && now - this.expiryCancelledAt >= EXPIRY_CANCEL_WAIT_MS)) {
      this.fatal(tokenExpiredError(this.o.session));
      return;
    }
    if (this.expiryCancelledAt === undefined && now - this.expiredAt >= (this.o.expiryDrainMs ?? Infinity)) {
      this.expiryCancelledAt = now;
      this.o.log(`postgres: session ${this.o.session.id}: a statement was still running ${Math.round((now - this.expiredAt) / 1000)}s after the token's deadline; cancelling it (identity.tokenExpiryDrain)`);
      void this.o.cancelUpstream?.();
    }
    setTimeout(() => this.endExpired(), EXPIRY_RECHECK_MS).unref();
  }

  /** Handle the current client frame; returns a promise when the frame had to wait (policy/audit). */
  private handleClientFrame(): Promise<void> | undefined {
    const r = this.clientReader;
    const type = r.type;
    // Nothing new starts once the token expired, a statement prepared before it included: the
    // frame is held unread, and the session ends once what runs has been answered (endExpired).
    if (STARTS_WORK.has(type) && sessionExpired(this.o.session, Date.now())) {
      return new Promise<void>((resolve) => {
        this.heldForExpiry = resolve;
      });
    }
    switch (type) {
      case Frontend.Query:
        return this.onQuery(new BodyReader(r.body()).cstring());
      case Frontend.Parse:
        return this.onParse(r.body(), r.frame());
      case Frontend.Bind:
        this.onBind(r.body());
        this.forward(r.frame());
        this.pushOp({ k: 'bind' });
        return undefined;
      case Frontend.Describe: {
        const b = new BodyReader(r.body());
        const target = b.byte();
        if (target !== 0x53 && target !== 0x50) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'invalid Describe target');
        this.pushOp({ k: 'describe', target: target === 0x53 ? 'S' : 'P', name: b.cstring() });
        this.forward(r.frame());
        return undefined;
      }
      case Frontend.Execute:
        return this.onExecute(r.body(), r.frame());
      case Frontend.Close: {
        const b = new BodyReader(r.body());
        const target = b.byte();
        const name = b.cstring();
        if (target === 0x53) this.statements.delete(name);
        else if (target === 0x50) this.portals.delete(name);
        else throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'invalid Close target');
        this.pushOp({ k: 'close' });
        this.forward(r.frame());
        return undefined;
      }
      case Frontend.Sync:
        // A batch that executed code: statements of later batches wait for its ReadyForQuery.
        this.pushOp({ k: 'sync', ...(this.batchRanCode ? { onReady: this.awaitAnswer() } : {}) });
        this.batchRanCode = false;
        this.forward(r.frame());
        return undefined;
      case Frontend.Flush:
        this.forward(r.frame());
        return undefined;
      case Frontend.CopyData:
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        // Only meaningful during COPY FROM STDIN, which policy already allowed; PostgreSQL ignores
        // stray copy messages outside copy mode, so forwarding them is harmless.
        this.forward(r.frame());
        return undefined;
      case Frontend.FunctionCall: {
        // The fast-path function call names a function by OID, bypassing SQL: never allowed.
        const denied = new SluiceError('SLUICE_POLICY_DENIED', 'the fast-path FunctionCall protocol is not allowed through Sluice; call the function from SQL');
        this.denied += 1;
        this.recordLazyNow();
        this.pushOp({ k: 'denied-call', denied });
        this.forward(queryMessage(DENIED_SQL));
        return this.o.pipeline
          .record({ type: 'command', session: this.o.session, command: { text: '<fast-path function call>', kind: 'call' }, decision: { effect: 'deny', rule: 'function-call-protocol', reason: denied.message }, outcome: 'denied' })
          .catch((err) => this.fatal(err));
      }
      case Frontend.Terminate:
        this.forward(r.frame());
        this.shutdown('client terminated');
        return undefined;
      default:
        throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', `unexpected message type 0x${type.toString(16)} from client`);
    }
  }

  private forward(bytes: Buffer): void {
    if (!this.o.upstream.writable) return;
    if (!this.o.upstream.write(bytes)) this.o.client.pause();
  }

  private deniedError(d: SqlDecision): SluiceError {
    const effect = d.decision.effect;
    const code = d.error !== undefined ? 'SLUICE_SQL_UNPARSEABLE' : effect === 'review' ? 'SLUICE_APPROVAL_REQUIRED' : 'SLUICE_POLICY_DENIED';
    const what = effect === 'review' ? 'requires approval' : 'denied';
    return new SluiceError(code, `sluice: statement ${what} by rule "${d.decision.rule}"`, {
      detail: `${d.decision.reason} (role ${this.o.session.role}, connection ${this.o.session.connection})`,
    });
  }

  /** Queue what the upstream will answer, in order; nothing while it discards messages until Sync. */
  private pushOp(op: Op): void {
    if (this.skippingToSync) {
      if (op.k !== 'sync') {
        // Discarded upstream, it runs nothing and will get no ReadyForQuery: nothing waits on it.
        if (op.k === 'query') op.onReady?.();
        return;
      }
      this.skippingToSync = false;
    }
    this.ops.push(op);
  }

  /**
   * Prepared statements and portals are one namespace shared by the protocol (Parse, Bind) and SQL
   * (PREPARE, EXECUTE, DEALLOCATE, DECLARE, FETCH, MOVE, CLOSE, DISCARD ALL), and Sluice decides,
   * records and masks a protocol Execute by the statement it saw parsed under that name. So:
   *
   * - SQL that runs a protocol statement or portal by name (EXECUTE, FETCH, MOVE) would run it
   *   outside Execute, where it was never decided as itself: a held `DELETE … RETURNING` would run
   *   without its approval, an allowed write would be recorded as the FETCH. It is refused for any
   *   name the protocol ever gave a statement that is not a pure read. Names stay marked for the
   *   session: whether SQL that reuses a name succeeded upstream is not known when it is decided.
   * - SQL that defines or drops a name makes Sluice forget it, so a later protocol Execute of that
   *   name is refused (onExecute) instead of being taken for the statement that had the name
   *   before. Forgetting when the SQL is decided, before it runs or fails, can only refuse an
   *   Execute, never let one through.
   */
  private checkSessionNames(d: SqlDecision): SqlDecision {
    let refused: string | undefined;
    for (const st of d.statements) {
      const f = st.facts as SqlFacts & Partial<Pick<StatementFacts, 'preparedName' | 'cursorName' | 'executes'>>;
      for (const name of f.executes ?? []) {
        if (this.protocolNames.has('S', name)) refused ??= `EXECUTE ${name} would run a statement prepared through the protocol outside Execute, where it was not decided; send Bind and Execute instead`;
      }
      switch (f.statement) {
        case 'FetchStmt':
          if (f.cursorName !== undefined && this.protocolNames.has('P', f.cursorName)) {
            refused ??= `FETCH/MOVE of portal "${f.cursorName}" would run its bound statement outside Execute, where it was not decided; send Execute for that portal instead`;
          }
          break;
        case 'PrepareStmt':
        case 'DeallocateStmt':
          if (f.preparedName === undefined) this.statements.clear();
          else this.statements.delete(f.preparedName);
          break;
        case 'DeclareCursorStmt':
        case 'ClosePortalStmt':
          if (f.cursorName === undefined) this.portals.clear();
          else this.portals.delete(f.cursorName);
          break;
        case 'DiscardStmt':
          if (f.setting === 'all') {
            this.statements.clear();
            this.portals.clear();
          }
          break;
        default:
          break;
      }
    }
    if (refused === undefined || d.decision.effect === 'deny') return d;
    return { ...d, decision: { effect: 'deny', rule: BUILTIN_RULES.protocolStatement, reason: refused } };
  }

  /**
   * Column plans for the COPY … TO STDOUT statements of a text about to run, in order. COPY rows
   * carry no column names, so each COPY's source is described upstream first (never executed);
   * one that cannot be described is refused (`sql-copy-unmaskable`): its rows could be masked
   * only by detectors, and a column rule (a password column) would not apply.
   */
  private async withCopyPlans(d: SqlDecision): Promise<{ readonly decision: SqlDecision; readonly copies?: readonly CopyPlan[] }> {
    if (d.decision.effect === 'deny' || this.o.masker.inert) return { decision: d };
    let copies: CopyPlan[] | undefined;
    for (const st of d.statements) {
      const f = st.facts as SqlFacts & Partial<Pick<StatementFacts, 'copyFormat' | 'copySource'>>;
      if (f.statement !== 'CopyStmt' || f.copyDirection !== 'to' || f.copyFileOrProgram === true) continue;
      let why: string | undefined;
      if (f.copySource === undefined || f.copyFormat === undefined || this.o.describeColumns === undefined) why = 'its source could not be determined';
      else {
        try {
          const fields = await this.o.describeColumns(f.copySource);
          const cols = await this.columnsOf(fields);
          const binary = f.copyFormat.format === 'binary';
          (copies ??= []).push({ format: f.copyFormat, rows: buildRowMaskPlan(fields, this.o.masker.planColumns(cols), binary ? [1] : [0]) });
        } catch (err) {
          why = (err as Error).message;
        }
      }
      if (why !== undefined) {
        return { decision: { ...d, decision: { effect: 'deny', rule: BUILTIN_RULES.copyUnmaskable, reason: `COPY … TO STDOUT output could not be masked per column: ${why}` } } };
      }
    }
    return copies === undefined ? { decision: d } : { decision: d, copies };
  }

  /** The statements masking could not follow are refused (`masked-column-use`; policy/sql/masked-columns.ts). */
  private checkMaskedColumns(d: SqlDecision): SqlDecision {
    const masker = this.o.masker;
    if (d.decision.effect === 'deny' || masker.inert) return d;
    for (const st of d.statements) {
      const reason = maskedColumnViolation(st.facts as StatementFacts, this.protects, this.hasTableRules, this.relationColumns) ?? this.readsChangedRelation(d, st);
      if (reason !== undefined) return { ...d, decision: { effect: 'deny', rule: BUILTIN_RULES.maskedColumnUse, reason } };
    }
    return d;
  }

  /**
   * An UPDATE or MERGE whose text carries a value Sluice masked (`SET email = 'hash:…'` copied
   * from a result) would store the placeholder over the real value: refused (`masked-value-write`).
   * INSERT is not refused: a new row that quotes masked text (a note, a report) replaces nothing.
   */
  private checkWriteBack(d: SqlDecision): SqlDecision {
    if (d.decision.effect === 'deny' || this.o.masker.inert) return d;
    for (const st of d.statements) {
      if (!overwrites(st)) continue;
      const found = findMaskMarker(st.text);
      if (found !== undefined) return writeBackDenied(d, found);
    }
    return d;
  }

  /**
   * Whether the bound parameters of `st` are read for values Sluice masked: an UPDATE or MERGE
   * (`SET email = $1`, as drivers send every value) while masking is on.
   */
  private guardsBoundWrites(st: PreparedInfo | undefined): boolean {
    return st !== undefined && !this.o.masker.inert && st.decision.decision.effect !== 'deny' && st.decision.statements.some(overwrites);
  }

  /**
   * Whether a column is masked by name: its own rules and name, what it derives from in the
   * catalog (a view's, a child table's), or, for a relation this session's DDL made, the same
   * column of the tables that DDL read (the catalog may not show it: an uncommitted transaction, a
   * pipeline decided before it ran).
   */
  private readonly protects: ProtectsColumn = (column, tables) =>
    this.orSources(tables, (t) => this.o.masker.protectsColumn(column, t) || (this.o.lineage?.protects(column, t) ?? false));

  /** `check` on `tables`, else on the tables this session's DDL read to make any of them (bare names matched). */
  private orSources(tables: readonly string[], check: (tables: readonly string[]) => boolean): boolean {
    if (check(tables)) return true;
    if (this.changedRelations.size === 0) return false;
    const sources: string[] = [];
    for (const t of tables) for (const src of this.changedRelations.get(bareName(t)) ?? []) sources.push(src);
    return sources.length > 0 && check(sources);
  }

  /**
   * A relation's columns from the catalog, unless this session created or changed a relation of
   * that name: one made in a transaction not yet committed is not in the catalog the gateway reads.
   */
  private readonly relationColumns = (relation: string): readonly string[] | undefined =>
    this.changedRelations.has(bareName(relation)) ? undefined : this.o.lineage?.columnsOf(relation);

  /** Relations this session's DDL created or changed (bare names, bounded), with the tables that DDL read. */
  private readonly changedRelations = new Map<string, string[]>();

  private noteChangedRelations(d: SqlDecision): void {
    if (d.decision.effect === 'deny' || this.o.masker.inert) return;
    for (const st of d.statements) {
      if (!RELATION_DDL.has(st.facts.statement)) continue;
      if (this.changedRelations.size >= MAX_MARKED_NAMES) this.changedRelations.clear();
      for (const t of st.facts.tablesWritten) {
        const name = bareName(t);
        this.changedRelations.set(name, [...new Set([...(this.changedRelations.get(name) ?? []), ...st.facts.tablesRead])]);
      }
    }
  }

  private readonly hasTableRules = (tables: readonly string[]): boolean =>
    this.orSources(tables, (t) => this.o.masker.hasTableRules(t) || (this.o.lineage?.hasProtectedColumns(t) ?? false));

  /**
   * A statement reading a relation that an earlier statement of the same text creates or changes
   * (`CREATE VIEW v AS SELECT * FROM t; SELECT upper(email) FROM v`): decided before that one runs,
   * it could not see what the relation derives from.
   */
  private readsChangedRelation(d: SqlDecision, st: SqlDecision['statements'][number]): string | undefined {
    if (d.statements.length < 2) return undefined;
    const changed = new Set<string>();
    for (const other of d.statements) {
      if (other === st) break;
      if (RELATION_DDL.has(other.facts.statement)) for (const t of other.facts.tablesWritten) changed.add(bareName(t));
    }
    const hit = changed.size === 0 ? undefined : st.facts.tablesRead.find((t) => changed.has(bareName(t)));
    return hit === undefined ? undefined : `it reads ${hit}, which an earlier statement of the same query creates or changes, so what ${hit} derives from cannot be seen yet; send it as a separate query`;
  }

  /**
   * The lineage of the relations a decision's statements name is current, or a promise of that
   * (the first statement of a connection, a relation not seen before, a snapshot that expired).
   */
  private lineageReady(d: SqlDecision): Promise<void> | undefined {
    const lineage = this.o.lineage;
    if (lineage === undefined || d.decision.effect === 'deny' || this.o.masker.inert) return undefined;
    if (d.statements.length === 1) return lineage.ready(d.statements[0]!.facts.tablesRead);
    return lineage.ready(d.statements.flatMap((st) => st.facts.tablesRead));
  }

  private async onQuery(sql: string): Promise<void> {
    const frameBytes = Buffer.from(this.clientReader.frame());
    if (this.mustWait(true) && !(await this.afterAnswered())) return;
    const decided = this.decide(sql);
    // No await unless there is a promise: the statement path stays synchronous.
    let decision = decided instanceof Promise ? await decided : decided;
    const started = Date.now();
    const out: Outcome = { rows: 0, bytes: 0, tags: [], masked: new MaskStats() };
    if (isPureRead(decision)) {
      // A pure read changes nothing upstream: run it before its record is written, and hold its
      // result until the record is durable (fail closed on the data, not on a no-op).
      this.commands += 1;
      this.pushOp({ k: 'query', sql, started, out, decision, lazy: true });
      this.forward(frameBytes);
      return;
    }
    this.recordLazyNow();
    const planned = await this.withCopyPlans(decision);
    decision = planned.decision;
    let denied: SluiceError | undefined;
    let approvalId: string | undefined;
    if (decision.decision.effect === 'review' && this.o.approvals !== undefined && decision.error === undefined) {
      const held = await this.hold(sql, decision, sql);
      denied = held.error;
      approvalId = held.id;
    } else if (decision.decision.effect !== 'allow') {
      denied = this.deniedError(decision);
    }
    await this.recordDecision(sql, decision, approvalId, denied);
    if (denied === undefined) {
      this.commands += 1;
      const copies = planned.copies?.map((c) => new CopyOutMasker(c.format, c.rows));
      this.pushOp({ k: 'query', sql, started, out, decision, ...(copies !== undefined ? { copies } : {}), onReady: this.awaitAnswer() });
      this.forward(frameBytes);
      return;
    }
    this.denied += 1;
    this.pushOp({ k: 'query', sql, denied, started, out, decision });
    this.forward(queryMessage(DENIED_SQL));
  }

  /**
   * A statement is decided on SQL as Sluice's parser reads it, and a statement that may run code
   * can change how the server reads the next one (a function calling
   * `set_config('standard_conforming_strings', 'off', false)`). PostgreSQL reports such a change
   * as ParameterStatus just before that statement's ReadyForQuery, which ends the session
   * (onParameterStatus). So a Query, Parse or Execute that arrives behind such a simple Query, or behind
   * the Sync of a batch that executed one, pipelined in the same write, is decided only after
   * that ReadyForQuery: otherwise it was decided, and sent, on a reading the server no longer
   * shared. Inside one batch the server reports only at Sync, and waiting for it would deadlock:
   * there a Query or Parse behind such an Execute first reads the settings from the server
   * (`probe`, readSettings). False when the session ended meanwhile.
   */
  /** Whether afterAnswered has anything to wait for (checked first: most statements go on at once). */
  private mustWait(probe: boolean): boolean {
    return this.answered !== undefined || this.probeDue(probe);
  }

  /** Inside a batch that executed code, before Sync, and not failed already (it discards what follows). */
  private probeDue(probe: boolean): boolean {
    return probe && this.batchRanCode && !this.skippingToSync;
  }

  private async afterAnswered(probe = true): Promise<boolean> {
    if (this.answered !== undefined) await this.answered;
    if (this.closed) return false;
    // Ask the server for the settings now in force (it runs the probe after what it has already
    // been sent).
    if (this.probeDue(probe)) {
      this.batchRanCode = false;
      const values = await this.readSettings();
      if (this.closed) return false;
      for (let i = 0; values !== undefined && i < PROBED_SETTINGS.length; i++) {
        const why = unsafeServerSetting(PROBED_SETTINGS[i] as string, values[i] ?? '', this.o.serverEncoding);
        if (why !== undefined) {
          this.fatal(this.unsafeSetting(why));
          return false;
        }
      }
    }
    return !this.closed;
  }

  /**
   * Parse, Bind, Execute and Close Sluice's own `SELECT current_setting(…)` under a name of its
   * own, then Flush: the server answers in order, after the client's statements sent before.
   * Resolves with the values, or undefined when the batch failed first (the server skips to Sync)
   * or the session ended.
   */
  private readSettings(): Promise<readonly string[] | undefined> {
    return new Promise((resolve) => {
      this.probeWaiter = resolve;
      const done = (values: readonly string[] | undefined): void => {
        this.probeWaiter = undefined;
        resolve(values);
      };
      this.pushOp({ k: 'probe-step' });
      this.pushOp({ k: 'probe-step' });
      this.pushOp({ k: 'probe', done });
      this.pushOp({ k: 'probe-step' });
      this.pushOp({ k: 'probe-step' });
      this.forward(
        Buffer.concat([
          parseMessage(PROBE_NAME, PROBE_SQL),
          bindMessage(PROBE_NAME, PROBE_NAME),
          executeMessage(PROBE_NAME),
          closeMessage('P', PROBE_NAME),
          closeMessage('S', PROBE_NAME),
          FLUSH,
        ]),
      );
    });
  }

  /** The onReady of a simple Query that may run code: later statements wait for it (afterAnswered). */
  private awaitAnswer(): () => void {
    let resolve!: () => void;
    const answered = new Promise<void>((r) => (resolve = r));
    const done = (): void => {
      resolve();
      if (this.answered === answered) {
        this.answered = undefined;
        this.markAnswered = undefined;
      }
    };
    this.answered = answered;
    this.markAnswered = done;
    return done;
  }

  /**
   * A statement's decision: the rules, then the session's names and masking (a sort over `*`
   * asks the upstream first, so only then is there a promise).
   */
  private decide(sql: string): SqlDecision | Promise<SqlDecision> {
    const decided = this.checkSessionNames(this.o.pipeline.decideSql(this.o.session, sql));
    const waiting = this.lineageReady(decided);
    if (waiting === undefined) return this.decideMasking(decided);
    return waiting.then(
      () => this.decideMasking(decided),
      (err: unknown): SqlDecision => ({
        ...decided,
        decision: {
          effect: 'deny',
          rule: BUILTIN_RULES.maskedColumnUse,
          reason: `the database's views and child tables could not be read to follow masking through them (${(err as Error).message})`,
        },
      }),
    );
  }

  private decideMasking(decided: SqlDecision): SqlDecision | Promise<SqlDecision> {
    this.noteChangedRelations(decided);
    const decision = this.checkMaskedColumns(this.checkWriteBack(decided));
    return hasStarOrdering(decision) ? this.checkStarOrdering(decision) : decision;
  }

  /**
   * A result sorted, grouped or deduplicated by columns of `*` (`SELECT * FROM t ORDER BY 3`): the
   * upstream describes the statement (nothing runs) and the column at each such position is
   * checked as a named one is (`masked-column-use`). The description comes before the statement
   * runs, so an oracle over a masked column never executes; if it cannot be had, the statement is
   * refused.
   */
  private async checkStarOrdering(d: SqlDecision): Promise<SqlDecision> {
    const masker = this.o.masker;
    if (d.decision.effect === 'deny' || masker.inert) return d;
    for (const st of d.statements) {
      const ordering = (st.facts as Partial<StatementFacts>).starOrdering;
      if (ordering === undefined) continue;
      let reason: string | undefined;
      if (this.o.describeColumns === undefined) reason = 'it sorts or groups by columns of *, which could not be described here; list the columns';
      else {
        try {
          const cols = await this.columnsOf(await this.o.describeColumns(st.text));
          const described = cols.map((c) => ({ column: c.column, ...(c.table !== undefined ? { table: c.schema !== undefined ? `${c.schema}.${c.table}` : c.table } : {}) }));
          reason = starOrderingViolation(ordering, described, this.protects);
        } catch (err) {
          reason = `it sorts or groups by columns of *, and the upstream could not describe them (${(err as Error).message}); list the columns`;
        }
      }
      if (reason !== undefined) return { ...d, decision: { effect: 'deny', rule: BUILTIN_RULES.maskedColumnUse, reason } };
    }
    return d;
  }

  /**
   * Hold a `review` command until a reviewer decides (or a grant window already covers it). The
   * client's later messages wait in the socket; other sessions are unaffected. Returns the error
   * to answer with, or none when approved.
   */
  private async hold(sql: string, decision: SqlDecision, bindingKey: string): Promise<{ id?: string; error?: SluiceError }> {
    const approvals = this.o.approvals as ApprovalsLike;
    const session = this.o.session;
    const fingerprint = fingerprintSql(sql);
    const grant = approvals.findGrant(session, fingerprint);
    if (grant !== undefined) return { id: grant.id };
    const first = decision.statements[0]?.facts;
    // Reviewers see the planner's estimate when the rule asks (`approval: { explain: true }`).
    // Only a single statement without parameters is explained, so nothing else can ride along.
    let estimatedRows: number | undefined;
    if (decision.decision.approval?.explain === true && decision.statements.length === 1 && !/\$\d/.test(sql) && this.o.estimateRows !== undefined) {
      estimatedRows = await this.o.estimateRows(sql).catch(() => undefined);
    }
    const handle = await approvals.hold({
      session,
      text: this.o.masker.maskText(sql),
      statementHash: createHash('sha256').update(bindingKey).digest('hex'),
      fingerprint,
      facts: {
        statements: decision.statements.map((st) => ({
          kind: st.facts.kind,
          tablesRead: st.facts.tablesRead,
          tablesWritten: st.facts.tablesWritten,
          hasWhere: st.facts.hasWhere,
          sideEffects: st.facts.sideEffects,
        })),
        ...(first !== undefined ? { kind: first.kind, hasWhere: first.hasWhere } : {}),
      },
      rule: decision.decision.rule,
      ...(decision.decision.approval !== undefined ? { approval: decision.decision.approval } : {}),
      ...(estimatedRows !== undefined ? { estimatedRows } : {}),
    });
    this.held = { id: handle.id, cancelled: false };
    // Tell the waiting client why nothing happens yet, and where the request can be approved.
    this.toClient(noticeResponse({ code: '01000', message: handle.notice, ...(handle.url !== '' ? { detail: `approve: ${handle.url}` } : {}) }));
    try {
      const outcome = await handle.outcome;
      if (outcome.state === 'approved') return { id: handle.id };
      if (this.held.cancelled) {
        return { id: handle.id, error: new SluiceError('SLUICE_STATEMENT_CANCELED', `sluice: canceling statement due to user request; approval request ${handle.id} withdrawn`) };
      }
      return { id: handle.id, error: handle.errorFor(outcome) };
    } finally {
      this.held = undefined;
    }
  }

  /** A CancelRequest for this session while a command is held withdraws the request. */
  cancelHold(): boolean {
    const held = this.held;
    if (held === undefined || this.o.approvals === undefined) return false;
    held.cancelled = true;
    void this.o.approvals.withdraw(held.id, 'client cancelled the statement');
    return true;
  }

  private async onParse(body: Buffer, frameBytes: Buffer): Promise<void> {
    if (this.mustWait(true) && !(await this.afterAnswered())) return;
    const b = new BodyReader(body);
    const name = b.cstring();
    const sql = b.cstring();
    const decided = this.decide(sql);
    // No await unless there is a promise: the statement path stays synchronous.
    let decision = decided instanceof Promise ? await decided : decided;
    let copies: readonly CopyPlan[] | undefined;
    if (!isPureRead(decision)) ({ decision, copies } = await this.withCopyPlans(decision));
    const effect = decision.decision.effect;
    // A `review` statement may be prepared; it is held at Execute, once its parameters are bound.
    if (effect === 'allow' || (effect === 'review' && this.o.approvals !== undefined && decision.error === undefined)) {
      this.refusedParses.delete(name);
      this.statements.set(name, { sql, decision, ...(copies !== undefined ? { copies } : {}) });
      if (!isPureRead(decision)) this.protocolNames.add('S', name);
      this.pushOp({ k: 'parse', name });
      this.forward(frameBytes);
      return;
    }
    // A refused Parse is recorded now: it will never reach Execute.
    this.recordLazyNow();
    const denied = this.deniedError(decision);
    this.statements.delete(name);
    // A client naming endless refused statements must not grow this without bound; past the cap an
    // Execute of a forgotten one is still refused, only with a record of its own.
    if (this.refusedParses.size >= MAX_REFUSED_NAMES) this.refusedParses.clear();
    this.refusedParses.add(name);
    this.denied += 1;
    await this.recordDecision(sql, decision);
    this.pushOp({ k: 'parse', name, denied });
    this.forward(parseMessage(name, DENIED_SQL));
  }

  private onBind(body: Buffer): void {
    const b = new BodyReader(body);
    const portal = b.cstring();
    const statement = b.cstring();
    const nParamFormats = b.int16();
    b.bytes(2 * Math.max(nParamFormats, 0));
    const st = this.statements.get(statement);
    const guard = this.guardsBoundWrites(st);
    // The first bound value carrying a value Sluice masked; markers are ASCII, so text and binary
    // formats are read alike.
    let writesMasked: string | undefined;
    const paramsStart = b.position;
    const nParams = b.int16();
    for (let i = 0; i < nParams; i++) {
      const len = b.int32();
      if (len <= 0) continue;
      const value = b.bytes(len);
      if (guard && writesMasked === undefined) writesMasked = findMaskMarker(value.toString('latin1'));
    }
    const paramsEnd = b.position;
    const nResult = b.int16();
    const resultFormats: number[] = [];
    for (let i = 0; i < nResult; i++) resultFormats.push(b.int16());
    // Only held statements need their bound parameters: an approval covers exactly these values.
    const params = st !== undefined && st.decision.decision.effect === 'review' ? Buffer.from(body.subarray(paramsStart, paramsEnd)) : undefined;
    const refusedParse = st === undefined && this.refusedParses.has(statement);
    if (st === undefined || !isPureRead(st.decision)) this.protocolNames.add('P', portal);
    this.portals.set(portal, {
      statement: st,
      resultFormats,
      ...(params !== undefined ? { params } : {}),
      ...(refusedParse ? { refusedParse } : {}),
      ...(writesMasked !== undefined ? { writesMasked } : {}),
    });
  }

  private async onExecute(body: Buffer, frameBytesView: Buffer): Promise<void> {
    const frameBytes = Buffer.from(frameBytesView);
    // A prepared statement runs on the settings in force (a search_path a function changed). It
    // is not parsed again, so inside a batch it is not probed (afterAnswered).
    if (this.mustWait(false) && !(await this.afterAnswered(false))) return;
    const b = new BodyReader(body);
    const portalName = b.cstring();
    const portal = this.portals.get(portalName);
    const statement = portal?.statement;
    const sql = statement?.sql ?? '';
    const out: Outcome = { rows: 0, bytes: 0, tags: [], masked: new MaskStats() };
    const copies = statement?.copies?.map((c) => new CopyOutMasker(c.format, c.rows));
    const op: Extract<Op, { k: 'execute' }> = {
      k: 'execute',
      portal,
      sql,
      started: Date.now(),
      out,
      ...(statement !== undefined ? { decision: statement.decision } : {}),
      ...(copies !== undefined ? { copies } : {}),
    };
    if (statement === undefined) {
      // No statement Sluice decided is bound to this portal, so it is never run:
      // - its Parse was refused: that refusal is its record, and the upstream, failing that Parse
      //   or this Bind, skips the Execute anyway;
      // - otherwise the name belongs to SQL PREPARE or DECLARE (checkSessionNames) or was never
      //   bound: refused and recorded as such.
      let denied: SluiceError;
      if (portal?.refusedParse === true) {
        denied = new SluiceError('SLUICE_POLICY_DENIED', `sluice: portal "${portalName}" is bound to a refused statement`);
      } else {
        this.recordLazyNow();
        const what = portal === undefined ? `portal "${portalName}" was not bound through Sluice` : `portal "${portalName}" is bound to a statement Sluice did not see parsed`;
        const d: SqlDecision = {
          decision: { effect: 'deny', rule: BUILTIN_RULES.untrackedStatement, reason: `${what}; a statement made by SQL PREPARE runs with EXECUTE, a cursor made by DECLARE with FETCH` },
          statements: [],
        };
        denied = this.deniedError(d);
        this.denied += 1;
        await this.recordDecision(`-- protocol Execute of portal "${portalName}"`, d, undefined, denied);
      }
      this.pushOp({ ...op, denied });
      this.forward(executeMessage(DENIED_PORTAL));
      return;
    }
    // No Describe seen for this portal or its statement: ask the upstream for its columns before
    // the rows come (a client that skips Describe must not skip the column rules). The reply is
    // Sluice's own and never reaches the client.
    if (portal?.fields === undefined && statement.fields === undefined && !this.o.masker.inert) {
      this.pushOp({ k: 'describe', target: 'P', name: portalName, internal: op });
      this.forward(describeMessage('P', portalName));
    }
    if (isPureRead(statement.decision)) {
      this.commands += 1;
      op.lazy = true;
      const fields = portal?.fields ?? statement.fields;
      if (fields !== undefined) {
        const planning = this.planRows(op, fields, portal?.fields !== undefined ? undefined : portal?.resultFormats);
        if (planning !== undefined) await planning;
      }
      this.pushOp(op);
      this.forward(frameBytes);
      return;
    }
    this.recordLazyNow();
    if (portal?.writesMasked !== undefined) {
      const d = writeBackDenied(statement.decision, portal.writesMasked);
      const denied = this.deniedError(d);
      this.denied += 1;
      await this.recordDecision(sql, d, undefined, denied);
      this.pushOp({ ...op, denied });
      this.forward(executeMessage(DENIED_PORTAL));
      return;
    }
    let denied: SluiceError | undefined;
    let approvalId: string | undefined;
    if (statement.decision.decision.effect === 'review') {
      const key = createHash('sha256').update(sql).update('\0').update(portal?.params ?? Buffer.alloc(0)).digest('hex');
      const held = await this.hold(sql, statement.decision, key);
      denied = held.error;
      approvalId = held.id;
    }
    await this.recordDecision(sql, statement.decision, approvalId, denied);
    if (denied !== undefined) {
      // Execute a portal that cannot exist: the upstream fails it (34000) and skips to Sync,
      // exactly as for any failed Execute, and Sluice swaps in its own error.
      this.denied += 1;
      this.pushOp({ ...op, denied });
      this.forward(executeMessage(DENIED_PORTAL));
      return;
    }
    this.commands += 1;
    this.batchRanCode = true;
    const fields = portal?.fields ?? statement.fields;
    if (fields !== undefined) {
      const formats = portal?.fields !== undefined ? undefined : portal?.resultFormats;
      const planning = this.planRows(op, fields, formats);
      if (planning !== undefined) await planning;
    }
    this.pushOp(op);
    this.forward(frameBytes);
  }

  private gate(recording: Promise<void>): AuditGate {
    const g: AuditGate = {
      promise: recording.then(() => {
        g.done = true;
      }),
      done: false,
    };
    // A failed record ends the session before the result can reach the client.
    g.promise.catch((err: unknown) => this.fatal(err));
    return g;
  }

  /**
   * Another command is about to be recorded: first record the decisions of pure reads sent before
   * it and still waiting for their results (pipelined), so the log keeps the order of execution.
   */
  private recordLazyNow(): void {
    for (const op of this.ops) {
      if ((op.k !== 'query' && op.k !== 'execute') || op.lazy !== true) continue;
      op.lazy = false;
      op.gate = this.gate(this.recordDecision(op.sql, op.decision as SqlDecision));
      this.holding?.gates.push(op.gate);
    }
  }

  /** The `command` record: the decision, and for a lazy pure read also how it ended. */
  private recordDecision(sql: string, d: SqlDecision, approvalId?: string, refused?: SluiceError, result?: ResultFields): Promise<void> {
    const details: Record<string, unknown> = {};
    if (d.statements.length > 1) details.statements = d.statements.map((s) => ({ kind: s.facts.kind, effect: s.decision.effect, rule: s.decision.rule }));
    if (result?.tags !== undefined) details.tags = result.tags;
    return this.o.pipeline.record({
      type: 'command',
      session: this.o.session,
      command: {
        text: sql,
        kind: commandKind(d),
        objects: [...new Set(d.statements.flatMap((s) => [...s.facts.tablesRead, ...s.facts.tablesWritten]))],
      },
      decision: d.decision,
      policyVersion: this.o.pipeline.policyVersion,
      outcome: result !== undefined ? result.outcome : refused === undefined && (d.decision.effect === 'allow' || approvalId !== undefined) ? 'pending' : 'denied',
      ...(approvalId !== undefined ? { approval: { id: approvalId, ...(refused !== undefined ? { reason: refused.message } : {}) } } : {}),
      ...(result !== undefined ? resultEventFields(result) : {}),
      ...(details.statements !== undefined || details.tags !== undefined ? { details } : {}),
    });
  }

  // ───────────────────────────── upstream → client ─────────────────────────────

  private onUpstreamData(chunk: Buffer): void {
    this.upstreamQueue.push(chunk);
    if (this.upstreamQueue.length > MAX_QUEUED_CHUNKS) this.o.upstream.pause();
    if (!this.upstreamPumping) void this.pumpUpstream();
  }

  private async pumpUpstream(): Promise<void> {
    this.upstreamPumping = true;
    const { client, upstream } = this.o;
    try {
      while (this.upstreamQueue.length > 0 && !this.closed) {
        const reader = this.upstreamReader;
        reader.feed(this.upstreamQueue.shift() as Buffer);
        // A pure read without its record yet: hold this chunk's output (its result, and whatever
        // comes before and after it, so the chunk still leaves in one write) until it is durable.
        if (this.ops.some(isLazy)) this.holding ??= { parts: [], gates: [] };
        // Contiguous unchanged frames are written as one view of the received chunk.
        let runStart = reader.cursor;
        let runEnd = runStart;
        const flushRun = (): void => {
          if (runEnd > runStart) this.toClient(reader.buffer.subarray(runStart, runEnd));
        };
        while (!this.closed && reader.next()) {
          const head = this.ops[0];
          if (head !== undefined && (head.k === 'query' || head.k === 'execute')) {
            if (head.lazy === true) {
              head.begun = true;
              this.holding ??= { parts: [], gates: [] };
            } else if (head.gate !== undefined && !head.gate.done) {
              // Nothing of this command's result crosses before its record is durable.
              if (this.holding !== undefined) {
                if (!this.holding.gates.includes(head.gate)) this.holding.gates.push(head.gate);
              } else {
                flushRun();
                runStart = runEnd = reader.start;
                await head.gate.promise;
                if (this.closed) break;
              }
            }
          }
          const result = this.handleUpstreamFrame();
          if (result === undefined) {
            runEnd = reader.end;
            continue;
          }
          flushRun();
          if (result instanceof Promise) {
            const replacement = await result;
            if (replacement !== null) this.toClient(replacement);
          } else if (result !== null) {
            this.toClient(result);
          }
          runStart = runEnd = reader.end;
        }
        flushRun();
        if (this.holding !== undefined && !this.closed) {
          const head = this.ops[0];
          if (head !== undefined && (head.k === 'query' || head.k === 'execute') && head.lazy === true && head.begun === true) {
            if (head.k === 'query' && awaitsOnlyReady(head)) {
              // Its result is complete and only ReadyForQuery is to come (PostgreSQL flushes an
              // error at once and ReadyForQuery after it): keep holding, copied out of the
              // reader's buffer, so the read stays one record whatever the chunking.
              this.holding.parts.splice(0, this.holding.parts.length, ...this.holding.parts.map((b) => Buffer.from(b)));
              continue;
            }
            // Its result goes on past this chunk (held views die at the next feed): record the
            // decision now, send what is held once it is durable, stream the rest as it comes.
            head.lazy = false;
            head.gate = this.gate(this.recordDecision(head.sql, head.decision as SqlDecision));
            this.holding.gates.push(head.gate);
          }
          await this.release();
        }
      }
      if (upstream.isPaused() && client.writableNeedDrain !== true) upstream.resume();
    } catch (err) {
      this.fatal(err);
    } finally {
      this.upstreamPumping = false;
    }
  }

  private toClient(bytes: Buffer): void {
    if (this.holding !== undefined) {
      this.holding.parts.push(bytes);
      return;
    }
    if (!this.o.client.writable) return;
    this.bytesOut += bytes.length;
    if (!this.o.client.write(bytes)) this.o.upstream.pause();
  }

  /** Once the held records are durable, send what was held, in one write. */
  private async release(): Promise<void> {
    const held = this.holding as Held;
    for (const g of held.gates) if (!g.done) await g.promise;
    this.holding = undefined;
    if (this.closed) return;
    const { client } = this.o;
    client.cork();
    for (const part of held.parts) this.toClient(part);
    client.uncork();
  }

  /**
   * Returns undefined to forward the frame as is, a Buffer to send instead, null to drop it, or a
   * promise of either when the frame needs I/O first (column name lookup for masking).
   */
  private handleUpstreamFrame(): Buffer | null | undefined | Promise<Buffer | null> {
    const reader = this.upstreamReader;
    const type = reader.type;
    const head = this.ops[0];
    switch (type) {
      case Backend.DataRow: {
        if (head?.k === 'probe') {
          const b = new BodyReader(reader.body());
          const values: string[] = [];
          for (let i = b.int16(); i > 0; i--) {
            const len = b.int32();
            values.push(len < 0 ? '' : b.bytes(len).toString('utf8'));
          }
          head.values = values;
          return null;
        }
        if (head === undefined || (head.k !== 'query' && head.k !== 'execute')) {
          // A row Sluice cannot place is never sent as it came: every value gets the detectors.
          if (!this.unplacedLogged) this.o.log(`postgres: session ${this.o.session.id}: a result row arrived with no command to place it under; masking it with the detectors`);
          this.unplacedLogged = true;
          const frameBytes = reader.frame();
          const sent = maskDataRow(frameBytes, this.unplacedRows(reader.buffer.readInt16BE(reader.start + 5)), this.masked);
          return sent === frameBytes ? undefined : sent;
        }
        head.out.rows += 1;
        head.out.bytes += reader.end - reader.start;
        if (head.rows === undefined && head.k === 'execute') this.planUnknownRows(head, reader.buffer.readInt16BE(reader.start + 5));
        const rp = head.rows;
        const frameBytes = reader.frame();
        const sent = rp === undefined || !rp.plan.active ? frameBytes : maskDataRow(frameBytes, rp, head.out.masked);
        // One row past the cap tells the audit log the preview is truncated.
        if (head.out.rows <= this.o.previewRows + 1) this.addPreviewRow(head.out, sent, rp);
        return sent === frameBytes ? undefined : sent;
      }
      case Backend.RowDescription: {
        const fields = parseRowDescription(reader.body());
        if (head?.k === 'describe' && head.internal !== undefined) {
          // Sluice's own Describe for an Execute that came without one: plan it, tell no one.
          this.ops.shift();
          const target = head.internal;
          const planning = target.rows === undefined ? this.planRows(target, fields, undefined) : undefined;
          return planning === undefined ? null : planning;
        }
        if (head?.k === 'describe') {
          this.ops.shift();
          let st: PreparedInfo | undefined;
          let portal: PortalInfo | undefined;
          if (head.target === 'S') {
            st = this.statements.get(head.name);
            if (st !== undefined) st.fields = fields;
          } else {
            portal = this.portals.get(head.name);
            if (portal !== undefined) portal.fields = fields;
          }
          // Clients pipeline Describe and Execute: the Execute was already forwarded, so plan its
          // masking now, before any of its rows arrive.
          const plans: Promise<null>[] = [];
          for (const op of this.ops) {
            if (op.k !== 'execute' || op.rows !== undefined || op.portal === undefined) continue;
            if (portal !== undefined && op.portal === portal) {
              const pl = this.planRows(op, fields, undefined);
              if (pl !== undefined) plans.push(pl);
            } else if (st !== undefined && op.portal.statement === st && op.portal.fields === undefined) {
              const pl = this.planRows(op, fields, op.portal.resultFormats);
              if (pl !== undefined) plans.push(pl);
            }
          }
          if (plans.length > 0) {
            const frameBytes = reader.frame();
            return Promise.all(plans).then(() => frameBytes);
          }
          return undefined;
        }
        if (head?.k === 'query') {
          const planning = this.planRows(head, fields, undefined);
          if (planning !== undefined) {
            const frameBytes = reader.frame();
            return planning.then(() => frameBytes);
          }
        }
        return undefined;
      }
      case Backend.CommandComplete: {
        if (head?.k === 'probe') {
          this.ops.shift();
          head.done(head.values);
          return null;
        }
        if (this.copyFailed !== undefined) return this.failCopy(head);
        if (head?.k === 'query') {
          head.out.tags.push(new BodyReader(reader.body()).cstring());
          head.rows = undefined;
          return undefined;
        }
        if (head?.k === 'execute') {
          head.out.tags.push(new BodyReader(reader.body()).cstring());
          this.ops.shift();
          this.finishCommand(head);
        }
        return undefined;
      }
      case Backend.EmptyQueryResponse:
      case Backend.PortalSuspended:
        if (head?.k === 'execute') {
          this.ops.shift();
          this.finishCommand(head);
        }
        return undefined;
      case Backend.ParseComplete:
      case Backend.BindComplete:
      case Backend.CloseComplete:
      case Backend.NoData:
        if (head?.k === 'probe-step') {
          this.ops.shift();
          return null;
        }
        if (head !== undefined && head.k !== 'query' && head.k !== 'execute' && head.k !== 'sync') {
          this.ops.shift();
          if (head.k === 'describe' && head.internal !== undefined) return null;
        }
        return undefined;
      case Backend.ParameterDescription:
        return undefined;
      case Backend.ErrorResponse:
        return this.onUpstreamError();
      case Backend.ReadyForQuery: {
        this.txStatus = reader.body()[0] ?? TxStatus.Idle;
        this.copyIn = false;
        this.copyOutMasking = false;
        this.copyOut = undefined;
        this.copyFailed = undefined;
        if (head?.k === 'query') {
          this.ops.shift();
          if (head.denied === undefined) this.finishCommand(head);
          // Any ParameterStatus it caused came before this, and was checked (onParameterStatus).
          head.onReady?.();
        } else if (head?.k === 'sync' || head?.k === 'denied-call') {
          this.ops.shift();
          if (head.k === 'sync') head.onReady?.();
        }
        return undefined;
      }
      case Backend.CopyOutResponse: {
        this.copyOutMasking = true;
        this.copyFailed = undefined;
        const op = head !== undefined && (head.k === 'query' || head.k === 'execute') ? head : undefined;
        this.copyOut = op?.copies?.shift();
        const body = reader.body();
        const binary = body[0] === 1;
        const columns = body.length >= 3 ? body.readInt16BE(1) : -1;
        if (!this.o.masker.inert) {
          // Fail closed: rows Sluice cannot read per column are never sent.
          if (this.copyOut !== undefined && this.copyOut.columns !== columns) this.copyFailed = this.copyError(`the COPY has ${columns} columns, ${this.copyOut.columns} were described`);
          else if (this.copyOut === undefined && binary) this.copyFailed = this.copyError('binary COPY output can only be masked when its columns are known');
        }
        return undefined;
      }
      case Backend.CopyInResponse:
        this.copyIn = true;
        return undefined;
      case Backend.CopyData: {
        if (!this.copyOutMasking) return undefined;
        if (this.copyFailed !== undefined) return null;
        if (head !== undefined && (head.k === 'query' || head.k === 'execute')) {
          head.out.bytes += reader.end - reader.start;
        }
        const counter = head !== undefined && (head.k === 'query' || head.k === 'execute') ? head.out.masked : this.masked;
        if (this.copyOut !== undefined) {
          let masked: Buffer | undefined;
          try {
            masked = this.copyOut.mask(reader.body(), counter);
          } catch (err) {
            if (!(err instanceof CopyShapeError)) throw err;
            this.copyFailed = this.copyError(err.message);
            return null;
          }
          return masked === undefined ? undefined : frame(Backend.CopyData, masked);
        }
        const text = reader.body().toString('utf8');
        const masked = this.o.masker.maskText(text, counter);
        if (masked === text) return undefined;
        return frame(Backend.CopyData, Buffer.from(masked, 'utf8'));
      }
      case Backend.CopyDone:
        return this.copyFailed !== undefined ? null : undefined;
      case Backend.NoticeResponse:
        return this.maskFields(Backend.NoticeResponse, parseErrorFields(reader.body()));
      case Backend.NotificationResponse:
        return this.maskNotification(reader.body());
      case Backend.BackendKeyData:
        // Only valid during startup; a later one would leak the real key.
        return null;
      case Backend.ParameterStatus:
        return this.onParameterStatus(reader.body());
      default:
        return undefined;
    }
  }

  /**
   * The guard refuses every statement that changes how the server reads SQL (parser-safety), but a
   * function or procedure can still call set_config() inside it. The server reports both settings
   * as they change: if one no longer matches Sluice's parser, the session ends (fail closed)
   * before Sluice decides another statement from this client on a parse the server would not share.
   */
  private onParameterStatus(body: Buffer): undefined {
    const r = new BodyReader(body);
    const why = unsafeServerSetting(r.cstring(), r.cstring(), this.o.serverEncoding);
    if (why !== undefined) throw this.unsafeSetting(why);
    return undefined;
  }

  /** The error that ends a session whose server now reads SQL otherwise than Sluice (logged). */
  private unsafeSetting(why: string): SluiceError {
    this.o.log(`postgres session ${this.o.session.id}: ${why}; ending the session`);
    return new SluiceError('SLUICE_POLICY_DENIED', `the session changed how the server reads SQL and was ended (${BUILTIN_RULES.parserSafety})`, { detail: why });
  }

  private copyError(why: string): SluiceError {
    return new SluiceError('SLUICE_POLICY_DENIED', 'sluice: COPY output withheld: its rows could not be masked per column', { detail: why });
  }

  /**
   * The upstream finished a COPY whose rows were withheld: the client, which saw CopyOutResponse
   * and no rows, gets an error in place of CommandComplete (as if the server had failed the COPY),
   * and the command is recorded as failed.
   */
  private failCopy(head: Op | undefined): Buffer {
    const e = this.copyFailed as SluiceError;
    this.copyFailed = undefined;
    this.copyOut = undefined;
    this.copyOutMasking = false;
    if (head?.k === 'query') {
      head.out.error = { code: e.sqlstate, message: e.message };
      head.rows = undefined;
    } else if (head?.k === 'execute') {
      head.out.error = { code: e.sqlstate, message: e.message };
      this.ops.shift();
      this.finishCommand(head);
    }
    return errorResponse({ code: e.sqlstate, message: e.message, ...(e.detail !== undefined ? { detail: e.detail } : {}) });
  }

  private planRows(head: Extract<Op, { k: 'query' | 'execute' }>, fields: readonly FieldDescription[], formats: readonly number[] | undefined): Promise<null> | undefined {
    const masker = this.o.masker;
    const plan = (cols: readonly ColumnRef[]): null => {
      head.rows = buildRowMaskPlan(fields, masker.planColumns(cols), formats);
      return null;
    };
    if (this.o.previewRows > 0) head.out.preview = { columns: fields.map((f) => f.name), rows: [] };
    const cols = this.columnsOf(fields);
    if (cols instanceof Promise) return cols.then(plan);
    plan(cols);
    return undefined;
  }

  /** The columns masking plans by: their table columns (looked up when needed), else the names the result gives. */
  private columnsOf(fields: readonly FieldDescription[]): ColumnRef[] | Promise<ColumnRef[]> {
    // A table column, or a value of a user-defined type (a composite may carry masked fields).
    if (this.o.needsTableNames && fields.some((f) => f.tableOid !== 0 || f.typeOid >= FIRST_USER_OID)) {
      const cols = this.o.resolveColumns(fields);
      if (this.changedRelations.size === 0) return cols;
      return cols instanceof Promise ? cols.then((c) => this.withSessionOrigins(fields, c)) : this.withSessionOrigins(fields, cols);
    }
    return fields.map((f) => ({ column: f.name }));
  }

  /**
   * A column of a relation the gateway's catalog cannot name (made by this session in a
   * transaction not yet committed): masked by the rules of the same column of every table this
   * session's DDL read.
   */
  private withSessionOrigins(fields: readonly FieldDescription[], cols: ColumnRef[]): ColumnRef[] {
    let out: ColumnRef[] | undefined;
    const sources = [...new Set([...this.changedRelations.values()].flat())];
    fields.forEach((f, i) => {
      const c = cols[i]!;
      if (f.tableOid === 0 || c.table !== undefined || sources.length === 0) return;
      out ??= cols.slice();
      const extra = sources.map((t) => (t.includes('.') ? { schema: t.slice(0, t.lastIndexOf('.')), table: bareName(t), column: c.column } : { schema: 'public', table: t, column: c.column }));
      out[i] = { ...c, origins: [...(c.origins ?? []), ...extra] };
    });
    return out ?? cols;
  }

  /**
   * Detectors on every column, names unknown: for rows that arrive with no command to place them
   * under, and (with Bind's formats) for an Execute whose columns were never described.
   */
  private unplacedRows(columnCount: number, formats: readonly number[] = []): RowMaskPlan {
    const fields: FieldDescription[] = [];
    for (let i = 0; i < columnCount; i++) fields.push({ name: '', tableOid: 0, attnum: 0, typeOid: 0, format: 0 });
    return buildRowMaskPlan(fields, this.o.masker.planColumns(fields.map(() => ({ column: '' }))), formats);
  }

  /** Extended protocol without a Describe: plan from the first DataRow, detectors only, formats from Bind. */
  private planUnknownRows(head: Extract<Op, { k: 'execute' }>, columnCount: number): void {
    head.rows = this.unplacedRows(columnCount, head.portal?.resultFormats ?? []);
  }

  /** Keep a row as the client received it; binary non-text values are shown as a placeholder. */
  private addPreviewRow(out: Outcome, frameBytes: Buffer, rp: RowMaskPlan | undefined): void {
    if (this.o.previewRows === 0) return;
    const preview = (out.preview ??= { columns: [], rows: [] });
    const n = frameBytes.readInt16BE(5);
    const row: (string | null)[] = [];
    let o = 7;
    for (let i = 0; i < n && o + 4 <= frameBytes.length; i++) {
      const len = frameBytes.readInt32BE(o);
      o += 4;
      if (len < 0) {
        row.push(null);
        continue;
      }
      const mode = rp?.modes[i] ?? 'text';
      // A preview is for a human reading a replay, not a copy of the data. Long values are
      // replaced whole, never cut: a cut could split a secret past the audit log's detectors.
      if (mode !== 'text') row.push(`[binary ${len} bytes]`);
      else if (len > PREVIEW_VALUE_BYTES) row.push(`[${len} bytes]`);
      else row.push(frameBytes.toString('utf8', o, o + len));
      o += len;
    }
    preview.rows.push(row);
  }

  private onUpstreamError(): Buffer | null | undefined {
    const reader = this.upstreamReader;
    const fields = parseErrorFields(reader.body());
    const head = this.ops[0];
    let denied: SluiceError | undefined;
    const code = fields.get(Field.Code);
    if (head !== undefined && (head.k === 'query' || head.k === 'parse' || head.k === 'denied-call') && head.denied !== undefined && code === SYNTAX_ERROR) {
      denied = head.denied;
    } else if (head?.k === 'execute' && head.denied !== undefined && code === UNDEFINED_CURSOR) {
      denied = head.denied;
    }
    if (head?.k === 'query' && denied === undefined) {
      head.out.error = { code: fields.get(Field.Code) ?? '', message: fields.get(Field.Message) ?? '' };
    }
    if (head !== undefined && head.k !== 'query' && head.k !== 'sync' && head.k !== 'denied-call') {
      // Extended protocol: the upstream now skips every message until Sync.
      if (head.k === 'execute' && head.denied === undefined) {
        head.out.error = { code: fields.get(Field.Code) ?? '', message: fields.get(Field.Message) ?? '' };
        this.finishCommand(head);
      }
      while (this.ops.length > 0 && this.ops[0]?.k !== 'sync') {
        const skipped = this.ops.shift();
        // A Query sent inside the failed batch is discarded too: nothing waits for its answer.
        if (skipped?.k === 'query') skipped.onReady?.();
        // So is a settings probe: the statement it was for will be discarded as well.
        if (skipped?.k === 'probe') skipped.done(undefined);
      }
      // The batch's Sync is still to come: what the client sends until then is ignored upstream too.
      if (this.ops.length === 0) this.skippingToSync = true;
    }
    if (denied !== undefined) {
      return errorResponse({ code: denied.sqlstate, message: denied.message, ...(denied.detail !== undefined ? { detail: denied.detail } : {}) });
    }
    return this.maskFields(Backend.ErrorResponse, fields);
  }

  /**
   * LISTEN delivers what other sessions NOTIFY (pid, channel, payload): payloads are free text
   * from anywhere in the database, masked like any other text before they cross.
   */
  private maskNotification(body: Buffer): Buffer | undefined {
    const r = new BodyReader(body);
    const pid = r.int32();
    const channel = r.cstring();
    const payload = r.cstring();
    const masked = this.o.masker.maskText(payload, this.masked);
    if (masked === payload) return undefined;
    const head = Buffer.alloc(4);
    head.writeInt32BE(pid, 0);
    return frame(Backend.NotificationResponse, Buffer.concat([head, Buffer.from(channel + '\0' + masked + '\0', 'utf8')]));
  }

  /** Error and notice text can echo data (a duplicate key's value): mask before it crosses. */
  private maskFields(type: number, fields: Map<number, string>): Buffer | undefined {
    let changed = false;
    const detail = fields.get(Field.Detail);
    if (detail !== undefined && !this.o.masker.inert) {
      const withheld = withholdRowValues(detail, fields, this.protects);
      if (withheld !== detail) {
        fields.set(Field.Detail, withheld);
        this.masked.add('constraint_detail', fields.get(Field.Table));
        changed = true;
      }
    }
    for (const code of [Field.Message, Field.Detail, Field.Hint, Field.Where, Field.InternalQuery]) {
      const v = fields.get(code);
      if (v === undefined) continue;
      const m = this.o.masker.maskText(v, this.masked);
      if (m !== v) {
        fields.set(code, m);
        changed = true;
      }
    }
    return changed ? buildFieldsMessage(type, fields) : undefined;
  }

  private finishCommand(op: Extract<Op, { k: 'query' | 'execute' }>): void {
    // A view or child table created or changed here: the lineage reloads before the next statement.
    if (op.decision !== undefined && this.o.lineage !== undefined && op.decision.statements.some((st) => RELATION_DDL.has(st.facts.statement))) this.o.lineage.invalidate();
    if (op.k === 'query' && op.denied !== undefined) return;
    if (op.out.masked.total > 0) this.masked.merge(op.out.masked);
    const out = op.out;
    const result: ResultFields = {
      outcome: out.error === undefined ? 'success' : 'failure',
      ...(out.error !== undefined ? { error: out.error } : {}),
      rows: out.rows,
      bytes: out.bytes,
      durationMs: Date.now() - op.started,
      ...(out.masked.total > 0 ? { mask: out.masked.toJSON() } : {}),
      ...(out.preview !== undefined && out.preview.rows.length > 0 ? { preview: out.preview } : {}),
      ...(out.tags.length > 0 ? { tags: out.tags } : {}),
    };
    if (op.lazy === true) {
      // Decision and result in one record; the held result waits for it (see pumpUpstream).
      op.lazy = false;
      op.gate = this.gate(this.recordDecision(op.sql, op.decision as SqlDecision, undefined, undefined, result));
      this.holding?.gates.push(op.gate);
      return;
    }
    this.o.pipeline
      .record({
        type: 'command.result',
        session: this.o.session,
        // The kind again, so an exported result has the activity of its statement.
        command: op.decision === undefined ? { text: op.sql } : { text: op.sql, kind: commandKind(op.decision) },
        ...resultEventFields(result),
        ...(result.tags !== undefined ? { details: { tags: result.tags } } : {}),
      })
      .catch((err) => this.fatal(err));
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /** Tell the client why, in its protocol, then close both sides. */
  fatal(err: unknown): void {
    if (this.closed) return;
    const e = toSluiceError(err);
    if (e.code === 'SLUICE_INTERNAL') this.o.log(`postgres session ${this.o.session.id}: ${String((err as Error)?.stack ?? err)}`);
    if (this.o.client.writable) this.o.client.write(errorResponse({ severity: 'FATAL', code: e.sqlstate, message: `sluice: ${e.message}`, ...(e.detail !== undefined ? { detail: e.detail } : {}) }));
    // Said as the HTTP session cache says it, so `sessions list` reads the same for every protocol.
    this.shutdown(e.code === 'SLUICE_TOKEN_EXPIRED' ? 'token expired' : `error ${e.code}`);
  }

  shutdown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelExpiry();
    this.heldForExpiry?.();
    this.markAnswered?.();
    this.probeWaiter?.(undefined);
    if (this.held !== undefined) void this.o.approvals?.withdraw(this.held.id, `client session ended (${reason})`);
    // Pure reads sent upstream whose result never reached the client are still recorded.
    for (const op of this.ops) {
      if ((op.k !== 'query' && op.k !== 'execute') || op.lazy !== true || op.decision === undefined) continue;
      op.lazy = false;
      const ended: ResultFields = { outcome: 'cancelled', error: { message: `the session ended (${reason}) before the result reached the client` }, durationMs: Date.now() - op.started };
      this.recordDecision(op.sql, op.decision, undefined, undefined, ended).catch(() => undefined);
    }
    // A statement still running upstream would run on after its client left (PostgreSQL notices a
    // closed socket only when it next writes): cancel it, as psql does on Ctrl+C.
    if (this.ops.length > 0 && !reason.startsWith('upstream')) void this.o.cancelUpstream?.();
    this.o.client.end();
    this.o.upstream.end();
    setTimeout(() => {
      this.o.client.destroy();
      this.o.upstream.destroy();
    }, 1000).unref();
    this.o.onClose({ reason, commands: this.commands + this.denied, denied: this.denied, bytes: this.bytesOut, mask: this.masked.toJSON() });
  }

  /** Graceful stop requested by the gateway: tell the client, like PostgreSQL's admin shutdown. */
  terminate(): void {
    this.fatal(new SluiceError('SLUICE_UPSTREAM_UNAVAILABLE', 'the gateway is shutting down'));
  }

  get transactionStatus(): number {
    return this.txStatus;
  }

  /** True while the client is sending COPY data (exposed for tests and metrics). */
  get inCopy(): boolean {
    return this.copyIn;
  }
}

/**
 * Constraint errors echo stored values that column masking never sees: a NOT NULL or CHECK
 * violation lists the whole failing row (`Failing row contains (1, null, …, hunter2)`), and a key
 * violation the key's values (`Key (api_key)=(…) already exists`). While masking is on, the failing
 * row is withheld (its values cannot be told apart: PostgreSQL joins them with ", " unquoted), and
 * a key's values are withheld when one of its columns is masked. Detectors still run on the rest.
 */
function withholdRowValues(detail: string, fields: ReadonlyMap<number, string>, protects: ProtectsColumn): string {
  if (detail.startsWith('Failing row contains ')) return 'Failing row contains (values withheld by Sluice: a row can hold masked columns).';
  const key = /^Key \((.*?)\)=\(/s.exec(detail);
  if (key === null) return detail;
  const table = fields.get(Field.Table);
  const schema = fields.get(Field.Schema);
  const tables = table === undefined ? [] : schema === undefined ? [table] : [table, `${schema}.${table}`];
  const columns = (key[1] as string).split(',').map((c) => c.trim().replace(/^"(.*)"$/s, '$1'));
  if (!columns.some((c) => protects(c, tables))) return detail;
  return `Key (${key[1] as string})=(values withheld by Sluice: masked column)${/ already exists\.$/.test(detail) ? ' already exists.' : '.'}`;
}
