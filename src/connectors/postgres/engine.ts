/**
 * The PostgreSQL engine: accepts clients, negotiates TLS, takes the agent's OIDC token as the
 * password, opens the upstream with the credential Sluice holds, then hands both sockets to a
 * ProxySession. Failures before the session reach the client as a FATAL ErrorResponse.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import pg from 'pg';
import type { PostgresUpstream, ResolvedConnection } from '../../config/index.js';
import { SluiceError, toSluiceError } from '../../errors.js';
import type { SessionInfo } from '../../pipeline/session.js';
import type { SessionSummary } from '../../pipeline/pipeline.js';
import { splitHostPort, type Engine, type EngineContext } from '../engine.js';
import type { ColumnRef } from '../../masking/index.js';
import { AUDIT_DEFAULTS } from '../../audit/index.js';
import { clip, isSupportedClientEncoding, shadowsCatalog, unsafeServerSetting } from '../../policy/index.js';
import { CancelRegistry } from './cancel-registry.js';
import { BodyReader, FrameReader } from './frame-reader.js';
import {
  AUTH_CLEARTEXT,
  AUTH_OK,
  Backend,
  backendKeyData,
  cancelRequest,
  errorResponse,
  Frontend,
  readyForQuery,
} from './protocol.js';
import { ProxySession } from './proxy-session.js';
import type { FieldDescription } from './rows.js';
import { readStartupPacket } from './startup.js';
import { assertTokenTransport } from './transport-guard.js';
import { connectUpstream } from './upstream.js';
import { describeStatements } from './describe.js';
import { RelationLineage, type CatalogRelation, type CatalogType, type TypedColumn } from './lineage.js';

/** Time a client has to finish startup and authentication. */
const AUTH_TIMEOUT_MS = 30_000;
/** The password message carries a token; cap it well above any real JWT. */
const MAX_PASSWORD_MESSAGE = 64 * 1024;

/**
 * Client startup parameters passed upstream. Everything else is dropped: `options` could carry
 * `-c default_transaction_read_only=off`, `replication` would open the replication protocol.
 */
