/**
 * Test fixture: a real PostgreSQL with an `app` database, least-privilege upstream accounts and fake
 * customer data, plus a Sluice config written to a temp dir. The test starts the gateway itself,
 * or takes one on the standard config from `startStandardGateway`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getSessionTimeline, listSessions, type AuditRecord, type AuditStore } from '../../src/audit/index.js';
import { loadConfigFile, type SluiceConfig } from '../../src/config/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { startPostgres, type TestPostgres } from './postgres.js';

export interface Fixture {
  readonly pg: TestPostgres;
  readonly dir: string;
  readonly upstreamPassword: string;
  readonly configPath: string;
  writeConfig(yaml: string): string;
  cleanup(): Promise<void>;
}

export const SEED_SQL = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, card text, ssn text, api_key text, password text);
INSERT INTO customers (name, email, card, ssn, api_key, password) VALUES
  ('Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111', '123-45-6789', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'hunter2'),
  ('Alan Turing', 'alan@example.org', '5500-0000-0000-0004', '078-05-1120', 'AKIAIOSFODNN7EXAMPLE', 'correct horse');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric, created_at timestamptz DEFAULT now());
INSERT INTO orders (customer_id, total) SELECT 1 + (g % 2), g FROM generate_series(1, 50) g;
`;

export async function createFixture(): Promise<Fixture> {
  const pg = await startPostgres();
  const upstreamPassword = 'Upstr3am-' + Math.random().toString(36).slice(2) + '-secret';
  await pg.query(`CREATE ROLE app_ro LOGIN PASSWORD '${upstreamPassword}'`);
  await pg.query(`CREATE ROLE app_rw LOGIN PASSWORD '${upstreamPassword}'`);
  await pg.query(`CREATE DATABASE app OWNER app_rw`);
  await pg.query(`SET ROLE app_rw; ${SEED_SQL}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_ro;`, 'app');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-'));
  const configPath = join(dir, 'sluice.yaml');
  return {
    pg,
    dir,
    upstreamPassword,
    configPath,
    writeConfig(yaml: string) {
      writeFileSync(configPath, yaml);
      writeFileSync(join(dir, 'upstream-password'), upstreamPassword + '\n', { mode: 0o600 });
      return configPath;
    },
    async cleanup() {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What an e2e config declares beyond the parts every one of them shares (see fixtureConfig). */
export interface FixtureConfigParts {
  /** Roles to declare, by name; `approver` marks reviewers, `auditor` readers of the audit log. */
  readonly roles: readonly (string | { readonly name: string; readonly approver?: true; readonly auditor?: true })[];
  /**
   * Connections to the fixture's `app` database, by name: the upstream account (`app_ro` reads,
   * `app_rw` owns the tables) and any YAML to add under the connection, indented by four spaces
   * (a `mask:` block).
   */
  readonly connections: Readonly<Record<string, { readonly user: 'app_ro' | 'app_rw'; readonly extra?: string }>>;
  /** The `policies:` list items, indented by two spaces. */
  readonly policies: string;
  /** Also listen for HTTP (the approvals API). */
  readonly http?: boolean;
}

/**
 * A gateway config on a fixture: PostgreSQL (and HTTP) listeners on free loopback ports, the
 * fixture's data dir and SQLite store, the local issuer, and connections that use the upstream
 * password the fixture writes.
 */
export function fixtureConfig(f: Fixture, o: FixtureConfigParts): string {
  const roles = o.roles
    .map((r) => (typeof r === 'string' ? `    - name: ${r}\n` : `    - name: ${r.name}\n${r.approver === true ? '      approver: true\n' : ''}${r.auditor === true ? '      auditor: true\n' : ''}`))
    .join('');
  const connections = Object.entries(o.connections)
    .map(([name, c]) => `  - name: ${name}\n    type: postgres\n    upstream: { host: 127.0.0.1, port: ${f.pg.port}, database: app, user: ${c.user}, password: file:${f.dir}/upstream-password }\n${c.extra ?? ''}`)
    .join('');
  return `
listen:
  postgres: 127.0.0.1:0
${o.http === true ? '  http: 127.0.0.1:0\n' : ''}dataDir: ${f.dir}/data
store: { sqlite: ${f.dir}/data/sluice.db }
identity:
  issuers:
    - local: true
  roles:
${roles}connections:
${connections}policies:
${o.policies}`;
}

/**
 * A config with a read-only role, a writer role and a reviewer-gated delete; `extra` appends to
 * the policies, `roles` declares the roles it names.
 */
export function standardConfig(f: Fixture, extra = '', roles: readonly string[] = []): string {
  return fixtureConfig(f, {
    roles: ['reader', 'writer', ...roles],
    connections: { appdb: { user: 'app_ro' }, 'appdb-rw': { user: 'app_rw' } },
    policies: `  - role: reader
    connection: appdb
    rules:
      - allow: [select, explain, show, set, transaction]
      - deny: '*'
        name: reader-no-writes
  - role: writer
    connection: appdb-rw
    rules:
      - allow: [select, show, insert, update, transaction, copy]
      - allow: [select, side-effect]
        name: writer-may-sleep
        when: 'sql.functions.all(f, f == "pg_sleep")'
      - review: [delete]
      - deny: [ddl, dcl]
${extra}`,
  });
}

export interface StandardGateway {
  readonly f: Fixture;
  readonly config: SluiceConfig;
  readonly gw: Gateway;
  /** The PostgreSQL listener's port. */
  readonly port: number;
  /** Stop the gateway, then the fixture. */
  close(): Promise<void>;
}

/** A fresh fixture and a gateway on `standardConfig` (silent log), with extra policies and their roles. */
export async function startStandardGateway(extra?: { readonly policies: string; readonly roles: readonly string[] }): Promise<StandardGateway> {
  const f = await createFixture();
  try {
    const config = loadConfigFile(f.writeConfig(standardConfig(f, extra?.policies, extra?.roles)));
    const gw = await startGateway(config, { log: () => undefined });
    return {
      f,
      config,
      gw,
      port: gw.addresses.postgres?.port as number,
      async close() {
        await gw.close();
        await f.cleanup();
      },
    };
  } catch (err) {
    await f.cleanup();
    throw err;
  }
}

/** The records of the latest session `subject` opened, once it has ended (its end is recorded after the client leaves). */
export async function endedSessionRecords(store: AuditStore, subject: string): Promise<AuditRecord[]> {
  for (let i = 0; i < 100; i++) {
    const [s] = await listSessions(store, { subject });
    if (s?.endedAt !== undefined) return ((await getSessionTimeline(store, s.id))?.events ?? []) as AuditRecord[];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ended session for ${subject}`);
}
