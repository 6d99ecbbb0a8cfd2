// Sluice web console: approvals for reviewers, sessions and timelines for auditors.
//
// Everything shown here was written by an agent, an upstream or a claim issuer, so the page never
// parses any of it as markup: every piece of DOM is built with createElement and text nodes
// (`h()` below), links are built only from ids that passed a strict pattern, and the server's
// Content-Security-Policy refuses inline script. The token lives in this tab's sessionStorage and
// goes out only as an Authorization header to this origin.

const TOKEN_KEY = 'sluice.console.token';
const POLL_MS = 3000;
const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{1,64}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  poll: null,
  tick: null,
  // What a reviewer has typed, kept across the list's refreshes.
  drafts: new Map(),
  lastList: '',
  replay: [],
};

/** An element with properties and children; strings become text nodes, never markup. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'href') {
      if (typeof v !== 'string' || !v.startsWith('#/')) throw new Error('console links are internal');
      el.setAttribute('href', v);
    } else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'disabled') el.disabled = true;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Append what is there: a view's optional parts are null when absent. */
function add(parent, ...children) {
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) parent.append(c);
  return parent;
}

const main = () => document.getElementById('main');

function fmtTime(ms) {
  if (typeof ms !== 'number') return '';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function fmtLeft(ms) {
  if (ms <= 0) return 'now';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function short(v, max = 2000) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max)}… (${s.length} characters)` : s;
}

class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit', redirect: 'error' });
  const text = await res.text();
  let data = {};
  try {
    data = text === '' ? {} : JSON.parse(text);
  } catch {
    data = { detail: text.slice(0, 500) };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data.title, data.detail);
    // A token that stops working (expired, or its issuer's key rotated) ends the sign-in.
    if (res.status === 401 && state.me !== null) signOut(`Signed out: ${err.message}`);
    throw err;
  }
  return data;
}

function stopTimers() {
  if (state.poll !== null) clearInterval(state.poll);
  if (state.tick !== null) clearInterval(state.tick);
  for (const t of state.replay) clearTimeout(t);
  state.poll = null;
  state.tick = null;
  state.replay = [];
}

// --- sign in -------------------------------------------------------------------------------

function signOut(message) {
  stopTimers();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.drafts.clear();
  state.lastList = '';
  renderSignIn(message);
}

function renderSignIn(message) {
  clear(document.getElementById('nav'));
  clear(document.getElementById('who'));
  const input = h('textarea', { id: 'token', 'aria-label': 'token', placeholder: 'eyJ…', autocomplete: 'off', spellcheck: 'false' });
  const error = h('p', { class: 'error', id: 'signin-error' }, message ?? '');
  const submit = async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (token === '') {
      error.textContent = 'Paste a token first.';
      return;
    }
    state.token = token;
    try {
      state.me = await api('/api/v1/me');
    } catch (err) {
      state.token = null;
      error.textContent = `The gateway refused this token: ${err.message}`;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    if (location.hash === '' || location.hash === '#/') location.hash = defaultRoute();
    else route();
  };
  add(clear(main()), 
    h('div', { class: 'card' },
      h('h1', {}, 'Sign in'),
      h('p', { class: 'muted' },
        'Paste your own token: an OIDC token from your identity provider, or one from ',
        h('code', {}, 'sluice token mint --role <reviewer role>'),
        '. It stays in this browser tab and is sent only to this gateway.'),
      h('form', { id: 'signin', onsubmit: submit }, input, h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit' }, 'Sign in'))),
      error,
    ),
  );
  input.focus();
}

function defaultRoute() {
  if (state.me?.approvals !== 'off') return '#/approvals';
  if (state.me?.audit === 'auditor') return '#/sessions';
  return '#/approvals';
}

function renderShell(active) {
  const nav = clear(document.getElementById('nav'));
  if (state.me.approvals !== 'off') nav.append(h('a', { href: '#/approvals', class: active === 'approvals' ? 'active' : undefined }, 'Approvals'));
  if (state.me.audit === 'auditor') nav.append(h('a', { href: '#/sessions', class: active === 'sessions' ? 'active' : undefined }, 'Sessions'));
  clear(document.getElementById('who')).append(
    `${state.me.subject} (${state.me.roles.join(', ') || 'no role'})`,
    h('button', { id: 'signout', type: 'button', onclick: () => signOut('Signed out.') }, 'Sign out'),
  );
}

// --- routing -------------------------------------------------------------------------------

async function route() {
  stopTimers();
  if (state.token === null) return renderSignIn();
  if (state.me === null) {
    try {
      state.me = await api('/api/v1/me');
    } catch (err) {
      // A token kept from earlier in this tab that no longer works (expired, or revoked) signs out.
      if (err.status === 401) signOut(`Signed out: ${err.message}`);
      else renderSignIn(`The gateway did not answer: ${err.message}`);
      return;
    }
  }
  const parts = location.hash.replace(/^#\/?/, '').split('?')[0].split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return '';
    }
  });
  const [view, id] = parts;
  if (view === 'sessions') {
    renderShell('sessions');
    if (id !== undefined && id !== '') return showSession(id);
    return showSessions();
  }
  renderShell('approvals');
  if (view === 'approvals' && id !== undefined && id !== '') return showApproval(id);
  return showApprovals();
}

// --- approvals -----------------------------------------------------------------------------

function draft(id) {
  if (!state.drafts.has(id)) state.drafts.set(id, { comment: '', reason: '' });
  return state.drafts.get(id);
}

function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(h('dt', {}, k), h('dd', {}, v instanceof Node ? v : short(v)));
  }
  return dl;
}

function approvalCard(a, { single = false } = {}) {
  const mayAct = a.state === 'pending' && state.me.approvals === 'reviewer';
  const d = draft(a.id);
  const message = h('p', { class: 'error', 'data-role': 'message' });
  const act = async (kind, button) => {
    message.textContent = '';
    message.className = 'error';
    if (kind === 'deny' && d.reason.trim() === '') {
      message.textContent = 'A denial needs a reason.';
      return;
    }
    button.disabled = true;
    try {
      const body = kind === 'approve' ? (d.comment.trim() === '' ? {} : { comment: d.comment }) : { reason: d.reason };
      const view = await api(`/api/v1/approvals/${encodeURIComponent(a.id)}/${kind}`, { method: 'POST', body });
      state.drafts.delete(a.id);
      const card = approvalCard(view, { single });
      const note = kind === 'approve'
        ? view.state === 'approved' ? 'Approved: the statement runs now.' : `Approval recorded (${view.approvals.length} of ${view.required}).`
        : 'Denied: the agent gets an error.';
      card.querySelector('[data-role=message]').replaceWith(h('p', { class: 'notice', 'data-role': 'message' }, note));
      cardEl.replaceWith(card);
      // The list's next refresh drops a decided request; the note stays above it.
      const flash = document.getElementById('flash');
      if (flash !== null) flash.textContent = `${a.id}: ${note}`;
    } catch (err) {
      button.disabled = false;
      message.textContent = err.message;
    }
  };
  const requester = a.requester ?? {};
  const context = Object.entries(requester.context ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const votes = (a.approvals ?? []).map((v) => `${v.subject} as ${v.role} at ${fmtTime(v.at)}${v.comment ? `: ${v.comment}` : ''}`);
  const session = state.me.audit === 'auditor' && SESSION_ID.test(a.sessionId) ? h('a', { href: `#/sessions/${encodeURIComponent(a.sessionId)}` }, a.sessionId) : a.sessionId;
  const title = APPROVAL_ID.test(a.id) && !single ? h('a', { href: `#/approvals/${encodeURIComponent(a.id)}` }, a.id) : a.id;
  const cardEl = h('div', { class: 'card approval', 'data-id': a.id, 'data-state': a.state },
    h('div', { class: 'row' },
      h('h2', { class: 'grow' }, title),
      h('span', { class: `badge ${a.state}` }, a.state),
      a.state === 'pending' ? h('span', { class: 'muted expires', 'data-expires': a.expiresAt }, `expires in ${fmtLeft(a.expiresAt - Date.now())}`) : null,
    ),
    h('pre', { class: 'statement' }, a.text),
    kv([
      ['asked by', `${requester.subject} (${requester.issuer})`],
      ['role', requester.role],
      ['model', requester.model],
      ['sponsor', requester.sponsor],
      ['context', context],
      ['connection', `${a.connection} (${a.protocol}) from ${a.source}`],
      ['session', session],
      ['rule', a.rule],
      ['facts', a.facts && Object.keys(a.facts).length > 0 ? JSON.stringify(a.facts) : undefined],
      ['estimated rows', a.estimatedRows],
      ['approvals', `${(a.approvals ?? []).length} of ${a.required} (approver roles: ${(a.approverRoles ?? []).join(', ')})`],
      ['approved by', votes.length > 0 ? votes.join('; ') : undefined],
      ['denied by', a.deniedBy ? `${a.deniedBy.subject} as ${a.deniedBy.role}` : undefined],
      ['reason', a.reason],
      ['grant window', a.grantMs ? fmtLeft(a.grantMs) : undefined],
      ['requested', fmtTime(a.createdAt)],
      ['decided', a.decidedAt ? fmtTime(a.decidedAt) : undefined],
    ]),
    mayAct
      ? h('div', { class: 'actions' },
          h('div', { class: 'row' },
            h('input', { class: 'grow', name: 'comment', 'aria-label': 'comment', placeholder: 'comment (optional)', maxlength: 1000, value: d.comment, oninput: (e) => { d.comment = e.target.value; } }),
            h('button', { class: 'primary', type: 'button', 'data-action': 'approve', onclick: (e) => act('approve', e.currentTarget) }, 'Approve'),
          ),
          h('div', { class: 'row' },
            h('input', { class: 'grow', name: 'reason', 'aria-label': 'reason', placeholder: 'reason (needed to deny)', maxlength: 1000, value: d.reason, oninput: (e) => { d.reason = e.target.value; } }),
            h('button', { class: 'danger', type: 'button', 'data-action': 'deny', onclick: (e) => act('deny', e.currentTarget) }, 'Deny'),
          ),
        )
      : null,
    message,
  );
  return cardEl;
}

