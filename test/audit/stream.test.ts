import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { backoffDelay, formatRecord, openAuditLog, parseRecord, startAuditStreams, toCef, toOcsf, type AuditLog, type StreamTuning } from '../../src/audit/index.js';
import type { StoredEvent } from '../../src/audit/index.js';
import { SluiceError } from '../../src/errors.js';
import { recordScenario, session, tempConfig, testMask } from './helpers.js';

/** Fast retries and a poll long enough that only the commit hook can explain prompt delivery. */
const FAST: Partial<StreamTuning> = { retryBaseMs: 20, retryMaxMs: 100, pollMs: 60_000, graceMs: 300, requestTimeoutMs: 2000 };

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  status: number;
}

interface Collector {
  readonly url: string;
  readonly requests: Received[];
  close(): Promise<void>;
}

/** An HTTP collector on 127.0.0.1. `answer` returns a status, or null to never answer. */
async function httpCollector(answer: (req: Received, n: number) => number | null = () => 200): Promise<Collector> {
  const requests: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: 0 };
      requests.push(r);
      const status = answer(r, requests.length);
      if (status === null) {
        hanging.push(res);
        return;
      }
      r.status = status;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Seqs of the JSON Lines bodies of 2xx-acknowledged requests, in arrival order. */
function ackedSeqs(requests: readonly Received[]): number[] {
  return requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.body.split('\n').filter((l) => l !== '').map((l) => parseRecord(l).seq));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function appendCommands(log: AuditLog, n: number, from = 0): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => log.append({ type: 'command', session: session(), command: { text: `SELECT ${from + i}`, verb: 'select' }, outcome: 'success' })));
}

async function allEvents(log: AuditLog): Promise<StoredEvent[]> {
  return log.store.readEvents(0, 10_000);
}

test('HTTP: every record arrives in order as application/x-ndjson, with configured secret headers', async () => {
  const c = await httpCollector();
  process.env.SLUICE_STREAM_TEST_TOKEN = 'Bearer s3cret';
  const t = tempConfig(`{ stream: [{ http: "${c.url}", headers: { Authorization: "env:SLUICE_STREAM_TEST_TOKEN", x-source: gw1 } }] }`);
  const lines: string[] = [];
  const log = await openAuditLog(t.config, { mask: testMask });
  const streams = startAuditStreams(t.config, log, { tuning: FAST, logLine: (l) => lines.push(l) });
  try {
    await appendCommands(log, 7);
    await appendCommands(log, 5, 7);
    await waitFor('12 records', () => ackedSeqs(c.requests).length >= 12);
    assert.deepEqual(ackedSeqs(c.requests), range(1, 12));
    const stored = await allEvents(log);
    const body = c.requests.map((r) => r.body).join('');
    assert.equal(body, stored.map((e) => `${e.body}\n`).join(''), 'the stored canonical bytes, one per line');
    for (const r of c.requests) {
      assert.equal(r.headers['content-type'], 'application/x-ndjson');
      assert.equal(r.headers.authorization, 'Bearer s3cret');
      assert.equal(r.headers['x-source'], 'gw1');
    }
    assert.ok(!lines.join('\n').includes('s3cret'), 'the secret never reaches a log line');
  } finally {
    await streams.close();
    await log.close();
    await c.close();
    delete process.env.SLUICE_STREAM_TEST_TOKEN;
    t.cleanup();
  }
});

test('a commit wakes the stream at once (the slow poll is only a fallback)', async () => {
  const c = await httpCollector();
  const t = tempConfig(`{ stream: [{ http: "${c.url}" }] }`);
  const log = await openAuditLog(t.config, { mask: testMask });
  const streams = startAuditStreams(t.config, log, { tuning: { ...FAST, pollMs: 60_000 } });
  try {
    // Let the streamer find the log empty and go idle on its 60 s poll.
    await new Promise((r) => setTimeout(r, 150));
    const started = Date.now();
    await appendCommands(log, 1);
    await waitFor('the record', () => ackedSeqs(c.requests).length === 1, 2000);
    assert.ok(Date.now() - started < 2000);
  } finally {
    await streams.close();
    await log.close();
    await c.close();
    t.cleanup();
  }
});

