/**
 * Inline masking through the gateway with a real PostgreSQL, `pg` and `psql`: column rules by
 * schema.table.column, detectors on every other text value, NULLs kept, binary results, COPY TO
 * STDOUT, error details, and the audit log holding only masked text.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { filesUnder } from '../helpers/files.js';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfigFile } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { createFixture, fixtureConfig, type Fixture } from '../helpers/gateway.js';

const run = promisify(execFile);

function maskingConfig(f: Fixture): string {
  return fixtureConfig(f, {
    roles: ['analyst'],
    connections: {
      appdb: {
        user: 'app_rw',
        extra: `    mask:
      columns:
        "*.password*": redact
        "public.customers.email": hash
        "*.ssn": partial
      hashKey: 0123456789abcdef0123456789abcdef
      detectors: [default]
`,
      },
    },
    policies: `  - role: analyst
    connection: appdb
    rules:
      - allow: [select, insert, update, copy, show, transaction, listen]
`,
  });
}

describe('inline masking through the PostgreSQL gateway', () => {
  let f: Fixture;
  let gw: Gateway;
  let port: number;
  let token: string;

  before(async () => {
    f = await createFixture();
    const config = loadConfigFile(f.writeConfig(maskingConfig(f)));
    gw = await startGateway(config, { log: () => undefined });
    port = gw.addresses.postgres?.port as number;
    token = await mintLocalToken(config, { role: 'analyst', subject: 'analyst-bot', ttlMs: 3_600_000 });
    await f.pg.query(`INSERT INTO customers (name, email, card, ssn, api_key, password) VALUES ('Nobody', NULL, NULL, NULL, NULL, NULL)`, 'app');
  });

  after(async () => {
    await gw?.close();
    await f?.cleanup();
  });

  const client = async (): Promise<pg.Client> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'analyst', database: 'appdb', password: token });
    await c.connect();
    return c;
  };

  it('masks by column rule and by detector, keeps NULLs, and hashes deterministically', async () => {
    const c = await client();
    try {
      const r = await c.query('SELECT id, name, email, card, ssn, api_key, password FROM customers ORDER BY id');
      const [ada, alan, nobody] = r.rows;
      assert.equal(ada.name, 'Ada Lovelace');
      assert.equal(ada.card, '4111 **** **** 1111');
      assert.equal(ada.ssn, '***-**-6789');
      assert.equal(ada.api_key, '[REDACTED:github_token]');
      assert.match(ada.password, /^\[REDACTED/);
      assert.notEqual(ada.email, 'ada@example.com');
      assert.match(alan.api_key, /REDACTED:aws_access_key/);
      assert.deepEqual([nobody.email, nobody.card, nobody.ssn, nobody.password], [null, null, null, null], 'NULL stays NULL');
      // Keyed hashing is deterministic, so joins on masked values still line up.
      const again = await c.query("SELECT email FROM customers WHERE name = 'Ada Lovelace'");
      assert.equal(again.rows[0].email, ada.email);
      // Extended protocol (pg uses it for parameterised queries) is masked too.
      const p = await c.query('SELECT card, ssn FROM customers WHERE id = $1', [1]);
      assert.deepEqual(p.rows[0], { card: '4111 **** **** 1111', ssn: '***-**-6789' });
      // Column rules need the table behind each column: they apply when Describe and Execute are pipelined.
      const rules = await c.query('SELECT password, email FROM customers WHERE id = $1', [1]);
      assert.match(rules.rows[0].password, /^\[REDACTED/);
      assert.equal(rules.rows[0].email, ada.email, 'same keyed hash as the simple protocol');
      // Values computed in the query carry no table: detectors still apply.
      const expr = await c.query("SELECT 'card ' || card AS note FROM customers WHERE id = 1");
      assert.equal(expr.rows[0].note, 'card 4111 **** **** 1111');
      // Digits the database wrote full-width are masked as their ASCII forms.
      const wide = await c.query("SELECT translate('card 4111 1111 1111 1111 / 078-05-1120', '0123456789-', '０１２３４５６７８９－') AS note");
      assert.equal(wide.rows[0].note, 'card 4111 **** **** 1111 / ***-**-1120');
      // So are values the agent asks the database to hide in other digits, invisible characters or hex.
      const hidden = await c.query(
        "SELECT translate('4111 1111 1111 1111', '0123456789', '٠١٢٣٤٥٦٧٨٩') AS arabic, regexp_replace('078-05-1120', '(.)', '\\1' || chr(8203), 'g') AS zwsp, replace('ada@example.com', '@', chr(173) || '@') AS shy, (SELECT string_agg(chr(917504 + ascii(ch)), '') FROM regexp_split_to_table('AKIAIOSFODNN7EXAMPLE', '') AS ch) AS tags, encode(convert_to('card 4111 1111 1111 1111', 'UTF8'), 'hex') AS hexed, regexp_replace('4111111111111111', '(.)', '\\1 ', 'g') AS spaced",
      );
      assert.deepEqual(hidden.rows[0], { arabic: '4111 **** **** 1111', zwsp: '***-**-1120', shy: 'a***@example.com', tags: '[REDACTED:aws_access_key]', hexed: Buffer.from('card 4111 **** **** 1111').toString('hex'), spaced: '4 1 1 1 * * * * * * * * 1 1 1 1 ' });
    } finally {
      await c.end();
    }
  });

  it('masks binary-format text results', async () => {
    const c = await client();
    try {
      // Ask for binary results through the extended protocol.
      const r = await c.query({ text: 'SELECT card FROM customers WHERE id = $1', values: [1], binary: true } as pg.QueryConfig);
      const value = r.rows[0].card;
      const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
      assert.equal(text, '4111 **** **** 1111');
    } finally {
      await c.end();
    }
  });

  it('masks text stored as bytea, in hex text form and in binary form; other bytes pass as they are', async () => {
    await f.pg.query(
      `CREATE TABLE IF NOT EXISTS blobs (id int PRIMARY KEY, body bytea);
       INSERT INTO blobs VALUES (1, convert_to(E'KEY=AKIAIOSFODNN7EXAMPLE\\nowner ada@example.com', 'UTF8')), (2, '\\x89504e470d0a1a0a0000000d'), (3, NULL)
       ON CONFLICT DO NOTHING;
       GRANT SELECT ON blobs TO app_rw;`,
      'app',
    );
    const c = await client();
    try {
      const r = await c.query('SELECT id, body FROM blobs ORDER BY id');
      const text = (r.rows[0].body as Buffer).toString('utf8');
      assert.ok(text.startsWith('KEY=[REDACTED:aws_access_key]\nowner ') && !text.includes('ada@example.com'), text);
      assert.deepEqual(r.rows[1].body, Buffer.from('89504e470d0a1a0a0000000d', 'hex'), 'binary content is untouched');
      assert.equal(r.rows[2].body, null);
      const bin = await c.query({ text: 'SELECT body FROM blobs WHERE id = $1', values: [1], binary: true } as pg.QueryConfig);
      const raw = bin.rows[0].body as Buffer | string;
      assert.ok((Buffer.isBuffer(raw) ? raw.toString('utf8') : raw).startsWith('KEY=[REDACTED:aws_access_key]\nowner '), String(raw));
    } finally {
      await c.end();
    }
    // COPY TO STDOUT in text, csv and binary format: the same text inside the bytea is masked.
    const env = { ...process.env, PGPASSWORD: token };
    const copy = async (format: string): Promise<Buffer> =>
      (await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', `COPY (SELECT body FROM blobs WHERE id = 1) TO STDOUT WITH (FORMAT ${format})`], { env, encoding: 'buffer' })).stdout as unknown as Buffer;
    for (const format of ['text', 'csv']) {
      const line = (await copy(format)).toString('utf8').trim();
      const hex = line.replace(/^"|"$/g, '').replace(/^\\\\?x/, '');
      const inside = Buffer.from(hex, 'hex').toString('utf8');
      assert.ok(inside.startsWith('KEY=[REDACTED:aws_access_key]\nowner ') && !inside.includes('ada@example.com'), `${format}: ${line} → ${inside}`);
    }
    const binary = await copy('binary');
    assert.ok(binary.includes(Buffer.from('KEY=[REDACTED:aws_access_key]')) && !binary.includes(Buffer.from('AKIAIOSFODNN7EXAMPLE')), binary.toString('latin1'));
  });

  it('masks text stored as base64 in a text column inside its encoding (wrapped as encode() wraps it)', async () => {
    await f.pg.query(
      `CREATE TABLE IF NOT EXISTS encoded (id int PRIMARY KEY, body text);
       INSERT INTO encoded VALUES
         (1, encode(convert_to(E'DB_HOST=db.internal\\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\\nDEPLOY_OWNER=ada@example.com\\nREGION=eu-west-1\\nFEATURE_FLAGS=alpha,beta,gamma', 'UTF8'), 'base64')),
         (2, encode(convert_to('nothing to see in this sentence', 'UTF8'), 'base64'))
       ON CONFLICT DO NOTHING;
       GRANT SELECT ON encoded TO app_rw;`,
      'app',
    );
    const c = await client();
    try {
      const r = await c.query('SELECT id, body FROM encoded ORDER BY id');
      const stored = (await f.pg.query('SELECT body FROM encoded ORDER BY id', 'app')).rows.map((x) => x.body as string);
      assert.ok(stored[0]!.includes('\n'), 'encode() wraps at 76 characters');
      assert.notEqual(r.rows[0].body, stored[0]);
      const inside = Buffer.from(r.rows[0].body as string, 'base64').toString('utf8');
      assert.ok(inside.includes('AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]') && !inside.includes('ada@example.com') && inside.includes('REGION=eu-west-1'), inside);
      assert.equal(r.rows[1].body, stored[1], 'base64 of text with nothing to mask is sent as stored');
    } finally {
      await c.end();
    }
  });

  it('masks a stored JSON value by its keys, and refuses extracting a field masked by its name from it', async () => {
    await f.pg.query(
      `CREATE TABLE IF NOT EXISTS integrations (id int PRIMARY KEY, cfg jsonb);
       INSERT INTO integrations VALUES (1, '{"db": {"user": "svc", "password": "hunter2"}, "api_key": "k-7f3a9c2e1b", "region": "eu"}') ON CONFLICT DO NOTHING;
       GRANT SELECT ON integrations TO app_rw;`,
      'app',
    );
    const c = await client();
    try {
      const whole = await c.query('SELECT cfg FROM integrations');
      assert.equal(whole.rows[0].cfg.db.user, 'svc');
      assert.ok(!JSON.stringify(whole.rows[0].cfg).includes('hunter2') && !JSON.stringify(whole.rows[0].cfg).includes('k-7f3a9c2e1b'), JSON.stringify(whole.rows[0].cfg));
      const fine = await c.query("SELECT cfg->'db'->>'user' AS u, cfg->>'region' AS r FROM integrations");
      assert.deepEqual(fine.rows, [{ u: 'svc', r: 'eu' }]);
      for (const sql of ["SELECT cfg->'db'->>'password' FROM integrations", "SELECT cfg #>> '{api_key}' FROM integrations", "SELECT jsonb_path_query_first(cfg, '$.db.password') FROM integrations", "SELECT key, value FROM integrations, jsonb_each_text(cfg->'db')"]) {
        await assert.rejects(c.query(sql), (err: Error & { detail?: string }) => /masked-column-use/.test(err.message) && /JSON/.test(err.detail ?? ''), sql);
      }
    } finally {
      await c.end();
    }
  });

  it('refuses an UPDATE that would store a value Sluice masked over the real one', async () => {
    const c = await client();
    try {
      const shown = (await c.query('SELECT email, ssn FROM customers WHERE id = 1')).rows[0] as { email: string; ssn: string };
      for (const sql of [`UPDATE customers SET email = '${shown.email}' WHERE id = 1`, `UPDATE customers SET ssn = '${shown.ssn}', name = 'Ada' WHERE id = 1`, "UPDATE customers SET password = '[REDACTED]' WHERE id = 1"]) {
        await assert.rejects(c.query(sql), (err: Error & { detail?: string }) => /masked-value-write/.test(err.message) && /a value Sluice masked/.test(err.detail ?? ''), sql);
      }
      // Drivers bind values as parameters of the extended protocol: each bound value is read too,
      // and the connection goes on after the refusal.
      for (const [sql, values] of [
        ['UPDATE customers SET email = $1 WHERE id = $2', [shown.email, 1]],
        ['UPDATE customers SET name = $2, ssn = $1 WHERE id = 1', [shown.ssn, 'Ada']],
        ['WITH u AS (UPDATE customers SET password = $1 WHERE id = 1 RETURNING id) SELECT count(*) FROM u', ['[REDACTED:password]']],
      ] as const) {
        await assert.rejects(c.query(sql, [...values]), (err: Error & { detail?: string }) => /masked-value-write/.test(err.message) && /a value Sluice masked/.test(err.detail ?? ''), sql);
      }
      // (Rows are left where they are: later tests read the table in its physical order.)
      assert.equal((await c.query('UPDATE customers SET name = $1 WHERE id = $2', ['Nobody', 0])).rowCount, 0);
      // A prepared UPDATE, bound again with a masked value, is refused at that Execute only.
      await c.query({ name: 'set-email', text: 'UPDATE customers SET email = $1 WHERE id = $2', values: ['nobody@example.com', 0] });
      await assert.rejects(c.query({ name: 'set-email', text: 'UPDATE customers SET email = $1 WHERE id = $2', values: [shown.email, 1] }), /masked-value-write/);
      await c.query({ name: 'set-email', text: 'UPDATE customers SET email = $1 WHERE id = $2', values: ['nobody@example.com', 0] });
      const stored = await f.pg.query('SELECT email, ssn, password FROM customers WHERE id = 1', 'app');
      assert.deepEqual(stored.rows[0], { email: 'ada@example.com', ssn: '123-45-6789', password: 'hunter2' });
      // A new row quoting masked text replaces nothing, bound or inline.
      await c.query('INSERT INTO customers (name, email) VALUES ($1, $2)', ['Bound', shown.email]);
      await c.query("INSERT INTO customers (name, email) VALUES ('Quoted', 'see [REDACTED:email] above')");
    } finally {
      await c.end();
    }
  });

  it('masks psql output and COPY TO STDOUT', async () => {
    const env = { ...process.env, PGPASSWORD: token };
    const out = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-At', '-c', 'SELECT card, ssn FROM customers WHERE id = 2'], { env });
    assert.equal(out.stdout.trim(), '5500-****-****-0004|***-**-1120');
    const copy = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', 'COPY (SELECT name, card, api_key FROM customers WHERE id <= 2 ORDER BY id) TO STDOUT WITH (FORMAT csv)'], { env });
    assert.ok(!copy.stdout.includes('4111 1111 1111 1111') && !copy.stdout.includes('ghp_'), copy.stdout);
    assert.match(copy.stdout, /4111 \*\*\*\* \*\*\*\* 1111/);
    // Column rules apply to COPY too (described upstream first); a source that cannot be described is refused.
    const byColumn = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', 'COPY customers (id, password, ssn) TO STDOUT'], { env });
    assert.equal(byColumn.stdout.split('\n')[0], '1\t[REDACTED]\t***-**-6789', byColumn.stdout);
    // Whole-row JSON in COPY output is masked by field name as in a result.
    const json = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', "COPY (SELECT row_to_json(x) FROM (SELECT 1 AS id, 'hunter2' AS password) x) TO STDOUT"], { env });
    assert.ok(!json.stdout.includes('hunter2'), json.stdout);
    assert.match(json.stdout, /"password":"\[REDACTED/);
    // A COPY whose query sorts by a position in * cannot be described as its rows: refused.
    await assert.rejects(run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', 'COPY (SELECT * FROM customers ORDER BY 7) TO STDOUT'], { env }), /masked-column-use/);
    await assert.rejects(run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'analyst', '-d', 'appdb', '-c', 'COPY (SELECT * FROM no_such_table) TO STDOUT'], { env }), (err: Error & { stderr?: string }) => {
      assert.match(err.stderr ?? '', /sql-copy-unmaskable/);
      assert.match(err.stderr ?? '', /no_such_table/);
      return true;
    });
  });

  it('masks values echoed in error details', async () => {
    await f.pg.query('CREATE UNIQUE INDEX IF NOT EXISTS customers_card ON customers (card)', 'app');
    const c = await client();
    try {
      await assert.rejects(c.query("INSERT INTO customers (name, card) VALUES ('Dup', '4111 1111 1111 1111')"), (err: Error & { detail?: string }) => {
        assert.ok(!(err.detail ?? '').includes('4111 1111 1111 1111'), `detail leaked: ${err.detail}`);
        assert.match(err.detail ?? '', /\*\*\*\*/);
        return true;
      });
    } finally {
      await c.end();
    }
  });

  it('withholds stored values that constraint errors echo: a failing row, a masked key', async () => {
    await f.pg.query('CREATE UNIQUE INDEX IF NOT EXISTS customers_password ON customers (password)', 'app');
    const c = await client();
    try {
      // NOT NULL violation: PostgreSQL lists the whole stored row, password included.
      await assert.rejects(c.query('UPDATE customers SET name = NULL WHERE id = 1'), (err: Error & { detail?: string; code?: string }) => {
        assert.equal(err.code, '23502');
        assert.equal(err.detail, 'Failing row contains (values withheld by Sluice: a row can hold masked columns).');
        return true;
      });
      await assert.rejects(c.query("INSERT INTO customers (name, password) VALUES ('Dup', 'hunter2')"), (err: Error & { detail?: string; code?: string }) => {
        assert.equal(err.code, '23505');
        assert.equal(err.detail, 'Key (password)=(values withheld by Sluice: masked column) already exists.');
        return true;
      });
    } finally {
      await c.end();
      await f.pg.query('DROP INDEX customers_password', 'app');
    }
  });

  it('records statements masked and counts maskings without values', async () => {
    const c = await client();
    try {
      await c.query("INSERT INTO orders (customer_id, total) SELECT id, 1 FROM customers WHERE card = '5500-0000-0000-0004'");
      await c.query('SELECT card FROM customers');
    } finally {
      await c.end();
    }
    await gw.audit.checkpoint();
    for (const name of filesUnder(`${f.dir}/data`)) {
      const bytes = readFileSync(name);
      for (const secret of ['5500-0000-0000-0004', '4111 1111 1111 1111', '123-45-6789', 'ghp_abcdefghijklmnop']) {
        assert.ok(!bytes.includes(Buffer.from(secret)), `${secret} found in ${name}`);
      }
    }
  });

  it('keeps masked result previews for replay, capped per statement', async () => {
    const c = await client();
    let sessionPid: string | undefined;
    try {
      await c.query("SELECT name, card FROM customers WHERE card IS NOT NULL ORDER BY id");
      await c.query('SELECT g FROM generate_series(1, 50) g');
      await assert.rejects(c.query('SELECT 1/0 AS boom'), /division by zero/);
      sessionPid = 'done';
    } finally {
      await c.end();
    }
    assert.ok(sessionPid);
    const { listSessions, getSessionTimeline } = await import('../../src/audit/index.js');
    await new Promise((r) => setTimeout(r, 100));
    const sessions = await listSessions(gw.audit.store, { subject: 'analyst-bot' });
    const latest = sessions[0];
    assert.ok(latest !== undefined);
    const timeline = await getSessionTimeline(gw.audit.store, latest.id);
    // A pure read is one `command` record carrying its decision and its result.
    const events = timeline?.events ?? [];
    assert.equal(events.filter((e) => e.type === 'command.result').length, 0, 'no separate result records for pure reads');
    const previews = events.filter((e) => e.type === 'command' && e.preview !== undefined).map((e) => e.preview);
    assert.equal(previews.length, 2, JSON.stringify((timeline?.events ?? []).map((e) => e.type)));
    assert.deepEqual(previews[0]?.columns, ['name', 'card']);
    assert.deepEqual(previews[0]?.rows[0], ['Ada Lovelace', '4111 **** **** 1111'], 'the preview holds what the client saw');
    assert.equal(previews[1]?.rows.length, 20, 'capped at audit.previewRows');
    assert.equal(previews[1]?.truncated, true);
    // A result names its statement's kind, so its OCSF event is a Query like its decision's.
    const { toOcsf } = await import('../../src/audit/index.js');
    const results = events.filter((e) => e.type === 'command');
    assert.deepEqual(results.map((e) => [e.command?.kind, e.outcome, e.rows]), [['select', 'success', 2], ['select', 'success', 50], ['select', 'failure', 0]]);
    assert.deepEqual(results.map((e) => [toOcsf(e).class_uid, toOcsf(e).activity_id, toOcsf(e).status_id]), [[6005, 4, 1], [6005, 4, 1], [6005, 4, 2]]);

    // `sluice replay` shows each statement's decision and then its result, as the gateway records them.
    const { run: replayRun } = await import('../../src/cli/commands/replay.js');
    const { captureIo } = await import('../audit/helpers.js');
    const io = captureIo();
    assert.equal(await replayRun([latest.id, '--config', f.configPath, '--speed', '0'], io), 0, io.err());
    const out = io.out();
    for (const want of [
      /\+\d+\.\d{3}s\s+COMMAND\s+ALLOW by analyst\/appdb#0/,
      /> SELECT name, card FROM customers WHERE card IS NOT NULL ORDER BY id/,
      /\+\d+\.\d{3}s\s+RESULT\s+success\s+2 rows, \d+ bytes, \d+ ms, SELECT 2/,
      /name \| card\n\s+Ada Lovelace \| 4111 \*\*\*\* \*\*\*\* 1111/,
      /RESULT\s+success\s+50 rows, \d+ bytes, \d+ ms, SELECT 50/,
      /… \(preview truncated\)/,
      /masked: credit_card@public\.customers\.card×2/,
      /RESULT\s+failure\s+0 rows, \d+ bytes, \d+ ms\n\s+error 22012 division by zero/,
      /summary\s+3 commands, 0 denied, 1 errors, 0 approvals/,
    ]) assert.match(out, want, out);
    assert.ok(!out.includes('4111 1111 1111 1111'), 'replay shows only masked text');
  });

  it('refuses computing on a masked column, a whole row as a value and renamed columns computed on: masking could not follow them', async () => {
    const c = await client();
    const EVASIONS = [
      'SELECT upper(password) FROM customers',
      "SELECT password || '' AS p FROM customers",
      "SELECT encode(password::bytea, 'hex') FROM customers",
      'SELECT reverse(ssn) FROM customers',
      'SELECT string_agg(password, \',\') FROM customers',
      "SELECT json_build_object('k', password)::text FROM customers",
      'SELECT (SELECT password FROM customers LIMIT 1) AS x',
      'SELECT name FROM customers UNION ALL SELECT password FROM customers',
      'WITH x AS (SELECT password AS p FROM customers) SELECT upper(p) FROM x',
      'SELECT * FROM (SELECT password AS p FROM customers) s',
      'SELECT * FROM customers WHERE id = 1 UNION SELECT * FROM customers',
      "SELECT id FROM customers WHERE password LIKE 'h%'",
      'SELECT id FROM customers ORDER BY ssn',
      // …also by position or by output name
      'SELECT id, password FROM customers ORDER BY 2',
      'SELECT password AS p, count(*) FROM customers GROUP BY p',
      // …by a position that falls in * (the upstream describes the result first), or DISTINCT over it
      'SELECT * FROM customers ORDER BY 7',
      'TABLE customers ORDER BY 5 DESC',
      'SELECT c.* FROM customers c GROUP BY 1, 2, 3, 4, 5, 6, 7',
      'SELECT DISTINCT * FROM customers',
      'SELECT DISTINCT password FROM customers',
      'SELECT count(*) FROM (SELECT * FROM customers ORDER BY 7 LIMIT 1) s',
      // …or by joining on it: USING and NATURAL JOIN compare columns too
      "SELECT id FROM customers JOIN (VALUES ('hunter2')) v(password) USING (password)",
      "SELECT * FROM customers NATURAL JOIN (SELECT 'hunter2' AS password) g",
      'SELECT * FROM customers NATURAL JOIN customers',
      // …or by computing on a whole row's JSON, whose field-name masking only its output gets
      "SELECT to_jsonb(c)->>'password' FROM customers c",
      "SELECT j.value FROM customers c, json_each_text(row_to_json(c)) j WHERE j.key = 'password'",
      "SELECT id FROM customers c WHERE row_to_json(c)->>'password' = 'hunter2'",
      "SELECT x.j->>'password' FROM (SELECT row_to_json(c) AS j FROM customers c) x",
      // …and a whole row as JSON where a column rule names the table (public.customers.email):
      // JSON fields carry no table, so that rule could not apply
      'SELECT row_to_json(c) FROM customers c',
      'SELECT c::text FROM customers c',
      'SELECT c FROM customers c',
      'SELECT array_agg(c.*)::text FROM customers c',
      'SELECT upper(p) FROM customers AS c(i, n, e, ca, s, a, p)',
      'SELECT upper(email) FROM public.customers',
      'COPY (SELECT upper(password) FROM customers) TO STDOUT',
      // Column statistics hold a masked column's most common values under the view's own names.
      "SELECT most_common_vals AS v FROM pg_stats WHERE tablename = 'customers' AND attname = 'password'",
      'SELECT * FROM pg_catalog.pg_stats_ext',
    ];
    // Enough duplicates that ANALYZE keeps a most-common value: before, pg_stats sent {hunter2}.
    await f.pg.query("INSERT INTO customers (name, password) SELECT 'dup' || g, 'hunter2' FROM generate_series(1, 20) g; ANALYZE customers", 'app');
    try {
      for (const sql of EVASIONS) {
        await assert.rejects(c.query(sql), (err: Error & { code?: string }) => {
          assert.equal(err.code, '42501', sql);
          assert.match(err.message, /masked-column-use/, sql);
          return true;
        });
      }
      // The plain forms stay allowed and masked, by the column a value comes from, not its alias.
      const plain = await c.query('SELECT password AS x FROM customers c ORDER BY id LIMIT 1');
      assert.equal(plain.rows[0].x, '[REDACTED]');
      // A whole row as JSON, masked by field name, where no rule names a table read.
      const json = await c.query("SELECT row_to_json(x)::text AS j FROM (SELECT 1 AS id, 'hunter2' AS password, 'ada@example.com' AS contact) x");
      assert.ok(!String(json.rows[0].j).includes('hunter2'), json.rows[0].j);
      assert.ok(!String(json.rows[0].j).includes('ada@example.com'), json.rows[0].j);
      assert.match(String(json.rows[0].j), /"password":"\[REDACTED/);
      const renamed = await c.query('SELECT p FROM customers AS c(i, n, e, ca, s, a, p) LIMIT 1');
      assert.equal(renamed.rows[0].p, '[REDACTED]');
      const relayed = await c.query('WITH x AS (SELECT * FROM customers) SELECT s.password FROM (SELECT id, password FROM x) s ORDER BY s.id LIMIT 1');
      assert.equal(relayed.rows[0].password, '[REDACTED]', 'a subquery or CTE keeps the column it relays');
      const ok = await c.query('SELECT id, upper(name) AS n FROM customers WHERE id = 1 ORDER BY name');
      assert.equal(ok.rows[0].n, 'ADA LOVELACE', 'computing on unmasked columns is fine');
      // A position in * that is not a masked column, and DISTINCT * over a table without one, run.
      const byPosition = await c.query('SELECT * FROM customers ORDER BY 2, 1 LIMIT 1');
      assert.equal(byPosition.rows[0].name, 'Ada Lovelace');
      assert.equal(byPosition.rows[0].password, '[REDACTED]');
      const distinct = await c.query('SELECT DISTINCT * FROM orders ORDER BY 1 LIMIT 1');
      assert.ok(distinct.rowCount !== null && distinct.rowCount <= 1);
      const joined = await c.query('SELECT count(*)::int AS n FROM customers NATURAL JOIN (SELECT 1 AS id) one');
      assert.equal(joined.rows[0].n, 1);
      // RETURNING names its columns' table and column as a SELECT does: masked, not refused.
      const returned = await c.query("UPDATE customers SET name = name WHERE id = 1 RETURNING password, ssn, email");
      assert.deepEqual([returned.rows[0].password, returned.rows[0].ssn], ['[REDACTED]', '***-**-6789']);
      assert.match(returned.rows[0].email, /^hash:/);
      const inserted = await c.query("INSERT INTO customers (name, password) VALUES ('dup-ret', 'hunter2') RETURNING *");
      assert.equal(inserted.rows[0].password, '[REDACTED]');
      await assert.rejects(c.query('UPDATE customers SET name = name WHERE id = 1 RETURNING upper(password)'), /masked-column-use/);
      await assert.rejects(c.query('UPDATE customers SET name = name WHERE id = 1 RETURNING password AS p'), /masked-column-use/);
      // The extended protocol is described the same way.
      await assert.rejects(c.query('SELECT * FROM customers WHERE id > $1 ORDER BY 7', [0]), /masked-column-use/);
      const bound = await c.query('SELECT * FROM customers WHERE id = $1 ORDER BY 2', [1]);
      assert.equal(bound.rows[0].name, 'Ada Lovelace');
    } finally {
      await c.end();
      await f.pg.query("DELETE FROM customers WHERE name LIKE 'dup%'", 'app');
    }
  });

  it('masks the payloads LISTEN delivers from other sessions', async () => {
    const c = await client();
    try {
      const got = new Promise<pg.Notification>((resolve) => c.once('notification', resolve));
      await c.query('LISTEN billing');
      await f.pg.query("NOTIFY billing, 'charged 4111 1111 1111 1111 for ada@example.com'", 'app');
      const n = await got;
      assert.equal(n.channel, 'billing');
      assert.equal(n.payload, 'charged 4111 **** **** 1111 for a***@example.com');
    } finally {
      await c.end();
    }
  });
});