function tickExpiries() {
  for (const el of document.querySelectorAll('[data-expires]')) {
    el.textContent = `expires in ${fmtLeft(Number(el.getAttribute('data-expires')) - Date.now())}`;
  }
}

async function showApprovals() {
  const all = new URLSearchParams(location.hash.split('?')[1] ?? '').get('all') === '1';
  const list = h('div', { id: 'approvals' });
  const error = h('p', { class: 'error' });
  add(clear(main()), 
    h('div', { class: 'row' },
      h('h1', { class: 'grow' }, all ? 'Recent approval requests' : 'Pending approval requests'),
      h('a', { href: all ? '#/approvals' : '#/approvals?all=1' }, all ? 'pending only' : 'show decided too'),
    ),
    state.me.approvals === 'own' ? h('p', { class: 'muted' }, 'Your token holds no approver role: you see only your own requests.') : null,
    h('p', { class: 'notice', id: 'flash' }),
    error,
    list,
  );
  state.lastList = '';
  const refresh = async () => {
    let data;
    try {
      data = await api(all ? '/api/v1/approvals?limit=50' : '/api/v1/approvals?state=pending');
      error.textContent = '';
    } catch (err) {
      if (err.status === 404) error.textContent = 'Approvals are not enabled on this gateway (no role is configured approver: true).';
      else error.textContent = `Could not load requests: ${err.message}`;
      return;
    }
    // Re-render only on a change, so a reviewer's focus and typing are not disturbed.
    const key = JSON.stringify(data.items);
    if (key === state.lastList) return;
    state.lastList = key;
    const active = document.activeElement;
    const activeId = active?.closest?.('.approval')?.getAttribute('data-id');
    const activeName = active?.getAttribute?.('name');
    clear(list);
    if (data.items.length === 0) list.append(h('p', { class: 'muted', id: 'empty' }, all ? 'No requests.' : 'Nothing is waiting for approval.'));
    for (const a of data.items) list.append(approvalCard(a));
    if (activeId && activeName) {
      const again = [...list.querySelectorAll('.approval')].find((c) => c.getAttribute('data-id') === activeId)?.querySelector(`[name=${activeName}]`);
      again?.focus();
    }
  };
  await refresh();
  state.poll = setInterval(refresh, POLL_MS);
  state.tick = setInterval(tickExpiries, 1000);
}

