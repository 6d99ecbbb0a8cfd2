/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * gateway, a real PostgreSQL and a `pg` agent whose statements are held for review: a reviewer
 * approves and denies from the page, an agent sees only its own requests, an auditor reads
 * sessions and replays a timeline. Statement text written to attack the page (markup, script)
 * must show as text and never run. Also the APIs the page uses: /api/v1/me and /api/v1/sessions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadConfigFile, type SluiceConfig } from '../../src/config/index.js';
import { mintLocalToken } from '../../src/identity/index.js';
import { mintShortToken } from '../helpers/tokens.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { parseRecord, type AuditRecord } from '../../src/audit/index.js';
import { createFixture, fixtureConfig, type Fixture } from '../helpers/gateway.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** As the machine's probe starts it: root needs --no-sandbox, a container's small /dev/shm --disable-dev-shm-usage; the rest keeps it off the network. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A statement an agent could send to attack the reviewer's page: markup and script in its text. */
const HOSTILE = `DELETE FROM orders WHERE id = 1 AND '<img src=x onerror="window.__xss=1"></pre><script>window.__xss=2</script>' <> ''`;

describe('web console', () => {
  let f: Fixture;
  let config: SluiceConfig;
  let gw: Gateway;
  let base: string;
  let browser: Browser;
  const tokens = {} as { agent: string; dba: string; auditor: string };

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is needed at ${CHROMIUM} (Debian package chromium; .ci/run installs it), or set CHROMIUM`);
    f = await createFixture();
    f.writeConfig(
      fixtureConfig(f, {
        http: true,
        roles: ['agent', { name: 'dba', approver: true }, { name: 'auditor', auditor: true }],
        connections: { appdb: { user: 'app_rw' } },
        policies: `  - role: agent
    connection: appdb
    rules:
      - allow: [select]
      - review: [delete]
        name: deletes-need-a-dba
        approval: { approvers: [dba], timeout: 60s }
`,
      }).replace('identity:\n', 'identity:\n  clockSkew: 0s\n'),
    );
    config = loadConfigFile(f.configPath);
    gw = await startGateway(config, { log: () => undefined });
    base = `http://127.0.0.1:${gw.addresses.http?.port}`;
    tokens.agent = await mintLocalToken(config, { role: 'agent', subject: 'release-bot', ttlMs: 3_600_000 });
    tokens.dba = await mintLocalToken(config, { role: 'dba', subject: 'alice', ttlMs: 3_600_000 });
    tokens.auditor = await mintLocalToken(config, { role: 'auditor', subject: 'carol', ttlMs: 3_600_000 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await f?.cleanup();
  });

  const agent = async (): Promise<pg.Client> => {
    const c = new pg.Client({ host: '127.0.0.1', port: gw.addresses.postgres?.port as number, user: 'agent', database: 'appdb', password: tokens.agent });
    await c.connect();
    return c;
  };

  const get = (path: string, token?: string, init: RequestInit = {}): Promise<Response> =>
    fetch(base + path, { ...init, headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string> | undefined) } });

  /** The pending request for `text`, once the gateway has created it. */
  const pendingFor = async (text: string): Promise<{ id: string }> => {
    for (let i = 0; i < 200; i++) {
      const res = await get('/api/v1/approvals?state=pending', tokens.dba);
      const { items } = (await res.json()) as { items: { id: string; text: string }[] };
      const hit = items.find((a) => a.text === text);
      if (hit !== undefined) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no pending request for ${text}`);
  };

  const signIn = async (token: string): Promise<Page> => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/console/`);
    await page.fill('#token', token);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signout');
    assert.deepEqual(errors, [], 'the page threw');
    return page;
  };

  /** A reviewer's (or agent's) page, signed in with `token`, and the card of request `id` on it. */
  const cardFor = async (token: string, id: string): Promise<{ page: Page; card: ReturnType<Page['locator']> }> => {
    const page = await signIn(token);
    const card = page.locator(`.approval[data-id="${id}"]`);
    await card.waitFor();
    return { page, card };
  };

  /** How many items the page keeps in its tab's sessionStorage (the token, while signed in). */
  const storedItems = (page: Page): Promise<number> => page.evaluate(() => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length);

  /** Every record of one type in the log, once the writer has ingested `atLeast` of them. */
  const recordsOf = async (type: string, atLeast: number): Promise<AuditRecord[]> => {
    let found: AuditRecord[] = [];
    for (let i = 0; i < 100; i++) {
      found = (await gw.audit.store.readEvents(0, 100_000)).map((e) => parseRecord(e.body)).filter((r) => r.type === type);
      if (found.length >= atLeast) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    return found;
  };

  it('serves its pages with a strict Content-Security-Policy, and nothing else under /console', async () => {
    const redirect = await get('/console', undefined, { redirect: 'manual' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/console/');
    const page = await get('/console/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(await page.text(), /<script>/, 'no inline script: the policy would refuse it');
    const js = await get('/console/app.js');
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(await js.text(), /createTextNode/);
    const missing = await get('/console/../etc/passwd');
    assert.equal(missing.status, 404);
    const other = await get('/console/secret.txt');
    assert.equal(other.status, 404);
    assert.match(other.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal((await get('/console/', undefined, { method: 'POST' })).status, 405);
  });

  it('GET /api/v1/me says who a token is and which views it gets; no token is 401', async () => {
    assert.equal((await get('/api/v1/me')).status, 401);
    assert.equal((await get('/api/v1/me', 'not-a-token')).status, 401);
    const dba = (await (await get('/api/v1/me', tokens.dba)).json()) as Record<string, unknown>;
    assert.equal(dba.subject, 'alice');
    assert.deepEqual(dba.roles, ['dba']);
    assert.equal(dba.approvals, 'reviewer');
    assert.equal(dba.audit, 'none');
    const auditor = (await (await get('/api/v1/me', tokens.auditor)).json()) as Record<string, unknown>;
    assert.equal(auditor.approvals, 'own');
    assert.equal(auditor.audit, 'auditor');
    assert.equal((await get('/api/v1/me/else', tokens.auditor)).status, 404);
  });

  it('a reviewer approves a held statement from the page; hostile statement text shows as text and never runs', async () => {
    const c = await agent();
    try {
      const held = c.query(HOSTILE);
      const { id } = await pendingFor(HOSTILE);
      const { page, card } = await cardFor(tokens.dba, id);
      assert.equal(await card.locator('.statement').textContent(), HOSTILE);
      assert.equal(await page.locator('img').count(), 0, 'the statement text became markup');
      assert.equal(await page.locator('main script').count(), 0);
      assert.ok(!(await page.locator('main > p').allTextContents()).includes('null'), 'an absent part of the view printed as "null"');
      assert.match((await card.textContent()) ?? '', /release-bot/);
      assert.match((await card.textContent()) ?? '', /deletes-need-a-dba/);
      await card.locator('input[name=comment]').fill('ticket OPS-1');
      await card.locator('[data-action=approve]').click();
      await page.waitForSelector('#flash:has-text("Approved")');
      const result = await held;
      assert.equal(result.rowCount, 1);
      assert.equal(await page.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined);
      const view = (await (await get(`/api/v1/approvals/${id}`, tokens.dba)).json()) as { state: string; approvals: { subject: string; comment?: string }[] };
      assert.equal(view.state, 'approved');
      assert.deepEqual(view.approvals.map((v) => [v.subject, v.comment]), [['alice', 'ticket OPS-1']]);
      // The decided request leaves the pending list at the next refresh.
      await page.waitForSelector(`.approval[data-id="${id}"]`, { state: 'detached', timeout: 10_000 });
      await page.context().close();
    } finally {
      await c.end();
    }
  });

  it('a denial from the page needs a reason, then fails the agent\'s statement with it', async () => {
    const c = await agent();
    try {
      const text = 'DELETE FROM orders WHERE id = 2';
      const held = c.query(text).then(
        () => assert.fail('the denied statement ran'),
        (err: Error) => err,
      );
      const { id } = await pendingFor(text);
      const { page, card } = await cardFor(tokens.dba, id);
      await card.locator('[data-action=deny]').click();
      await card.locator('[data-role=message]:has-text("needs a reason")').waitFor();
      assert.equal(((await (await get(`/api/v1/approvals/${id}`, tokens.dba)).json()) as { state: string }).state, 'pending');
      await card.locator('input[name=reason]').fill('not during the freeze');
      await card.locator('[data-action=deny]').click();
      await page.waitForSelector('#flash:has-text("Denied")');
      const err = await held;
      assert.match(err.message, /denied/i);
      assert.match(err.message, /not during the freeze/);
      await page.context().close();
    } finally {
      await c.end();
    }
  });

  it('an agent that signs in sees only its own requests, with nothing to press', async () => {
    const c = await agent();
    try {
      const text = 'DELETE FROM orders WHERE id = 3';
      const held = c.query(text).catch((err: Error) => err);
      const { id } = await pendingFor(text);
      const { page, card } = await cardFor(tokens.agent, id);
      assert.equal(await card.locator('[data-action]').count(), 0);
      assert.match((await page.locator('main').textContent()) ?? '', /no approver role/);
      assert.equal(await page.locator('#nav a[href="#/sessions"]').count(), 0, 'an agent gets no audit view');
      // Sign out forgets the token.
      await page.click('#signout');
      await page.waitForSelector('#token');
      assert.equal(await storedItems(page), 0);
      await page.context().close();
      await get(`/api/v1/approvals/${id}/deny`, tokens.dba, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'cleanup' }) });
      await held;
    } finally {
      await c.end();
    }
  });

  it('a token that expires signs the page out: at the list\'s next refresh, or when the tab loads again', async () => {
    // On the pending list, the refresh after the expiry signs out.
    const first = await mintShortToken(config, 'dba', 'short-lived-reviewer', 3);
    const polling = await signIn(first.token);
    await polling.waitForSelector('#signin-error:has-text("Signed out")', { timeout: 15_000 });
    assert.ok(Date.now() >= first.expiresAt);
    assert.equal(await storedItems(polling), 0);
    await polling.context().close();
    // On a view that does not refresh, the next load does.
    const second = await mintShortToken(config, 'dba', 'short-lived-reviewer', 3);
    const page = await signIn(second.token);
    await page.goto(`${base}/console/#/approvals/apr_none`);
    await page.waitForSelector('main .error');
    await new Promise((r) => setTimeout(r, Math.max(0, second.expiresAt - Date.now()) + 300));
    await page.reload();
    await page.waitForSelector('#signin-error:has-text("Signed out")');
    assert.equal(await page.locator('#signout').count(), 0);
    assert.equal(await storedItems(page), 0);
    await page.context().close();
  });

  it('a token the gateway refuses is not signed in', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${base}/console/`);
    await page.fill('#token', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.');
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signin-error:has-text("refused")');
    assert.equal(await page.locator('#signout').count(), 0);
    assert.equal(await storedItems(page), 0);
    await page.context().close();
  });

  it('an auditor lists sessions and replays one: masked results, hostile text as text', async () => {
    const c = await agent();
    await c.query('SELECT name, email FROM customers ORDER BY id');
    await c.end();
    const page = await signIn(tokens.auditor);
    await page.click('#nav a[href="#/sessions"]');
    const row = page.locator('#session-table tr[data-id]', { hasText: 'release-bot' }).first();
    await row.waitFor();
    await row.click();
    await page.waitForSelector('#timeline .event[data-type="command"]');
    const timeline = (await page.locator('#timeline').textContent()) ?? '';
    assert.match(timeline, /SELECT name, email FROM customers/);
    assert.match(timeline, /a\*\*\*@example\.com/, 'the preview shows the masked e-mail');
    assert.doesNotMatch(timeline, /ada@example\.com/);
    assert.match((await page.locator('main').textContent()) ?? '', /release-bot/);
    // An earlier session of the same agent carries the hostile statement: text, not markup.
    await page.goto(`${base}/console/#/sessions?subject=release-bot`);
    const rows = page.locator('#session-table tr[data-id]');
    await rows.first().waitFor();
    let sawHostile = false;
    for (const id of await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id') as string))) {
      await page.goto(`${base}/console/#/sessions/${id}`);
      await page.waitForSelector('#timeline .event');
      if (((await page.locator('#timeline').textContent()) ?? '').includes('<img src=x')) sawHostile = true;
      assert.equal(await page.locator('img').count(), 0);
    }
    assert.ok(sawHostile, 'the hostile statement is in some session');
    await page.click('#replay');
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('#timeline .event.hidden').length === 0, undefined, { timeout: 20_000 });
    assert.equal(await page.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined);
    await page.context().close();
  });

  it('the sessions API is for auditors only; every read, and every refusal, is recorded', async () => {
    const before = (await recordsOf('audit.read', 0)).length;
    assert.equal((await get('/api/v1/sessions')).status, 401);
    assert.equal((await get('/api/v1/sessions/anything/at/all')).status, 401, 'anonymous callers learn nothing about routes');
    const refused = await get('/api/v1/sessions', tokens.dba);
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { detail: string }).detail, /auditor/);
    // A session of its own, so this test does not lean on the others.
    const c = await agent();
    await c.query('SELECT id FROM orders ORDER BY id LIMIT 3');
    await c.end();
    let items: { id: string; subject: string }[] = [];
    for (let i = 0; i < 100 && items.length === 0; i++) {
      const ok = await get('/api/v1/sessions?subject=release-bot&since=1h', tokens.auditor);
      assert.equal(ok.status, 200);
      items = ((await ok.json()) as { items: typeof items }).items;
      if (items.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(items.length >= 1 && items.every((s) => s.subject === 'release-bot'));
    const one = (await (await get(`/api/v1/sessions/${items[0]?.id}?limit=2`, tokens.auditor)).json()) as { events: unknown[]; total: number; truncated: boolean };
    assert.equal(one.events.length, 2);
    assert.ok(one.total > 2 && one.truncated);
    assert.equal((await get('/api/v1/sessions?since=yesterday-ish', tokens.auditor)).status, 400);
    assert.equal((await get('/api/v1/sessions?limit=0', tokens.auditor)).status, 400);
    assert.equal((await get('/api/v1/sessions/no-such-session', tokens.auditor)).status, 404);
    assert.equal((await get('/api/v1/sessions/a%2Fb', tokens.auditor)).status, 404);
    assert.equal((await get('/api/v1/sessions/%E0%A4%A', tokens.auditor)).status, 404, 'a malformed escape is not a server error');
    assert.equal((await get('/api/v1/approvals/%E0%A4%A', tokens.dba)).status, 404);
    assert.equal((await get('/api/v1/sessions', tokens.auditor, { method: 'DELETE' })).status, 405);
    const reads = (await recordsOf('audit.read', before + 3)).slice(before);
    const denied = reads.find((r) => r.outcome === 'denied');
    assert.equal(denied?.identity?.subject, 'alice');
    assert.equal(denied?.error?.code, 'SLUICE_AUDIT_FORBIDDEN');
    const listed = reads.find((r) => r.outcome === 'success' && (r.details as { read?: string }).read === 'sessions');
    assert.equal(listed?.identity?.subject, 'carol');
    assert.equal(listed?.role, 'auditor');
    assert.deepEqual((listed?.details as { filter?: { subject?: string } }).filter?.subject, 'release-bot');
    assert.ok(reads.some((r) => (r.details as { read?: string; session?: string }).session === items[0]?.id));
  });
});