test('without a commit notification (another node wrote the records), the slow poll still delivers them', async () => {
  const c = await httpCollector();
  const t = tempConfig(`{ stream: [{ http: "${c.url}" }] }`);
  const log = await openAuditLog(t.config, { mask: testMask });
  // A log whose commit hook never fires: only the poll can find the records.
  const silent = { store: log.store, onCommit: () => () => undefined } as unknown as AuditLog;
  const streams = startAuditStreams(t.config, silent, { tuning: { ...FAST, pollMs: 100 } });
  try {
    await new Promise((r) => setTimeout(r, 50));
    await appendCommands(log, 3);
    await waitFor('the polled records', () => ackedSeqs(c.requests).length >= 3, 3000);
    assert.deepEqual(ackedSeqs(c.requests), range(1, 3));
  } finally {
    await streams.close();
    await log.close();
    await c.close();
    t.cleanup();
  }
});

test('the destination fails with 500 three times, then recovers: nothing lost, nothing acknowledged twice', async () => {
  const c = await httpCollector((_r, n) => (n <= 3 ? 500 : 200));
  const t = tempConfig(`{ stream: [{ http: "${c.url}" }] }`);
  const lines: string[] = [];
  const log = await openAuditLog(t.config, { mask: testMask });
  const streams = startAuditStreams(t.config, log, { tuning: { ...FAST, batchRecords: 5, logEveryMs: 1 }, logLine: (l) => lines.push(l) });
  try {
    await appendCommands(log, 8);
    await appendCommands(log, 9, 8);
    await appendCommands(log, 3, 17);
    await waitFor('20 acknowledged records', () => ackedSeqs(c.requests).length >= 20);
    assert.deepEqual(ackedSeqs(c.requests), range(1, 20), 'every seq acknowledged exactly once, in order');
    assert.equal(c.requests.filter((r) => r.status === 500).length, 3);
    // The refused batch was sent again (at least once): its first record appears twice in all.
    const failedFirst = parseRecord(c.requests[0]!.body.split('\n')[0]!).seq;
    assert.equal(failedFirst, 1);
    assert.match(lines.join('\n'), /delivery failed: HTTP 500/);
    assert.match(lines.join('\n'), /delivering again after 3 failed attempt/);
  } finally {
    await streams.close();
    await log.close();
    await c.close();
    t.cleanup();
  }
});

test('restart: the new streamer resumes from the persisted cursor and delivers the rest', async () => {
  let healthy = false;
  const c = await httpCollector((_r, n) => (healthy || n <= 2 ? 200 : 503));
  const t = tempConfig(`{ stream: [{ http: "${c.url}" }] }`);
  const tuning = { ...FAST, batchRecords: 3 };
  try {
    const log1 = await openAuditLog(t.config, { mask: testMask });
    const streams1 = startAuditStreams(t.config, log1, { tuning, logLine: () => undefined });
    await appendCommands(log1, 10);
    // Two batches (1-3, 4-6) acknowledged; the third is refused and being retried.
    await waitFor('a refused batch', () => c.requests.some((r) => r.status === 503));
    assert.deepEqual(ackedSeqs(c.requests), range(1, 6));
    await streams1.close();
    await log1.close();

    const log2 = await openAuditLog(t.config, { mask: testMask });
    await appendCommands(log2, 5, 10);
    healthy = true;
    const before = c.requests.length;
    const streams2 = startAuditStreams(t.config, log2, { tuning });
    try {
      await waitFor('records 7-15', () => ackedSeqs(c.requests.slice(before)).length >= 9);
      assert.deepEqual(ackedSeqs(c.requests.slice(before)), range(7, 15), 'resumes after 6: nothing lost, nothing acknowledged re-sent');
    } finally {
      await streams2.close();
      await log2.close();
    }
  } finally {
    await c.close();
    t.cleanup();
  }
});

