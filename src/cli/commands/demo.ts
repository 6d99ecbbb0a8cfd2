/**
 * `sluice demo`: an embedded PostgreSQL (PGlite, served over its socket package) seeded with fake
 * customer data, the gateway in front of it with an example policy and masking, and a minted token.
 * Nothing but Node is needed. `--self-test` runs the printed examples and exits (used by the tests).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { loadConfigFile } from '../../config/index.js';
import { mintLocalToken } from '../../identity/index.js';
import { startGateway } from '../../server/gateway.js';
import { parseFlags, type CliIo } from '../io.js';

const HELP = `Usage: sluice demo [--dir D] [--port P] [--self-test]

Starts an embedded PostgreSQL with fake customer data, the Sluice gateway in front of it
(listening on 127.0.0.1:P, default 6432) and prints a token plus commands to try.
  --dir D        where the demo keeps its config, keys and audit log (default ./.sluice-demo)
  --port P       gateway port (default 6432; 0 picks a free one)
  --self-test    run the example queries through the gateway, print the results and exit
`;

const SEED = `
CREATE TABLE customers (
  id serial PRIMARY KEY, name text NOT NULL, email text, card_number text, ssn text, notes text, password_hash text
);
INSERT INTO customers (name, email, card_number, ssn, notes, password_hash) VALUES
 ('Ada Lovelace',  'ada@example.com',   '4111 1111 1111 1111', '123-45-6789', 'prefers email; api key ghp_R2d2C3poR2d2C3poR2d2C3poR2d2C3po1234', '$2b$12$abcdefghijklmnopqrstuv'),
 ('Alan Turing',   'alan@example.org',  '5500-0000-0000-0004', '078-05-1120', 'call +1 415 555 0132 after 5pm',                          '$2b$12$bcdefghijklmnopqrstuvw'),
 ('Grace Hopper',  'grace@example.net', '3400 000000 00009',   '219-09-9999', 'VIP; invoice INV-2024-000123',                            '$2b$12$cdefghijklmnopqrstuvwx');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(10,2), created_at timestamptz DEFAULT now());
INSERT INTO orders (customer_id, total, created_at) SELECT 1 + (g % 3), (g * 7.5)::numeric(10,2), now() - g * interval '1 day' FROM generate_series(1, 30) g;
`;

function demoConfig(dir: string, pgPort: number, port: number, httpPort: number): string {
  return `# Written by 'sluice demo'. A day-one config: one read-mostly agent role in front of one
# database, and a human reviewer who approves the agent's deletes and updates and reads the
# audit log (in the web console at /console/, or with the CLI).
listen:
  postgres: 127.0.0.1:${port}
  http: 127.0.0.1:${httpPort}
dataDir: ${dir}/data
store: { sqlite: ${dir}/data/sluice.db }
identity:
  issuers:
    - local: true
  roles:
    - name: agent
    - name: reviewer
      approver: true
      auditor: true
connections:
  - name: demo
    type: postgres
    upstream: { host: 127.0.0.1, port: ${pgPort}, database: postgres, user: postgres }
    mask:
      columns: { "*.password*": redact }
      detectors: [default]
policies:
  - role: agent
    connection: demo
    rules:
      - allow: [select, explain]
      - review: [insert, update, delete]
        name: agent-writes-need-review
        approval: { approvers: [reviewer], timeout: 10m }
      - deny: '*'
        name: agent-no-ddl
`;
}

export async function run(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { dir: { type: 'string' }, port: { type: 'string' }, 'self-test': { type: 'boolean' }, help: { type: 'boolean' } });
  if (values.help === true) {
    io.stdout.write(HELP);
    return 0;
  }
  const dir = resolve(values.dir ?? '.sluice-demo');
  const port = Number(values.port ?? '6432');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.stderr.write(`sluice demo: --port must be a port number\n`);
    return 2;
  }
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  io.stdout.write('sluice demo: starting embedded PostgreSQL (PGlite)…\n');
  const db = await PGlite.create();
  await db.exec(SEED);
  const pgServer = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 100 });
  await pgServer.start();
  const pgPort = Number(pgServer.getServerConn().split(':').pop());
  const configPath = join(dir, 'sluice.yaml');
  writeFileSync(configPath, demoConfig(dir, pgPort, port, port === 0 ? 0 : port + 1));
  const config = loadConfigFile(configPath);
  let gw: Awaited<ReturnType<typeof startGateway>>;
  try {
    gw = await startGateway(config, { log: (line) => io.stderr.write(line + '\n') });
  } catch (err) {
    // Don't leave the embedded database running (it would keep the process alive).
    await pgServer.stop();
    await db.close();
    throw err;
  }
  const gwPort = gw.addresses.postgres?.port as number;
  const token = await mintLocalToken(config, { role: 'agent', subject: 'demo-agent', ttlMs: 3_600_000, model: 'demo-model' });
  const reviewerToken = await mintLocalToken(config, { role: 'reviewer', subject: 'demo-reviewer', ttlMs: 3_600_000 });
  const apiUrl = `http://127.0.0.1:${gw.addresses.http?.port as number}`;
  const stop = async (): Promise<void> => {
    await gw.close();
    await pgServer.stop();
    await db.close();
  };

  if (values['self-test'] === true) {
    try {
      return await selfTest(io, gwPort, token, apiUrl, reviewerToken);
    } finally {
      await stop();
    }
  }

  const conn = `host=127.0.0.1 port=${gwPort} user=agent dbname=demo sslmode=disable`;
  io.stdout.write(`
Sluice is listening on 127.0.0.1:${gwPort} in front of an embedded PostgreSQL.
Config: ${configPath}

A token for role "agent" (valid 1 hour), as an agent's CI job would get from its OIDC issuer:

  export PGPASSWORD='${token}'

Try it (psql, or any PostgreSQL client; the token is the password):

  # allowed, with masked cards, SSNs, secrets and password hashes
  psql "${conn}" -c "SELECT * FROM customers"

  # denied: the policy allows reads only; DDL is refused with the rule's name
  psql "${conn}" -c "DROP TABLE orders"

  # held for review: the session waits in place until a reviewer decides
  psql "${conn}" -c "DELETE FROM orders WHERE id = 1"

  # in another terminal, as the reviewer:
  export SLUICE_URL=${apiUrl} SLUICE_TOKEN='${reviewerToken}'
  npx sluice approvals list
  npx sluice approve <ID>        # or: npx sluice deny <ID> --reason "not today"

  # or in a browser: the web console, signed in with that reviewer token
  ${apiUrl}/console/

  # what happened, from the tamper-evident audit log
  npx sluice sessions list --config ${configPath}
  npx sluice replay <SESSION> --config ${configPath}
  npx sluice audit verify --config ${configPath}

Press Ctrl+C to stop.
`);
  await new Promise<void>((resolveStop) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveStop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await stop();
  return 0;
}

async function selfTest(io: CliIo, port: number, token: string, apiUrl: string, reviewerToken: string): Promise<number> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', database: 'demo', password: token });
  await c.connect();
  let failures = 0;
  try {
    const rows = await c.query('SELECT name, card_number, ssn, notes, password_hash FROM customers ORDER BY id');
    io.stdout.write(`allowed: SELECT returned ${rows.rowCount} rows\n`);
    for (const r of rows.rows) io.stdout.write(`  ${JSON.stringify(r)}\n`);
    try {
      await c.query('DROP TABLE orders');
      io.stdout.write('UNEXPECTED: DROP TABLE succeeded\n');
      failures += 1;
    } catch (err) {
      io.stdout.write(`denied: DROP TABLE orders → ${(err as Error).message}\n`);
      if (!(err as Error).message.includes('denied')) failures += 1;
    }
    // A delete is held until the reviewer approves it through the REST API.
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    const held = c.query('DELETE FROM orders WHERE id = 1');
    let id: string | undefined;
    for (let i = 0; i < 500 && id === undefined; i++) {
      id = notices.map((n) => /approval ([A-Za-z0-9_-]+)/.exec(n)?.[1]).find((x) => x !== undefined);
      if (id === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    if (id === undefined) throw new Error('the delete was not held for approval');
    io.stdout.write(`held: DELETE FROM orders WHERE id = 1 → ${notices[0] ?? ''}\n`);
    const res = await fetch(`${apiUrl}/api/v1/approvals/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reviewerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ comment: 'demo' }),
    });
    if (res.status !== 200) throw new Error(`approving failed: HTTP ${res.status} ${await res.text()}`);
    const done = await held;
    io.stdout.write(`approved: the held DELETE ran and removed ${done.rowCount} row\n`);
    if (done.rowCount !== 1) failures += 1;
    // The web console is served, and takes the reviewer token as a reviewer and an auditor.
    const page = await fetch(`${apiUrl}/console/`);
    const me = (await (await fetch(`${apiUrl}/api/v1/me`, { headers: { authorization: `Bearer ${reviewerToken}` } })).json()) as { approvals?: string; audit?: string };
    io.stdout.write(`console: ${apiUrl}/console/ → HTTP ${page.status}; the reviewer token signs in as ${me.approvals ?? '?'} and ${me.audit ?? '?'}\n`);
    if (page.status !== 200 || me.approvals !== 'reviewer' || me.audit !== 'auditor') failures += 1;
  } finally {
    await c.end();
  }
  return failures === 0 ? 0 : 1;
}