const FORWARDED_PARAMS = new Set(['application_name', 'client_encoding', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits', 'search_path']);

/**
 * Every relation (names for every schema; view definitions outside the system schemas), for
 * lineage.ts. Other sessions' temporary relations are listed too: harmless, and a session's own
 * temporary views need them.
 */
const CATALOG_SQL = `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            THEN pg_catalog.pg_get_viewdef(c.oid) END AS definition
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

/**
 * User-defined types (OID 16384 and up): a composite's fields in order, the element of an array,
 * the base of a domain. Every table's row type is among them.
 */
const TYPES_SQL = `SELECT t.oid::int8 AS oid, n.nspname AS schema, c.relname,
       CASE WHEN t.typtype = 'c' THEN (
         SELECT pg_catalog.json_agg(pg_catalog.json_build_object('n', a.attname, 't', a.atttypid::int8) ORDER BY a.attnum)
           FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END AS fields,
       (CASE WHEN t.typtype = 'd' THEN t.typbasetype WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE 0 END)::int8 AS inner
  FROM pg_catalog.pg_type t
  LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE t.oid >= 16384`;

/** Columns whose type is user-defined (lineage.ts keeps those of composite types). */
const TYPED_COLUMNS_SQL = `SELECT n.nspname AS schema, c.relname AS name, a.attname AS column, a.atttypid::int8 AS type
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

/** Every ancestor of every child table or partition, nearest first. */
const ANCESTORS_SQL = `WITH RECURSIVE a(child, parent, depth) AS (
    SELECT inhrelid, inhparent, 1 FROM pg_catalog.pg_inherits
    UNION ALL
    SELECT a.child, i.inhparent, a.depth + 1 FROM a JOIN pg_catalog.pg_inherits i ON i.inhrelid = a.parent WHERE a.depth < 64)
  SELECT a.child::int8 AS oid, n.nspname AS schema, c.relname AS name
    FROM a JOIN pg_catalog.pg_class c ON c.oid = a.parent JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   ORDER BY a.child, a.depth`;

interface CancelTarget {
  readonly pid: number;
  readonly secret: number;
  readonly upstream: PostgresUpstream;
  /** The proxied session, set once it starts: a cancel also withdraws a command held for approval. */
  proxy?: ProxySession;
}

export function createPostgresEngine(ctx: EngineContext): Engine {
  const { config, pipeline, log } = ctx;
  const cancels = new CancelRegistry<CancelTarget>();
  const live = new Set<ProxySession>();
  const sockets = new Set<Socket>();
  /** Table columns by `oid:attnum`, per connection. */
  const columnCaches = new Map<string, Map<string, ColumnRef>>();
  const columnCache = (name: string): Map<string, ColumnRef> => {
    let c = columnCaches.get(name);
    if (c === undefined) columnCaches.set(name, (c = new Map()));
    return c;
  };
  const lineages = new Map<string, RelationLineage>();
  const metaClients = new Map<string, Promise<pg.Client>>();
  let tlsContext: SecureContext | undefined;
  if (config.tls !== undefined) {
    // Read at startup so a bad path fails `sluice serve`, not the first client.
    tlsContext = createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) });
  }
  let server: Server | undefined;

  /** The lookup chain per connection: one query at a time on its metadata client. */
  const fetching = new Map<string, Promise<void>>();

  /**
   * Look up schema/table names for RowDescription table OIDs, once per (connection, oid, attnum).
   * Lookups queue per connection, and each looks up only what the ones before it left missing,
   * so sessions starting together share the work.
   */
  const fetchColumns = (connection: Extract<ResolvedConnection, { type: 'postgres' }>, missing: readonly FieldDescription[]): Promise<void> => {
    const name = connection.name;
    const next = (fetching.get(name) ?? Promise.resolve()).then(() => {
      const cache = columnCache(name);
      const still = missing.filter((f) => !cache.has(`${f.tableOid}:${f.attnum}`));
      return still.length === 0 ? undefined : lookupColumns(connection, still);
    });
    const tail = next.catch(() => undefined);
    fetching.set(name, tail);
    void tail.then(() => {
      if (fetching.get(name) === tail) fetching.delete(name);
    });
    return next;
  };

  /** The connection's metadata client: catalog lookups, one query at a time. */
  const metaClient = (connection: Extract<ResolvedConnection, { type: 'postgres' }>): Promise<pg.Client> => {
    let client = metaClients.get(connection.name);
    if (client === undefined) {
      const c = new pg.Client(sideClientConfig(connection.upstream, 'sluice-metadata'));
      c.on('error', () => metaClients.delete(connection.name));
      client = c.connect().then(() => c);
      metaClients.set(connection.name, client);
      client.catch(() => metaClients.delete(connection.name));
    }
    return client;
  };

  const lookupColumns = async (connection: Extract<ResolvedConnection, { type: 'postgres' }>, missing: readonly FieldDescription[]): Promise<void> => {
    const c = await metaClient(connection);
    const oids = [...new Set(missing.map((f) => f.tableOid))];
    const res = await c.query<{ oid: string; attnum: number; nspname: string; relname: string; attname: string }>(
      `SELECT c.oid::int8 AS oid, a.attnum, n.nspname, c.relname, a.attname
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE c.oid = ANY($1::oid[])`,
      [oids],
    );
    const cache = columnCache(connection.name);
    for (const row of res.rows) {
      cache.set(`${Number(row.oid)}:${row.attnum}`, { schema: row.nspname, table: row.relname, column: row.attname });
    }
  };

  /**
   * The planner's row estimate for a held statement, for reviewers. A fresh, read-only connection
   * with a short statement timeout; a named (prepared) statement so the text can hold exactly one
   * statement; EXPLAIN without ANALYZE never executes it. Approvals are human-paced, so a
   * connection per estimate costs nothing that matters.
   */
  const estimateRows = async (connection: Extract<ResolvedConnection, { type: 'postgres' }>, sql: string): Promise<number | undefined> => {
    const c = new pg.Client({
      ...sideClientConfig(connection.upstream, 'sluice-explain'),
      options: '-c statement_timeout=2000 -c default_transaction_read_only=on',
      connectionTimeoutMillis: 3000,
    });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('BEGIN TRANSACTION READ ONLY');
      const res = await c.query<{ 'QUERY PLAN': unknown }>({ name: 'sluice_explain', text: `EXPLAIN (FORMAT JSON) ${sql}` });
      const plan = (res.rows[0]?.['QUERY PLAN'] as { Plan?: { 'Plan Rows'?: unknown } }[] | undefined)?.[0]?.Plan?.['Plan Rows'];
      return typeof plan === 'number' ? plan : undefined;
    } finally {
      await c.end().catch(() => undefined);
    }
  };

  /**
   * The output columns of a SELECT, from PostgreSQL's own Describe on a short-lived connection of
   * the gateway's (Parse, Describe, Sync: nothing is executed). For COPY … TO STDOUT, whose rows
   * carry no column names, and for a result sorted or grouped by columns of `*` (`ORDER BY 3`):
   * both are rare, so a connection per such statement costs nothing that matters.
   */
  const describeColumns = async (connection: Extract<ResolvedConnection, { type: 'postgres' }>, sql: string): Promise<FieldDescription[]> => {
    const [d] = await describeStatements(connection.upstream, connection.name, [sql]);
    if (d !== undefined && 'fields' in d) return d.fields;
    throw new SluiceError('SLUICE_POLICY_DENIED', `the upstream could not describe it: ${d?.error ?? 'no row description'}`);
  };

  /** Result columns by the names their relations give (schema, table, column), looked up once per (connection, oid, attnum). */
  const resolveTableColumns = (connection: Extract<ResolvedConnection, { type: 'postgres' }>, fields: readonly FieldDescription[]): ColumnRef[] | Promise<ColumnRef[]> => {
    const cache = columnCache(connection.name);
    const fromCache = (): ColumnRef[] =>
      fields.map((f) => {
        const hit = f.tableOid === 0 ? undefined : cache.get(`${f.tableOid}:${f.attnum}`);
        return hit ?? { column: f.name };
      });
    const missing = fields.filter((f) => f.tableOid !== 0 && !cache.has(`${f.tableOid}:${f.attnum}`));
    if (missing.length === 0) return fromCache();
    // Column rules need the lookup: failing it fails the session (closed). Without them the
    // lookup only refines secret-like names, and a failed one (the upstream at its connection
    // limit, say) leaves the names the result gave, as the detectors still run on every value.
    if (Object.keys(connection.mask?.columns ?? {}).length > 0) return fetchColumns(connection, missing).then(fromCache);
    return fetchColumns(connection, missing).then(fromCache, (err: unknown) => {
      log(`postgres: column names for ${connection.name} could not be looked up (${err instanceof Error ? err.message : String(err)}); masking by the names results give`);
      return fromCache();
    });
  };

  /** The connection's view and inheritance lineage (lineage.ts), while masking is on. */
  const lineageFor = (connection: Extract<ResolvedConnection, { type: 'postgres' }>): RelationLineage | undefined => {
    let l = lineages.get(connection.name);
    if (l === undefined) {
      const masker = ctx.maskerFor(connection.name);
      if (masker.inert) return undefined;
      l = new RelationLineage(
        {
          catalog: () => readCatalog(connection),
          types: () => readTypes(connection),
          describe: (sqls) => describeStatements(connection.upstream, connection.name, sqls, 3000 + 2 * sqls.length),
          columns: async (fields) => resolveTableColumns(connection, fields),
          forgetColumns: () => columnCaches.delete(connection.name),
        },
        masker,
        log,
        { required: Object.keys(connection.mask?.columns ?? {}).length > 0 },
      );
      lineages.set(connection.name, l);
    }
    return l;
  };

  /** Every relation of the connection's database, with view definitions and ancestors, on its metadata client. */
  const readCatalog = async (connection: Extract<ResolvedConnection, { type: 'postgres' }>): Promise<CatalogRelation[]> => {
    const c = await metaClient(connection);
    const rels = await c.query<{ oid: string; schema: string; name: string; kind: string; definition: string | null }>(CATALOG_SQL);
    const anc = await c.query<{ oid: string; schema: string; name: string }>(ANCESTORS_SQL);
    const ancestors = new Map<number, { schema: string; table: string }[]>();
    for (const a of anc.rows) {
      const list = ancestors.get(Number(a.oid)) ?? [];
      list.push({ schema: a.schema, table: a.name });
      ancestors.set(Number(a.oid), list);
    }
    return rels.rows.map((r) => {
      const oid = Number(r.oid);
      const a = ancestors.get(oid);
      return { oid, schema: r.schema, name: r.name, kind: r.kind, ...(r.definition !== null ? { definition: r.definition } : {}), ...(a !== undefined ? { ancestors: a } : {}) };
    });
  };

  /** User-defined types (composites with their fields, arrays, domains) and the columns that have them. */
  const readTypes = async (connection: Extract<ResolvedConnection, { type: 'postgres' }>): Promise<{ types: CatalogType[]; columns: TypedColumn[] }> => {
    const c = await metaClient(connection);
    const types = await c.query<{ oid: string; schema: string | null; relname: string | null; fields: { n: string; t: number }[] | null; inner: string }>(TYPES_SQL);
    const columns = await c.query<{ schema: string; name: string; column: string; type: string }>(TYPED_COLUMNS_SQL);
    return {
      types: types.rows.map((t) => ({
        oid: Number(t.oid),
        ...(t.relname !== null && t.schema !== null ? { relation: { schema: t.schema, name: t.relname } } : {}),
        ...(t.fields !== null ? { fields: t.fields.map((f) => ({ name: f.n, type: Number(f.t) })) } : {}),
        ...(Number(t.inner) !== 0 ? { inner: Number(t.inner) } : {}),
      })),
      columns: columns.rows.map((r) => ({ schema: r.schema, table: r.name, column: r.column, type: Number(r.type) })),
    };
  };

  /**
   * The columns masking plans by: table columns, with the columns they derive from where their
   * relation is a view or a child table (lineage.ts).
   */
  const resolveColumns = (connection: Extract<ResolvedConnection, { type: 'postgres' }>, fields: readonly FieldDescription[]): ColumnRef[] | Promise<ColumnRef[]> => {
    const refs = resolveTableColumns(connection, fields);
    const lineage = lineageFor(connection);
    if (lineage === undefined) return refs;
    const waiting = lineage.ready([], fields);
    if (waiting === undefined && !(refs instanceof Promise)) return lineage.enrich(fields, refs);
    return Promise.all([refs, waiting]).then(([r]) => lineage.enrich(fields, r));
  };

  const handle = (rawSocket: Socket): void => {
    sockets.add(rawSocket);
    rawSocket.on('close', () => sockets.delete(rawSocket));
    // A peer that vanishes mid-write must never become an uncaught 'error' in the gateway.
    rawSocket.on('error', () => rawSocket.destroy());
    rawSocket.setNoDelay(true);
    void acceptClient(rawSocket).catch((err) => {
      const e = toSluiceError(err);
      if (e.code === 'SLUICE_INTERNAL') log(`postgres: ${String((err as Error)?.stack ?? err)}`);
    });
  };

  const acceptClient = async (rawSocket: Socket): Promise<void> => {
    const source = `${rawSocket.remoteAddress ?? '?'}:${rawSocket.remotePort ?? 0}`;
    let socket: Socket = rawSocket;
    let tls = false;
    const timer = setTimeout(() => {
      if (socket.writable) socket.end(errorResponse({ severity: 'FATAL', code: '08P01', message: 'sluice: authentication timed out' }));
      setTimeout(() => socket.destroy(), 1000).unref();
    }, AUTH_TIMEOUT_MS);
    timer.unref();
    const fatal = (err: unknown): void => {
      const e = toSluiceError(err);
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      socket.end(errorResponse({ severity: 'FATAL', code: e.sqlstate, message: `sluice: ${e.message}`, ...(e.detail !== undefined ? { detail: e.detail } : {}) }));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    try {
      // 1. Startup packets: SSLRequest/GSSENCRequest come first, then the StartupMessage.
      let leftover: Buffer = Buffer.alloc(0);
      let params: ReadonlyMap<string, string> | undefined;
      while (params === undefined) {
        const got = await readStartup(socket, leftover);
        leftover = got.rest;
        const p = got.packet;
        if (p.name === 'ssl-request') {
          if (tls) throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'SSLRequest after TLS was established');
          if (leftover.length > 0) {
            // Bytes after SSLRequest but before the handshake could be injected in cleartext (CVE-2021-23214).
            throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'unexpected data after SSLRequest');
          }
          if (tlsContext === undefined) {
            write(socket, Buffer.from('N'));
            continue;
          }
          write(socket, Buffer.from('S'));
          socket = await upgradeTls(socket, tlsContext);
          socket.on('error', () => socket.destroy());
          tls = true;
          continue;
        }
        if (p.name === 'gssenc-request') {
          write(socket, Buffer.from('N'));
          continue;
        }
        if (p.name === 'cancel-request') {
          clearTimeout(timer);
          const target = cancels.lookup(p.pid, p.secret);
          if (target !== undefined) {
            target.proxy?.cancelHold();
            await sendCancel(target);
          }
          socket.destroy();
          return;
        }
        params = p.params;
      }
      if (params.has('replication')) {
        throw new SluiceError('SLUICE_POLICY_DENIED', 'replication connections are not allowed through Sluice');
      }
      for (const [k, v] of params) {
        if (k.toLowerCase() === 'search_path' && shadowsCatalog(v)) {
          throw new SluiceError('SLUICE_BAD_REQUEST', `search_path ${clip(v)} lists pg_catalog after another schema`, {
            detail: 'a schema before pg_catalog could shadow built-in functions Sluice trusts by name; list pg_catalog first, or leave it out',
          });
        }
        if (k.toLowerCase() === 'client_encoding' && !isSupportedClientEncoding(v)) {
          throw new SluiceError('SLUICE_BAD_REQUEST', `client_encoding ${clip(v)} is not supported through Sluice; use UTF8`, {
            detail: 'Sluice reads statements as UTF-8; in another encoding the server could read the same bytes differently (a quote hidden in a multi-byte character, dollar-quote tags that differ)',
          });
        }
      }
      assertTokenTransport({ tls, remoteAddress: rawSocket.remoteAddress, allowInsecureRemote: config.allowInsecureRemote });
      if (live.size >= config.limits.maxConnections) {
        throw new SluiceError('SLUICE_TOO_MANY_CONNECTIONS', `the gateway is at its limit of ${config.limits.maxConnections} connections`);
      }
      // 2. Who and where: user = role or role@connection, database = connection.
      const user = params.get('user') ?? '';
      const at = user.lastIndexOf('@');
      const role = at >= 0 ? user.slice(0, at) : user;
      const connectionName = at >= 0 ? user.slice(at + 1) : (params.get('database') ?? user);
      // 3. The password is the token.
      write(socket, AUTH_CLEARTEXT);
      const pw = await readPassword(socket, leftover);
      leftover = pw.rest;
      const opened = await pipeline.openSession({
        token: pw.token,
        role,
        connection: connectionName,
        protocol: 'postgres',
        source,
        ...(params.has('application_name') ? { client: params.get('application_name') as string } : {}),
      });
      const { session, connection } = opened;
      if (connection.type !== 'postgres') throw new SluiceError('SLUICE_CONNECTION_UNKNOWN', `connection ${connectionName} is not a postgres connection`);
      // 4. Upstream with Sluice's credential.
      const upstreamParams: Record<string, string> = {};
      for (const [k, v] of params) if (FORWARDED_PARAMS.has(k.toLowerCase())) upstreamParams[k] = v;
      upstreamParams.application_name = `sluice:${session.identity.subject}`.slice(0, 63);
      if (opened.readOnly) {
        // Defence in depth: the upstream itself refuses writes for read-only roles.
        upstreamParams.default_transaction_read_only = 'on';
      }
      let upstream;
      try {
        upstream = await connectUpstream({ upstream: connection.upstream, params: upstreamParams, connectionName });
      } catch (err) {
        const e = toSluiceError(err);
        await pipeline.record({ type: 'upstream.error', session, error: { code: e.code, message: e.message }, outcome: 'failure' }).catch(() => undefined);
        await pipeline.endSession(session, { reason: 'upstream unavailable' }).catch(() => undefined);
        throw e;
      }
      // The server parses with the session's settings, Sluice with standard_conforming_strings on
      // and UTF-8 text: a database or role default that differs ends the session here.
      const serverEncoding = upstream.parameters.get('server_encoding') ?? '';
      const unsafe = [...upstream.parameters].map(([k, v]) => unsafeServerSetting(k, v, serverEncoding)).find((why) => why !== undefined);
      if (unsafe !== undefined) {
        upstream.socket.destroy();
        await pipeline.record({ type: 'upstream.error', session, error: { code: 'SLUICE_POLICY_DENIED', message: unsafe }, outcome: 'failure' }).catch(() => undefined);
        await pipeline.endSession(session, { reason: 'unsafe upstream settings' }).catch(() => undefined);
        throw new SluiceError('SLUICE_POLICY_DENIED', `the upstream session cannot be proxied safely: ${unsafe}`);
      }
      clearTimeout(timer);
      const cancelTarget: CancelTarget = { pid: upstream.pid, secret: upstream.secret, upstream: connection.upstream };
      const key = cancels.register(cancelTarget);
      socket.cork();
      socket.write(AUTH_OK);
      for (const f of upstream.parameterFrames) socket.write(f);
      socket.write(backendKeyData(key.pid, key.secret));
      socket.write(readyForQuery(upstream.txStatus));
      socket.uncork();
      const masker = ctx.maskerFor(connection.name);
      const lineage = lineageFor(connection);
      const proxy: ProxySession = new ProxySession({
        client: socket,
        upstream: upstream.socket as Socket,
        clientLeftover: leftover,
        upstreamLeftover: upstream.leftover,
        txStatus: upstream.txStatus,
        session,
        pipeline,
        masker,
        ...(ctx.approvals !== undefined ? { approvals: ctx.approvals } : {}),
        // Column rules and secret-like names apply to the column a value comes from, not the
        // name the query gave it (`SELECT password AS x`): resolve origins whenever masking is on.
        needsTableNames: !masker.inert,
        serverEncoding,
        maxMessageBytes: config.limits.maxMessageBytes,
        resolveColumns: (fields) => resolveColumns(connection, fields),
        describeColumns: (sql) => describeColumns(connection, sql),
        ...(lineage !== undefined ? { lineage } : {}),
        estimateRows: (sql) => estimateRows(connection, sql),
        previewRows: config.audit.previewRows ?? AUDIT_DEFAULTS.previewRows,
        idleTimeoutMs: config.limits.idleTimeoutMs,
        expiryDrainMs: config.identity.tokenExpiryDrainMs,
        cancelUpstream: () => sendCancel(cancelTarget),
        log,
        onClose: (summary) => {
          key.release();
          live.delete(proxy);
          void endSession(session, summary);
        },
      });
      live.add(proxy);
      cancelTarget.proxy = proxy;
      proxy.start();
    } catch (err) {
      clearTimeout(timer);
      fatal(err);
    }
  };

  const endSession = async (session: SessionInfo, summary: SessionSummary): Promise<void> => {
    await pipeline.endSession(session, summary).catch((err) => log(`postgres: could not record end of session ${session.id}: ${String(err)}`));
  };

  return {
    protocol: 'postgres',
    get sessions() {
      return live.size;
    },
    async listen(address) {
      const { host, port } = splitHostPort(address);
      server = createServer({ pauseOnConnect: false }, handle);
      server.maxConnections = config.limits.maxConnections + 64; // headroom for cancel requests and refusals
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(port, host, () => {
          server?.off('error', reject);
          resolve();
        });
      });
      const addr = server.address();
      return typeof addr === 'object' && addr !== null ? { host: addr.address, port: addr.port } : { host, port };
    },
    async close(graceMs = 2000) {
      // Stop accepting now; server.close() resolves only once every connection is gone.
      const closed = new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
      for (const s of live) s.terminate();
      const deadline = Date.now() + graceMs;
      while (live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of sockets) s.destroy();
      await closed;
      for (const c of metaClients.values()) void c.then((cl) => cl.end()).catch(() => undefined);
      metaClients.clear();
    },
  };
}

