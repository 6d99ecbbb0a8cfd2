/**
 * Clients built on libpq, each in its own language's usual driver, through the gateway against a
 * real PostgreSQL: Ruby's `pg` (including libpq's pipeline mode and binary results), Perl's
 * DBD::Pg (server-side prepares, then client-side ones) and PHP's pgsql extension and PDO (native
 * and emulated prepares). Each script prints JSON lines the test reads. Debian packages:
 * ruby-pg, libdbd-pg-perl, php-cli and php-pgsql (.ci/run installs them).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mintLocalToken } from '../../src/identity/index.js';
import { startStandardGateway, type StandardGateway } from '../helpers/gateway.js';

const run = promisify(execFile);

const RUBY = String.raw`
require 'pg'
require 'json'
out = ->(k, v) { puts JSON.generate([k, v]) }
c = PG.connect(host: '127.0.0.1', port: ENV['PORT'].to_i, user: 'reader', dbname: 'appdb', password: ENV['TOKEN'])
out.('simple', c.exec('SELECT name, email, card FROM customers WHERE id <= 2 ORDER BY id').to_a)
out.('params', c.exec_params('SELECT ssn FROM customers WHERE id = $1', [1]).to_a)
c.prepare('by_id', 'SELECT api_key FROM customers WHERE id = $1')
out.('prepared', [1, 2].map { |i| c.exec_prepared('by_id', [i]).getvalue(0, 0) })
out.('described', c.describe_prepared('by_id').fname(0))
out.('binary', c.exec_params('SELECT $1::int + 1 AS x', [41], 1).getvalue(0, 0).unpack1('N'))
begin
  c.exec('DELETE FROM customers')
  out.('denied', nil)
rescue PG::Error => e
  out.('denied', [e.result&.error_field(PG::PG_DIAG_SQLSTATE), e.message.lines.first.strip])
end
c.enter_pipeline_mode
c.send_query_params('SELECT $1::int AS a', [1])
c.send_query_params('SELECT email FROM customers WHERE id = $1', [2])
c.pipeline_sync
r1 = c.get_result.to_a; c.get_result
r2 = c.get_result.to_a; c.get_result
c.get_result
c.exit_pipeline_mode
out.('pipeline', [r1, r2])
c.close
`;

const PERL = String.raw`
use strict; use warnings; use DBI; use JSON::PP;
sub out { print encode_json([@_]), "\n" }
my $dbh = DBI->connect("dbi:Pg:host=127.0.0.1;port=$ENV{PORT};dbname=appdb-rw", 'writer', $ENV{WRITER}, {RaiseError => 1, PrintError => 0, AutoCommit => 1});
out('simple', $dbh->selectall_arrayref('SELECT name, email FROM customers ORDER BY id LIMIT 2'));
my $sth = $dbh->prepare('SELECT ssn FROM customers WHERE id = ?');
my @ssn;
for my $id (1, 2) { $sth->execute($id); push @ssn, $sth->fetchrow_arrayref->[0]; }
$sth->finish;
out('prepared', \@ssn);
$dbh->begin_work;
$dbh->do('INSERT INTO customers (name, email, card) VALUES (?, ?, ?)', undef, 'Grace Hopper', 'grace@example.net', '4012888888881881');
$dbh->commit;
$dbh->{pg_server_prepare} = 0;
my $row = $dbh->selectrow_arrayref('SELECT email, card FROM customers WHERE name = ?', undef, 'Grace Hopper');
out('written', $row);
my $ok = eval { $dbh->do('DROP TABLE customers'); 1 };
out('denied', $ok ? undef : [$dbh->state, (split /\n/, $@)[0]]);
$dbh->disconnect;
`;

const PHP = String.raw`<?php
function out($k, $v) { echo json_encode([$k, $v]), "\n"; }
$c = pg_connect("host=127.0.0.1 port=" . getenv('PORT') . " dbname=appdb user=reader password=" . getenv('TOKEN'));
out('simple', pg_fetch_all(pg_query($c, 'SELECT name, email FROM customers WHERE id <= 2 ORDER BY id')));
out('params', pg_fetch_all(pg_query_params($c, 'SELECT ssn FROM customers WHERE id = $1', [1])));
pg_prepare($c, 'q', 'SELECT card FROM customers WHERE id = $1');
out('prepared', [pg_fetch_result(pg_execute($c, 'q', [1]), 0, 0), pg_fetch_result(pg_execute($c, 'q', [2]), 0, 0)]);
$r = @pg_query($c, 'DELETE FROM customers');
out('denied', $r === false ? pg_last_error($c) : null);
$pdo = new PDO('pgsql:host=127.0.0.1;port=' . getenv('PORT') . ';dbname=appdb', 'reader', getenv('TOKEN'), [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$st = $pdo->prepare('SELECT email, api_key FROM customers WHERE id = :id');
$st->execute(['id' => 1]); $a = $st->fetch(PDO::FETCH_ASSOC);
$st->execute(['id' => 2]); $b = $st->fetch(PDO::FETCH_ASSOC);
out('pdo', [$a, $b]);
$pdo->setAttribute(PDO::ATTR_EMULATE_PREPARES, true);
$st = $pdo->prepare('SELECT card FROM customers WHERE id = ?'); $st->execute([1]);
out('emulated', $st->fetchColumn());
$pdo->beginTransaction(); $n = $pdo->query('SELECT count(*) FROM orders')->fetchColumn(); $pdo->commit();
out('transaction', (int) $n);
try { $pdo->exec('UPDATE customers SET name = name'); out('pdo-denied', null); } catch (PDOException $e) { out('pdo-denied', [$e->getCode(), $e->getMessage()]); }
`;

/** The script's output lines as a map from their first element to their second. */
function results(stdout: string): Map<string, unknown> {
  return new Map(
    stdout
      .split('\n')
      .filter((l) => l.startsWith('['))
      .map((l) => JSON.parse(l) as [string, unknown]),
  );
}