async function showApproval(id) {
  if (!APPROVAL_ID.test(id)) {
    add(clear(main()), h('p', { class: 'error' }, 'That is not an approval request id.'));
    return;
  }
  add(clear(main()), h('p', {}, h('a', { href: '#/approvals' }, '← all pending requests')));
  try {
    const a = await api(`/api/v1/approvals/${encodeURIComponent(id)}`);
    add(main(), approvalCard(a, { single: true }));
  } catch (err) {
    add(main(), h('p', { class: 'error' }, err.message));
  }
  state.tick = setInterval(tickExpiries, 1000);
}

// --- sessions ------------------------------------------------------------------------------

function filtersFromHash() {
  const q = new URLSearchParams(location.hash.split('?')[1] ?? '');
  return { subject: q.get('subject') ?? '', connection: q.get('connection') ?? '', since: q.get('since') ?? '24h' };
}

async function showSessions() {
  const f = filtersFromHash();
  const subject = h('input', { name: 'subject', 'aria-label': 'subject', placeholder: 'subject', value: f.subject });
  const connection = h('input', { name: 'connection', 'aria-label': 'connection', placeholder: 'connection', value: f.connection });
  const since = h('input', { name: 'since', 'aria-label': 'since', placeholder: '24h, 7d or 2026-11-01', value: f.since });
  const apply = (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of [['subject', subject], ['connection', connection], ['since', since]]) if (el.value.trim() !== '') q.set(k, el.value.trim());
    location.hash = `#/sessions?${q}`;
  };
  const body = h('div', { id: 'sessions' });
  add(clear(main()), 
    h('h1', {}, 'Sessions'),
    h('form', { class: 'row card', onsubmit: apply }, subject, connection, since, h('button', { type: 'submit' }, 'Filter')),
    body,
  );
  const q = new URLSearchParams({ limit: '200' });
  for (const [k, v] of Object.entries(f)) if (v !== '') q.set(k, v);
  let data;
  try {
    data = await api(`/api/v1/sessions?${q}`);
  } catch (err) {
    body.append(h('p', { class: 'error' }, err.status === 404 ? 'The audit API is not enabled on this gateway (no role is configured auditor: true).' : err.message));
    return;
  }
  if (data.items.length === 0) {
    body.append(h('p', { class: 'muted', id: 'empty' }, 'No sessions match.'));
    return;
  }
  const rows = data.items.map((s) =>
    h('tr', { class: 'link', 'data-id': s.id, onclick: () => { if (SESSION_ID.test(s.id)) location.hash = `#/sessions/${encodeURIComponent(s.id)}`; } },
      h('td', {}, fmtTime(s.startedAt)),
      h('td', {}, s.subject ?? ''),
      h('td', {}, s.role ?? ''),
      h('td', {}, s.connection ?? ''),
      h('td', {}, s.protocol ?? ''),
      h('td', {}, s.source ?? ''),
      h('td', {}, String(s.commands)),
      h('td', {}, String(s.denied)),
      h('td', {}, String(s.errors)),
      h('td', {}, s.endedAt === undefined ? 'open' : s.endReason ?? 'ended'),
    ),
  );
  body.append(h('table', { id: 'session-table' },
    h('thead', {}, h('tr', {}, ...['started', 'subject', 'role', 'connection', 'protocol', 'source', 'commands', 'denied', 'errors', 'ended'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows),
  ));
}

function previewTable(p) {
  if (!p || !Array.isArray(p.columns)) return null;
  return h('table', { class: 'preview' },
    h('thead', {}, h('tr', {}, p.columns.map((c) => h('th', {}, c)))),
    h('tbody', {}, (p.rows ?? []).map((r) => h('tr', {}, r.map((v) => (v === null ? h('td', { class: 'null' }, 'NULL') : h('td', {}, short(v, 500))))))),
    p.truncated ? h('caption', { class: 'muted' }, 'more rows not kept') : null,
  );
}

function eventEl(e, t0) {
  const outcome = e.outcome ?? '';
  const effect = e.decision?.effect;
  const mask = (e.mask ?? []).map((m) => `${m.detector}${m.column ? ` (${m.column})` : ''}: ${m.count}`).join(', ');
  return h('div', { class: `event ${outcome}`, 'data-type': e.type, 'data-ts': e.ts },
    h('div', { class: 'row' },
      h('span', { class: 'offset' }, `+${((e.ts - t0) / 1000).toFixed(3)}s`),
      h('strong', {}, e.type),
      outcome ? h('span', { class: `badge ${outcome}` }, outcome) : null,
      effect ? h('span', { class: `badge ${effect}` }, effect) : null,
      e.rows !== undefined ? h('span', { class: 'muted' }, `${e.rows} rows`) : null,
      e.durationMs !== undefined ? h('span', { class: 'muted' }, `${e.durationMs} ms`) : null,
    ),
    e.command ? h('pre', {}, e.command.text) : null,
    kv([
      ['rule', e.decision ? `${e.decision.rule}${e.decision.reason ? `: ${e.decision.reason}` : ''}` : undefined],
      ['error', e.error ? `${e.error.code ? `${e.error.code}: ` : ''}${e.error.message}` : undefined],
      ['approval', e.approval ? `${e.approval.id}${e.approval.approver ? ` by ${e.approval.approver}` : ''}${e.approval.reason ? `: ${e.approval.reason}` : ''}` : undefined],
      ['masked', mask],
      ['details', e.details && e.type !== 'command.result' ? JSON.stringify(e.details) : undefined],
    ]),
    previewTable(e.preview),
  );
}

async function showSession(id) {
  if (!SESSION_ID.test(id)) {
    add(clear(main()), h('p', { class: 'error' }, 'That is not a session id.'));
    return;
  }
  add(clear(main()), h('p', {}, h('a', { href: '#/sessions' }, '← all sessions')));
  let data;
  try {
    data = await api(`/api/v1/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    add(main(), h('p', { class: 'error' }, err.message));
    return;
  }
  const s = data.session;
  const events = data.events;
  const t0 = events[0]?.ts ?? s.startedAt;
  const list = h('div', { id: 'timeline' }, events.map((e) => eventEl(e, t0)));
  const speed = h('select', { name: 'speed', 'aria-label': 'replay speed' }, ['1', '10', '100'].map((v) => h('option', { value: v }, `${v}×`)));
  // Replay: the same records, revealed with their real spacing (divided by the speed; pauses over 2 s shortened).
  const replay = () => {
    for (const t of state.replay) clearTimeout(t);
    state.replay = [];
    const els = [...list.children];
    const n = Number(speed.value);
    let at = 0;
    els.forEach((el, i) => {
      el.classList.add('hidden');
      const gap = i === 0 ? 0 : Math.min(2000, Math.max(0, (events[i].ts - events[i - 1].ts) / n));
      at += gap;
      state.replay.push(setTimeout(() => el.classList.remove('hidden'), at));
    });
  };
  const claims = Object.entries(s.claims ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
  add(main(), 
    h('div', { class: 'card' },
      h('h1', {}, `Session ${s.id}`),
      kv([
        ['subject', s.subject ? `${s.subject} (${s.issuer})` : undefined],
        ['role', s.role],
        ['model', s.model],
        ['sponsor', s.sponsor],
        ['claims', claims],
        ['connection', s.connection ? `${s.connection} (${s.protocol ?? ''})` : undefined],
        ['source', s.source],
        ['client', s.client],
        ['upstream', s.upstream ? `${s.upstream.account ?? ''}@${s.upstream.target ?? ''}` : undefined],
        ['started', fmtTime(s.startedAt)],
        ['ended', s.endedAt !== undefined ? `${fmtTime(s.endedAt)} (${s.endReason ?? 'ended'})` : 'still open'],
        ['commands', `${s.commands} (${s.denied} denied, ${s.errors} errors, ${s.approvals} held for approval)`],
      ]),
      h('div', { class: 'row' }, h('button', { type: 'button', id: 'replay', onclick: replay }, 'Replay'), speed),
    ),
    data.truncated ? h('p', { class: 'muted' }, `Showing the first ${events.length} of ${data.total} records; \`sluice replay ${s.id}\` shows them all.`) : null,
    list,
  );
}

window.addEventListener('hashchange', () => {
  route();
});
route();