test('append is unaffected when the destination never answers, and close stops within the grace period', async () => {
  const c = await httpCollector(() => null);
  const t = tempConfig(`{ stream: [{ http: "${c.url}" }] }`);
  const log = await openAuditLog(t.config, { mask: testMask });
  const streams = startAuditStreams(t.config, log, { tuning: { ...FAST, graceMs: 200, requestTimeoutMs: 60_000 }, logLine: () => undefined });
  try {
    await appendCommands(log, 1);
    await waitFor('a hanging request', () => c.requests.length === 1);
    let slowest = 0;
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      await log.append({ type: 'command', command: { text: `SELECT ${i}` }, outcome: 'success' });
      slowest = Math.max(slowest, performance.now() - s);
    }
    assert.ok(slowest < 250, `append took ${slowest.toFixed(1)} ms with a hung destination`);
    assert.equal(c.requests.length, 1, 'still the one request in flight');
    const s = performance.now();
    await streams.close();
    assert.ok(performance.now() - s < 2000, 'close aborts the hung request after the grace period');
  } finally {
    await streams.close();
    await log.close();
    await c.close();
    t.cleanup();
  }
});

test('batches are capped by record count and bytes; a 413 halves the batch', async () => {
  const c = await httpCollector((r) => (r.body.split('\n').filter((l) => l !== '').length > 2 && r.headers['x-case'] === 'small' ? 413 : 200));
  const t1 = tempConfig(`{ stream: [{ http: "${c.url}" }] }`);
  const t2 = tempConfig(`{ stream: [{ http: "${c.url}", headers: { x-case: small } }] }`);
  const log1 = await openAuditLog(t1.config, { mask: testMask });
  const log2 = await openAuditLog(t2.config, { mask: testMask });
  const s1 = startAuditStreams(t1.config, log1, { tuning: { ...FAST, batchRecords: 4 } });
  try {
    await appendCommands(log1, 10);
    await waitFor('10 records', () => ackedSeqs(c.requests).length >= 10);
    assert.deepEqual(c.requests.map((r) => r.body.split('\n').length - 1), [4, 4, 2]);
    await s1.close();

    c.requests.length = 0;
    const s2 = startAuditStreams(t2.config, log2, { tuning: { ...FAST, batchRecords: 8 }, logLine: () => undefined });
    try {
      await appendCommands(log2, 6);
      await waitFor('6 records', () => ackedSeqs(c.requests).length >= 6);
      assert.deepEqual(ackedSeqs(c.requests), range(1, 6));
      assert.equal(c.requests[0]!.status, 413);
      assert.ok(c.requests.filter((r) => r.status === 200).every((r) => r.body.split('\n').length - 1 <= 2));
    } finally {
      await s2.close();
    }

    c.requests.length = 0;
    const s3 = startAuditStreams(t1.config, log1, { tuning: { ...FAST, batchRecords: 100, batchBytes: 1 } });
    try {
      await appendCommands(log1, 3, 10);
      await waitFor('3 records', () => ackedSeqs(c.requests).length >= 3);
      assert.deepEqual(c.requests.map((r) => r.body.split('\n').length - 1), [1, 1, 1], 'one record per batch when one exceeds the byte cap');
    } finally {
      await s3.close();
    }
  } finally {
    await log1.close();
    await log2.close();
    await c.close();
    t1.cleanup();
    t2.cleanup();
  }
});

test('OCSF over HTTP: one JSON array per batch, each element from the OCSF formatter', async () => {
  const c = await httpCollector();
  const t = tempConfig(`{ stream: [{ http: "${c.url}", format: ocsf }] }`);
  let now = 1_767_225_600_000;
  const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
  const streams = startAuditStreams(t.config, log, { tuning: FAST });
  try {
    await recordScenario(log, (ms) => (now += ms));
    const stored = await allEvents(log);
    await waitFor('all records', () => c.requests.reduce((n, r) => n + (JSON.parse(r.body) as unknown[]).length, 0) >= stored.length);
    const got = c.requests.flatMap((r) => {
      assert.equal(r.headers['content-type'], 'application/json');
      return JSON.parse(r.body) as unknown[];
    });
    assert.deepEqual(got, stored.map((e) => toOcsf(parseRecord(e.body))));
    assert.deepEqual(got, stored.map((e) => JSON.parse(formatRecord(e, 'ocsf'))));
  } finally {
    await streams.close();
    await log.close();
    await c.close();
    t.cleanup();
  }
});

