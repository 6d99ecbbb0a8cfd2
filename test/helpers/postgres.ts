/**
 * Starts a real PostgreSQL (Debian's `postgresql` package) in a temp dir on a free loopback port,
 * with SCRAM-SHA-256 password auth. Tests call `stop()` when done.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  readonly superuser: string;
  readonly password: string;
  readonly dir: string;
  /** Run SQL as the superuser against `database` (default `postgres`). */
  query(sql: string, database?: string): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

export function findPgBin(): string {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(base, v, 'bin', 'postgres'))) return join(base, v, 'bin');
  }
  throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * PostgreSQL refuses to run as root; then run its binaries as the `postgres` system user, spawned
 * with that uid directly (not through runuser, which would not pass our SIGINT on to the server).
 */
function pgUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
}

export async function startPostgres(options: { password?: string; extraConf?: string; tls?: { cert: string; key: string }; hbaPrepend?: string } = {}): Promise<TestPostgres> {
  const bin = findPgBin();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  const dataDir = join(dir, 'data');
  const password = options.password ?? 'upstream-' + Math.random().toString(36).slice(2);
  const superuser = 'sluice_admin';
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, password + '\n');
  const user = pgUser();
  if (user !== undefined) {
    chownSync(dir, user.uid, user.gid);
    chownSync(pwFile, user.uid, user.gid);
  }
  chmodSync(dir, 0o700);
  execFileSync(join(bin, 'initdb'), ['-D', dataDir, '-U', superuser, '--pwfile', pwFile, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], {
    stdio: 'pipe',
    ...(user ?? {}),
    env: { ...process.env, HOME: dir },
  });
  const port = await freePort();
  const conf = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${port}`,
    `unix_socket_directories = '${dir}'`,
    `fsync = off`,
    `synchronous_commit = off`,
    `full_page_writes = off`,
    `max_connections = 300`,
    `shared_buffers = 64MB`,
    `password_encryption = 'scram-sha-256'`,
    options.extraConf ?? '',
    ...(options.tls !== undefined ? [`ssl = on`, `ssl_cert_file = 'server.crt'`, `ssl_key_file = 'server.key'`] : []),
  ].join('\n');
  if (options.hbaPrepend !== undefined) {
    const hba = join(dataDir, 'pg_hba.conf');
    writeFileSync(hba, options.hbaPrepend + '\n' + readFileSync(hba, 'utf8'));
  }
  if (options.tls !== undefined) {
    copyFileSync(options.tls.cert, join(dataDir, 'server.crt'));
    copyFileSync(options.tls.key, join(dataDir, 'server.key'));
    chmodSync(join(dataDir, 'server.key'), 0o600);
  }
  writeFileSync(join(dataDir, 'postgresql.auto.conf'), conf + '\n');
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const child: ChildProcess = spawn(join(bin, 'postgres'), ['-D', dataDir], { stdio: ['ignore', 'ignore', 'pipe'], detached: false, ...(user ?? {}) });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20000) stderr = stderr.slice(-10000);
  });
  const connect = (database = 'postgres') =>
    new pg.Client({ host: '127.0.0.1', port, user: superuser, password, database });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = connect();
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`PostgreSQL did not start: ${String(err)}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    superuser,
    password,
    dir,
    async query(sql, database) {
      const c = connect(database);
      await c.connect();
      try {
        return await c.query(sql);
      } finally {
        await c.end();
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT'); // fast shutdown
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