describe('libpq clients: Ruby pg, Perl DBD::Pg, PHP pgsql and PDO', () => {
  let s: StandardGateway;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    s = await startStandardGateway();
    env = {
      ...process.env,
      PORT: String(s.port),
      TOKEN: await mintLocalToken(s.config, { role: 'reader', subject: 'libpq@test' }),
      WRITER: await mintLocalToken(s.config, { role: 'writer', subject: 'libpq-writer@test' }),
    };
  });
  after(async () => {
    await s?.close();
  });

  const script = async (bin: string, name: string, text: string): Promise<Map<string, unknown>> => {
    const path = join(s.f.dir, name);
    writeFileSync(path, text);
    try {
      const { stdout } = await run(bin, [path], { env, timeout: 60_000 });
      return results(stdout);
    } catch (err) {
      const e = err as { code?: string | number; stderr?: string };
      if (e.code === 'ENOENT') assert.fail(`${bin} is required for this test (Debian: see .ci/run)`);
      throw new Error(`${bin} ${name} failed: ${e.stderr ?? String(err)}`);
    }
  };

  it('Ruby pg: results masked through simple, parameterised, prepared, binary and pipelined queries; a denied statement is an error', async () => {
    const r = await script('ruby', 'client.rb', RUBY);
    assert.deepEqual(r.get('simple'), [
      { name: 'Ada Lovelace', email: 'a***@example.com', card: '4111 **** **** 1111' },
      { name: 'Alan Turing', email: 'a***@example.org', card: '5500-****-****-0004' },
    ]);
    assert.deepEqual(r.get('params'), [{ ssn: '***-**-6789' }]);
    assert.deepEqual(r.get('prepared'), ['[REDACTED:github_token]', '[REDACTED:aws_access_key]']);
    assert.equal(r.get('described'), 'api_key');
    assert.equal(r.get('binary'), 42);
    const [sqlstate, message] = r.get('denied') as [string, string];
    assert.equal(sqlstate, '42501');
    assert.match(message, /denied by rule "reader-no-writes"/);
    assert.deepEqual(r.get('pipeline'), [[{ a: '1' }], [{ email: 'a***@example.org' }]]);
  });

  it('Perl DBD::Pg: server-side prepares reused, a parameterised INSERT in a transaction, client-side prepares; DDL denied', async () => {
    const r = await script('perl', 'client.pl', PERL);
    assert.deepEqual(r.get('simple'), [
      ['Ada Lovelace', 'a***@example.com'],
      ['Alan Turing', 'a***@example.org'],
    ]);
    assert.deepEqual(r.get('prepared'), ['***-**-6789', '***-**-1120']);
    assert.deepEqual(r.get('written'), ['g***@example.net', '4012********1881']);
    const [state, message] = r.get('denied') as [string, string];
    assert.equal(state, '42501');
    assert.match(message, /sluice: statement denied/);
    // The row really reached the upstream, unmasked.
    const stored = await s.f.pg.query(`SELECT email, card FROM customers WHERE name = 'Grace Hopper'`, 'app');
    assert.deepEqual(stored.rows, [{ email: 'grace@example.net', card: '4012888888881881' }]);
  });

  it('PHP pgsql and PDO: native and emulated prepares masked, a transaction, denied statements reported with SQLSTATE 42501', async () => {
    const r = await script('php', 'client.php', PHP);
    assert.deepEqual(r.get('simple'), [
      { name: 'Ada Lovelace', email: 'a***@example.com' },
      { name: 'Alan Turing', email: 'a***@example.org' },
    ]);
    assert.deepEqual(r.get('params'), [{ ssn: '***-**-6789' }]);
    assert.deepEqual(r.get('prepared'), ['4111 **** **** 1111', '5500-****-****-0004']);
    assert.match(String(r.get('denied')), /denied by rule "reader-no-writes"/);
    assert.deepEqual(r.get('pdo'), [
      { email: 'a***@example.com', api_key: '[REDACTED:github_token]' },
      { email: 'a***@example.org', api_key: '[REDACTED:aws_access_key]' },
    ]);
    assert.equal(r.get('emulated'), '4111 **** **** 1111');
    assert.equal(r.get('transaction'), 50);
    const [code, message] = r.get('pdo-denied') as [string, string];
    assert.equal(code, '42501');
    assert.match(message, /reader-no-writes/);
  });
});