/** RFC 5424: PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG. */
const RFC5424 = /^<(\d{1,3})>1 (\S+) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) (-|\[[^\]]*\]) ([\s\S]*)$/;

function checkSyslog(message: string, ev: StoredEvent, msg: string): void {
  const m = RFC5424.exec(message);
  assert.ok(m !== null, `not RFC 5424: ${message.slice(0, 120)}`);
  const [, pri, ts, host, app, procId, msgId, sd, body] = m;
  const severity = ev.type === 'auth.failure' || ev.outcome === 'denied' ? 4 : ev.type === 'upstream.error' || ev.outcome === 'failure' ? 3 : 6;
  assert.equal(Number(pri), 13 * 8 + severity, `PRI of ${ev.type}/${ev.outcome}: facility 13 (log audit)`);
  assert.equal(ts, new Date(ev.ts).toISOString());
  assert.match(ts!, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,6}Z$/);
  assert.equal(host, 'test-node');
  assert.equal(app, 'sluice');
  assert.equal(procId, String(process.pid));
  assert.equal(msgId, ev.type);
  assert.equal(sd, `[meta sequenceId="${ev.seq}"]`);
  assert.equal(body, msg);
}

test('syslog over UDP: one RFC 5424 message per datagram, JSON Lines by default', async () => {
  const sock = createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const t = tempConfig(`{ stream: [{ syslog: "127.0.0.1:${sock.address().port}" }] }`);
  let now = 1_767_225_600_000;
  const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
  const streams = startAuditStreams(t.config, log, { tuning: FAST });
  try {
    await recordScenario(log, (ms) => (now += ms));
    const stored = await allEvents(log);
    await waitFor('every datagram', () => got.length >= stored.length);
    assert.equal(got.length, stored.length);
    got.forEach((message, i) => checkSyslog(message, stored[i]!, stored[i]!.body));
    assert.ok(stored.some((e) => e.outcome === 'denied') && stored.some((e) => e.type === 'upstream.error'), 'the scenario covers the non-informational severities');
  } finally {
    await streams.close();
    await log.close();
    await new Promise<void>((resolve) => sock.close(() => resolve()));
    t.cleanup();
  }
});

/** RFC 6587 §3.4.1: split `MSG-LEN SP SYSLOG-MSG` frames; throws on a malformed one. */
function splitOctetCounted(buf: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < buf.length) {
    const sp = buf.indexOf(0x20, at);
    assert.ok(sp > at, 'frame length then a space');
    const lenText = buf.subarray(at, sp).toString('ascii');
    assert.match(lenText, /^[1-9]\d*$/, 'MSG-LEN is a non-zero decimal');
    const len = Number(lenText);
    assert.ok(sp + 1 + len <= buf.length, 'the frame is complete');
    out.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
    at = sp + 1 + len;
  }
  return out;
}