/** A side connection of the gateway's own (column names, EXPLAIN) with the connection's credential and TLS settings. */
function sideClientConfig(u: PostgresUpstream, applicationName: string): pg.ClientConfig {
  return {
    host: u.host,
    port: u.port,
    database: u.database,
    user: u.user,
    ...(u.password !== undefined ? { password: u.password.reveal() } : {}),
    ...(u.sslmode !== 'disable' ? { ssl: { rejectUnauthorized: u.sslmode === 'verify-ca' || u.sslmode === 'verify-full', ...(u.ca !== undefined ? { ca: readFileSync(u.ca) } : {}) } } : {}),
    application_name: applicationName,
  };
}

/** Write unless the peer already went away (its 'close' ends the attempt). */
function write(socket: Socket, bytes: Buffer): void {
  if (socket.writable) socket.write(bytes);
}

/** Read one startup packet, returning it and any bytes after it. */
function readStartup(socket: Socket, initial: Buffer): Promise<{ packet: NonNullable<ReturnType<typeof readStartupPacket>>['packet']; rest: Buffer }> {
  return readUntil(socket, initial, (buf) => {
    const got = readStartupPacket(buf);
    return got === null ? null : { value: got.packet, used: got.used };
  }).then(({ value, rest }) => ({ packet: value, rest }));
}