test('syslog over TCP: octet-counted RFC 5424 frames (byte lengths), CEF from the CEF formatter, reconnects', async () => {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createTcpServer((s) => {
    connections += 1;
    sockets.add(s);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const t = tempConfig(`{ stream: [{ syslog: "127.0.0.1:${port}", protocol: tcp, format: cef }] }`);
  let now = 1_767_225_600_000;
  const log = await openAuditLog(t.config, { mask: testMask, clock: () => now });
  const streams = startAuditStreams(t.config, log, { tuning: FAST, logLine: () => undefined });
  try {
    await recordScenario(log, (ms) => (now += ms));
    // Multi-byte text: MSG-LEN counts octets, not characters.
    await log.append({ type: 'command', session: session(), command: { text: "SELECT 'héllo ☃ | x=y'" }, outcome: 'success' });
    const stored = await allEvents(log);
    const frames = (): string[] => splitOctetCounted(Buffer.concat(chunks));
    await waitFor('every frame', () => {
      try {
        return frames().length >= stored.length;
      } catch {
        return false;
      }
    });
    const got = frames();
    assert.equal(got.length, stored.length);
    got.forEach((message, i) => {
      const cef = formatRecord(stored[i]!, 'cef');
      assert.equal(cef, toCef(parseRecord(stored[i]!.body)));
      checkSyslog(message, stored[i]!, cef);
    });
    assert.equal(connections, 1, 'one persistent connection');

    // The collector drops the connection: the next records go over a new one.
    for (const s of sockets) s.destroy();
    await waitFor('the drop', () => sockets.size === 0);
    await new Promise((r) => setTimeout(r, 50));
    await log.append({ type: 'command', command: { text: 'SELECT 2' }, outcome: 'success' });
    await waitFor('the record after reconnecting', () => {
      try {
        return frames().some((f) => f.includes('cnt=' + String(stored.length + 1)));
      } catch {
        return false;
      }
    });
    assert.ok(connections >= 2);
  } finally {
    await streams.close();
    await log.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    t.cleanup();
  }
});

function configError(audit: string, where: string): void {
  const t = tempConfig(audit);
  try {
    assert.throws(
      () => startAuditStreams(t.config, { store: undefined, onCommit: () => () => undefined } as unknown as AuditLog),
      (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_CONFIG_INVALID' && err.message.startsWith(`${where}:`),
      `${audit} → ${where}`,
    );
  } finally {
    t.cleanup();
  }
}

test('destinations are validated at startup and errors name the config path', async () => {
  delete process.env.SLUICE_STREAM_UNSET;
  configError('{ stream: [{ http: "http://siem.example.com/in" }] }', 'audit.stream[0].http');
  configError('{ stream: [{ http: "ftp://127.0.0.1/in" }] }', 'audit.stream[0].http');
  configError('{ stream: [{ http: "https://user:pw@siem.example.com/in" }] }', 'audit.stream[0].http');
  configError('{ stream: [{ http: "https://siem.example.com/in" }, { syslog: "127.0.0.1:0" }] }', 'audit.stream[1].syslog');
  configError('{ stream: [{ syslog: "127.0.0.1:70000", protocol: tcp }] }', 'audit.stream[0].syslog');
  configError('{ stream: [{ http: "https://siem.example.com/in", headers: { authorization: "env:SLUICE_STREAM_UNSET" } }] }', 'audit.stream[0].headers.authorization');
  configError('{ stream: [{ http: "https://siem.example.com/in", headers: { "bad header": x } }] }', 'audit.stream[0].headers.bad header');
  configError('{ stream: [{ syslog: "10.0.0.1:514" }, { syslog: "10.0.0.1:514" }] }', 'audit.stream[1]');

  // insecure: true allows cleartext to a remote host; nothing is sent before a record exists.
  const t = tempConfig('{ stream: [{ http: "http://siem.example.com/in", insecure: true }, { syslog: "[::1]:514", protocol: tcp }] }');
  try {
    const log = await openAuditLog(t.config, { mask: testMask });
    const calls: string[] = [];
    const streams = startAuditStreams(t.config, log, { tuning: FAST, fetch: async (u) => (calls.push(String(u)), new Response(null, { status: 204 })) });
    await streams.close();
    await log.close();
  } finally {
    t.cleanup();
  }
});

test('backoff grows exponentially with jitter in [step/2, step] and is capped', () => {
  const policy = { baseMs: 100, maxMs: 5000 };
  assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0)), [50, 100, 200, 400]);
  assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0.999999)), [100, 200, 400, 800]);
  assert.equal(backoffDelay(10, policy, () => 1), 5000);
  assert.equal(backoffDelay(10_000, policy, () => 0.5), 3750, 'a huge attempt count stays finite and capped');
  for (let n = 1; n < 40; n++) {
    const d = backoffDelay(n, policy);
    assert.ok(d >= 50 && d <= 5000, `attempt ${n}: ${d}`);
  }
  assert.throws(() => backoffDelay(0, policy), TypeError);
});