/** Read the PasswordMessage that carries the token. */
function readPassword(socket: Socket, initial: Buffer): Promise<{ token: string; rest: Buffer }> {
  const reader = new FrameReader(MAX_PASSWORD_MESSAGE, 'client');
  return readUntil(socket, initial, (buf) => {
    reader.feed(buf);
    if (!reader.next()) return null;
    if (reader.type !== Frontend.Password) {
      throw new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'expected a password message carrying the token');
    }
    const token = new BodyReader(reader.body()).cstring();
    return { value: token.trim(), used: reader.end };
  }).then(({ value, rest }) => ({ token: value, rest }));
}

function readUntil<T>(socket: Socket, initial: Buffer, parse: (buf: Buffer) => { value: T; used: number } | null): Promise<{ value: T; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let acc = initial;
    const tryParse = (): boolean => {
      try {
        const got = parse(acc);
        if (got === null) return false;
        cleanup();
        socket.pause();
        resolve({ value: got.value, rest: Buffer.from(acc.subarray(got.used)) });
        return true;
      } catch (err) {
        cleanup();
        reject(err);
        return true;
      }
    };
    const onData = (d: Buffer): void => {
      acc = acc.length === 0 ? d : Buffer.concat([acc, d]);
      tryParse();
    };
    const onEnd = (): void => {
      cleanup();
      reject(new SluiceError('SLUICE_PROTOCOL_VIOLATION', 'client closed the connection during startup'));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.off('close', onEnd);
    };
    if (acc.length > 0 && tryParse()) return;
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}

function upgradeTls(socket: Socket, context: SecureContext): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.pause();
    const tls = new TLSSocket(socket, { isServer: true, secureContext: context });
    tls.once('secure', () => {
      tls.off('error', onError);
      tls.pause();
      resolve(tls);
    });
    const onError = (err: Error): void => reject(new SluiceError('SLUICE_PROTOCOL_VIOLATION', `TLS handshake failed: ${err.message}`));
    tls.once('error', onError);
    tls.resume();
  });
}

/** Forward a client's cancel to the upstream with the real key (PostgreSQL answers nothing). */
function sendCancel(target: CancelTarget): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect({ host: target.upstream.host, port: target.upstream.port }, () => {
      s.end(cancelRequest(target.pid, target.secret));
    });
    s.setTimeout(5000, () => s.destroy());
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}
