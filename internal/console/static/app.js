// Gatehouse admin console: a client of the HTTP/JSON API, no build step, no
// third-party code. Every string that comes from the API or a user is put
// into the page as text (textContent / text nodes); nothing is parsed as
// HTML. The caller token lives in an HttpOnly cookie set by
// /console/signin; the script only ever sees the CSRF value, which it echoes
// in X-Gatehouse-CSRF on every state-changing request.
'use strict';

(function () {
  // ---------- DOM helpers (text only, never HTML) ----------
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const enc = encodeURIComponent;
  let uid = 0;
  const nextID = (p) => `${p}-${++uid}`;

  function field(label, name, props) {
    const id = nextID('f');
    const input = props && props.textarea
      ? h('textarea', Object.assign({ id, name, 'data-field': name }, props, { textarea: null }))
      : h('input', Object.assign({ id, name, 'data-field': name, type: 'text' }, props));
    return h('label', { class: 'field', for: id }, label, input);
  }
  function select(label, name, options, value) {
    const id = nextID('f');
    const sel = h('select', { id, name, 'data-field': name },
      options.map((o) => {
        const [v, t] = Array.isArray(o) ? o : [o, o];
        return h('option', { value: v, selected: v === value }, t);
      }));
    return h('label', { class: 'field', for: id }, label, sel);
  }
  function check(label, name, checked, extra) {
    const id = nextID('c');
    return h('label', { class: 'check', for: id },
      h('input', { type: 'checkbox', id, name, 'data-field': name, checked }), h('span', {}, label), extra || null);
  }
  function toast(msg) {
    const t = document.getElementById('toast');
    t.textContent = msg;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.textContent = ''; }, 3000);
  }
  function confirmAction(what) {
    return window.confirm(what + '\n\nThis cannot be undone.');
  }
  function fmtTime(ts, zone) {
    if (!ts) return '';
    const d = new Date(ts);
    if (isNaN(d)) return String(ts);
    try {
      return d.toLocaleString(undefined, { timeZone: zone || undefined, weekday: 'short', year: 'numeric', month: 'short', day: 'numeric',
        hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
    } catch (e) { return d.toISOString(); }
  }

  // ---------- API client ----------
  function cookie(name) {
    for (const part of document.cookie.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === name) return v.join('=');
    }
    return '';
  }
  // snake turns the API's JSON field names into proto names, whichever the
  // gateway emits, so the console reads one spelling.
  function snake(v) {
    if (Array.isArray(v)) return v.map(snake);
    if (v && typeof v === 'object') {
      const out = {};
      for (const [k, x] of Object.entries(v)) {
        out[k.startsWith('@') ? k : k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = snake(x);
      }
      return out;
    }
    return v;
  }
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
      this.details = (body && body.details) || [];
    }
    get violations() {
      const out = [];
      for (const d of this.details) {
        if (!String(d['@type'] || '').endsWith('google.rpc.BadRequest')) continue;
        for (const fv of d.field_violations || []) out.push(fv);
      }
      return out;
    }
    get reason() {
      for (const d of this.details) if (String(d['@type'] || '').endsWith('google.rpc.ErrorInfo')) return d.reason;
      return '';
    }
    get conflict() { return this.code === 10 || this.status === 409 && this.reason === 'STALE_ETAG'; }
  }
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') headers['X-Gatehouse-CSRF'] = cookie('gatehouse_csrf');
    const resp = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { message: text }; }
    }
    data = snake(data);
    if (resp.ok) noteRevision(data);
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      if (resp.status === 401 && !path.startsWith('/console/')) { signInPage(err.message); err.handled = true; }
      throw err;
    }
    return data || {};
  }
  // lastRevision is the newest store revision any answer has shown; reads
  // that can wait for one (decisions, the allowlist tester) ask for it, so
  // they reflect what this console has just written.
  let lastRevision = 0;
  function noteRevision(v, depth) {
    if (!v || typeof v !== 'object' || (depth || 0) > 3) return;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'revision' && Number(x) > lastRevision) lastRevision = Number(x);
      else if (x && typeof x === 'object' && !Array.isArray(x)) noteRevision(x, (depth || 0) + 1);
    }
  }
  const GET = (p) => api('GET', p);
  const POST = (p, b) => api('POST', p, b === undefined ? {} : b);
  const DEL = (p) => api('DELETE', p);
  const PATCH = (p, b, mask) => api('PATCH', p + (mask && mask.length ? '?update_mask=' + enc(mask.join(',')) : ''), b);

  async function listAll(path, key) {
    let out = [], token = '';
    for (let i = 0; i < 50; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const r = await GET(`${path}${sep}page_size=1000${token ? '&page_token=' + enc(token) : ''}`);
      out = out.concat(r[key] || []);
      token = r.next_page_token;
      if (!token) break;
    }
    return out;
  }

  // ---------- errors next to fields ----------
  function clearErrors(form) {
    for (const e of form.querySelectorAll('.field-error')) e.remove();
    for (const e of form.querySelectorAll('[aria-invalid]')) { e.removeAttribute('aria-invalid'); e.removeAttribute('aria-describedby'); }
    for (const e of form.querySelectorAll('.alert')) e.remove();
  }
  function findField(form, path) {
    const parts = path.replace(/\[\d+\]/g, '').split('.');
    for (let i = 0; i < parts.length; i++) {
      const name = parts.slice(i).join('.');
      const el = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
      if (el) return el;
    }
    for (let i = parts.length - 1; i > 0; i--) {
      const el = form.querySelector(`[data-field="${CSS.escape(parts[i])}"]`);
      if (el) return el;
    }
    return null;
  }
  function showError(where, err, onReload) {
    if (err && err.handled) return;
    if (where.tagName === 'FORM') clearErrors(where);
    const box = h('div', { class: 'alert', role: 'alert' });
    if (err instanceof ApiError && err.conflict) {
      box.append('Changed by someone else — reload to see the current values.');
      box.append(h('button', { type: 'button', onclick: () => (onReload || render)() }, 'Reload'));
    } else {
      const rest = [];
      for (const v of (err instanceof ApiError ? err.violations : [])) {
        const input = where.tagName === 'FORM' ? findField(where, v.field) : null;
        if (!input) { rest.push(`${v.field}: ${v.description}`); continue; }
        const id = nextID('err');
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', id);
        input.insertAdjacentElement('afterend', h('span', { class: 'field-error', id }, v.description));
      }
      if (err instanceof ApiError && err.violations.length && !rest.length) {
        const first = where.querySelector('[aria-invalid="true"]');
        if (first) first.focus();
        return;
      }
      box.append(err instanceof ApiError && err.code === 7 ? 'Not allowed: ' : '', (err && err.message) || String(err));
      for (const r of rest) box.append(h('div', {}, r));
    }
    where.prepend(box);
    box.setAttribute('tabindex', '-1');
    box.focus();
  }
  // submit wires a form: handler runs with the form, errors land in it.
  function onSubmit(form, handler) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const btn = form.querySelector('button[type=submit]');
      if (btn) btn.disabled = true;
      try { await handler(form); } catch (err) { showError(form, err); } finally { if (btn) btn.disabled = false; }
    });
    return form;
  }
  const val = (form, name) => { const el = form.elements[name]; return el ? (el.type === 'checkbox' ? el.checked : el.value.trim()) : undefined; };

  // ---------- constants ----------
  const SWITCHES = [
    ['agent_click_restricted', false, 'Agent may not click or scroll'],
    ['agent_input_restricted', false, 'Agent may not type into inputs'],
    ['clipboard_agent', true, 'Clipboard (copy & paste) for the agent'],
    ['clipboard_customer', true, 'Clipboard (copy & paste) for the customer'],
    ['video_agent', false, 'Video (webcam) for the agent'],
    ['video_customer', false, 'Video (webcam) for the customer'],
    ['voice_chat', false, 'Voice chat (VoIP)'],
    ['session_recording', false, 'Record every co-browse session'],
    ['document_share_agent', false, 'Agent may share documents'],
    ['document_share_customer', false, 'Customer may share documents'],
    ['document_download', false, 'Participants may download shared documents'],
    ['chat', false, 'In-session chat'],
    ['display_agent_name', false, "Show the agent's real name (else the alias)"],
    ['show_disclaimer', true, 'Show the disclaimer before the session starts'],
    ['language_selector', false, 'Customer may pick the language'],
  ];
  const FUNCTIONS = [
    'customer_screen_sharing', 'rep_screen_sharing', 'record_customer_screen', 'record_rep_screen',
    'send_files', 'receive_files', 'run_as_service', 'start_as_service', 'uninstall_service_on_end',
    'chat_receipt_sound', 'annotations', 'invite_external_specialist',
  ];
  const fnLabel = (f) => f.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  const LANGUAGES = [['en', 'English'], ['fr', 'Français'], ['it', 'Italiano'], ['de', 'Deutsch'], ['es', 'Español'], ['pt', 'Português'], ['nl', 'Nederlands']];
  const FEATURES = ['NAVIGATE', 'CLICK', 'SCROLL', 'TYPE', 'VIEW_ELEMENT', 'CLIPBOARD', 'VIDEO', 'VOICE_CHAT', 'RECORDING',
    'DOCUMENT_SHARE', 'DOCUMENT_DOWNLOAD', 'CHAT'].concat(FUNCTIONS.map((f) => f.toUpperCase()));
  const DAYS = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];
  const shortEnum = (v, prefix) => String(v || '').replace(prefix, '');

  // ---------- router ----------
  const ACCOUNT_PAGES = [
    ['liveguide', 'Live Guide', pageLiveGuide],
    ['allowlist', 'Allowlist', pageAllowlist],
    ['privacy', 'Privacy rules', pagePrivacy],
    ['customization', 'Customization', pageCustomization],
    ['portals', 'Portals', pagePortals],
    ['teams', 'Teams', pageTeams],
    ['representatives', 'Representatives', pageRepresentatives],
    ['hours', 'Business hours', pageHours],
    ['sessions', 'Sessions', pageSessions],
    ['notifications', 'Notifications', pageNotifications],
    ['audit', 'Audit log', pageAudit],
    ['explorer', 'Decision explorer', pageExplorer],
  ];
  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const [path, query] = raw.split('?');
    return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || '') };
  }
  let renderSeq = 0;
  // focusKey names the focused control by its record (data-id) and field,
  // so that a page rebuilt after a save gives the focus back to it: a
  // keyboard user stays where they were.
  function focusKey() {
    const el = document.activeElement;
    if (!el || !el.name || !document.getElementById('main').contains(el)) return null;
    const rec = el.closest('[data-id]');
    return { id: rec ? rec.dataset.id : '', name: el.name, form: el.form ? el.form.id : '' };
  }
  function restoreFocus(key) {
    if (!key) return;
    let scope = document.getElementById('main');
    if (key.id) scope = scope.querySelector(`[data-id="${CSS.escape(key.id)}"]`);
    else if (key.form) scope = document.getElementById(key.form);
    const el = scope && scope.querySelector(`[name="${CSS.escape(key.name)}"]`);
    if (el) el.focus();
  }
  async function render() {
    const seq = ++renderSeq;
    const kept = focusKey();
    const { parts, query } = parseHash();
    const main = document.getElementById('main');
    const accountNav = document.getElementById('account-nav');
    const label = document.getElementById('account-label');
    renderGlobalNav();
    main.removeAttribute('data-rendered');
    main.replaceChildren();
    accountNav.replaceChildren();
    label.textContent = '';
    let page = pageAccounts, args = [];
    if (parts[0] === 'credentials') page = pageCredentials;
    else if (parts[0] === 'a' && parts[1]) {
      const acct = parts[1];
      const which = ACCOUNT_PAGES.find((p) => p[0] === parts[2]) || ACCOUNT_PAGES[0];
      label.textContent = 'Account: ' + acct;
      for (const [key, title] of ACCOUNT_PAGES) {
        accountNav.append(h('a', { href: `#/a/${enc(acct)}/${key}`, 'aria-current': key === which[0] ? 'page' : null }, title));
      }
      page = which[2];
      args = [acct];
    }
    try {
      await page(main, ...args, query, () => seq === renderSeq);
    } catch (err) {
      if (seq === renderSeq) showError(main, err);
    }
    if (seq !== renderSeq) return;
    const focus = query.get('focus');
    if (focus) {
      const el = document.querySelector(`[data-id="${CSS.escape(focus)}"]`);
      if (el) { el.scrollIntoView(); el.setAttribute('tabindex', '-1'); el.focus(); el.classList.add('focused'); }
    } else {
      restoreFocus(kept);
    }
    // data-rendered names the route once its page is complete (tests wait
    // for it).
    main.setAttribute('data-rendered', location.hash);
  }
  function renderGlobalNav() {
    const nav = document.getElementById('global-nav');
    nav.replaceChildren(
      h('a', { href: '#/' }, 'Accounts'),
      h('a', { href: '#/credentials' }, 'Credentials'),
      h('button', { type: 'button', id: 'signout', onclick: signOut }, 'Sign out'));
  }
  async function signOut() {
    try { await api('POST', '/console/signout', {}); } catch (e) { /* signed out anyway */ }
    location.hash = '#/';
    signInPage('Signed out.');
  }
  function signInPage(message) {
    const main = document.getElementById('main');
    document.getElementById('account-nav').replaceChildren();
    renderSeq++;
    const form = h('form', { class: 'card', id: 'signin-form' },
      h('h1', {}, 'Sign in'),
      h('p', {}, 'This Gatehouse requires a caller token. Paste one (it reads gh_k-…); it is kept in an HttpOnly cookie for this browser session only.'),
      message ? h('p', { class: 'muted' }, message) : null,
      field('Caller token', 'token', { type: 'password', autocomplete: 'off', size: 60, required: true }),
      h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
    onSubmit(form, async () => {
      await api('POST', '/console/signin', { token: val(form, 'token') });
      render();
    });
    main.replaceChildren(form);
    form.elements.token.focus();
  }

  // ---------- accounts ----------
  async function pageAccounts(main) {
    main.append(h('h1', {}, 'Accounts'));
    const open = onSubmit(h('form', { class: 'card row', id: 'open-account' },
      field('Open account by id', 'id', { required: true }),
      h('button', { type: 'submit', class: 'primary' }, 'Open')),
    async (f) => { location.hash = `#/a/${enc(val(f, 'id'))}/liveguide`; });
    main.append(open);
    const list = h('div', {});
    main.append(list);
    try {
      const accounts = await listAll('/v1/accounts', 'accounts');
      list.append(h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Name'), h('th', {}, 'Co-browse URL'), h('th', {}, ''))),
        h('tbody', {}, accounts.map((a) => h('tr', { 'data-id': a.id },
          h('td', {}, h('a', { href: `#/a/${enc(a.id)}/liveguide` }, a.id)),
          h('td', {}, a.display_name || ''), h('td', {}, a.cobrowse_url || ''),
          h('td', {}, h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
            if (!confirmAction(`Delete account ${a.id} and everything it owns?`)) return;
            try { await DEL(`/v1/accounts/${enc(a.id)}?etag=${enc(a.etag || '')}`); toast('Account deleted'); render(); } catch (err) { showError(list, err); }
          } }, 'Delete')))))));
    } catch (err) {
      if (err.code === 7) list.append(h('p', { class: 'muted' }, 'Your credential is scoped to one account: open it by id above.'));
      else throw err;
    }
    const create = onSubmit(h('form', { class: 'card', id: 'create-account' }, h('h2', {}, 'New account (operators)'),
      h('div', { class: 'row' }, field('Id', 'id', { placeholder: 'generated when empty' }), field('Display name', 'display_name', { required: true }),
        h('button', { type: 'submit', class: 'primary' }, 'Create'))),
    async (f) => {
      const r = await POST('/v1/accounts', { id: val(f, 'id'), display_name: val(f, 'display_name') });
      location.hash = `#/a/${enc(r.account.id)}/liveguide`;
    });
    main.append(create);
  }

  // ---------- Live Guide switches, start URL, co-browse URL ----------
  async function pageLiveGuide(main, acct) {
    main.append(h('h1', {}, 'Live Guide'));
    const base = `/v1/accounts/${enc(acct)}`;
    const [{ settings }, { account }] = await Promise.all([GET(`${base}/liveGuideSettings`), GET(base)]);
    const form = h('form', { class: 'card', id: 'liveguide-form' },
      h('h2', {}, 'Switches'),
      h('p', { class: 'muted' }, 'Defaults are shown next to each switch; a switch that differs from its default is marked.'),
      SWITCHES.map(([name, def, text]) => {
        const cur = !!settings[name];
        return h('div', { 'data-id': name }, check(text, name, cur,
          h('span', { class: cur === def ? 'default' : 'changed' }, ` (default: ${def ? 'on' : 'off'}${cur === def ? '' : '; changed'})`)));
      }),
      h('h2', {}, 'Session start URL'),
      h('div', { 'data-id': 'session_start_url' }, field('Page opened at session start (must be allowlisted when the allowlist is not empty)', 'session_start_url', { value: settings.session_start_url || '', size: 60 })),
      h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Save'), h('span', { class: 'muted' }, ` revision ${settings.revision || 0}`)));
    onSubmit(form, async (f) => {
      const body = { account_id: acct, etag: settings.etag };
      const mask = [];
      for (const [name] of SWITCHES) if (val(f, name) !== !!settings[name]) { body[name] = val(f, name); mask.push(name); }
      if (val(f, 'session_start_url') !== (settings.session_start_url || '')) { body.session_start_url = val(f, 'session_start_url'); mask.push('session_start_url'); }
      if (!mask.length) { toast('Nothing changed'); return; }
      await PATCH(`${base}/liveGuideSettings`, body, mask);
      toast('Saved');
      render();
    });
    main.append(form);

    const cob = h('section', { class: 'card', id: 'cobrowse' }, h('h2', {}, 'Co-browse URL'));
    if (account.cobrowse_url) {
      cob.append(h('p', {}, h('code', { id: 'cobrowse-url' }, account.cobrowse_url)));
      const set = onSubmit(h('form', { class: 'row', id: 'set-cobrowse' },
        field('Change (operators only)', 'url', { value: account.cobrowse_url, size: 50 }),
        h('button', { type: 'submit' }, 'Change')),
      async (f) => {
        if (!confirmAction(`Change the co-browse URL to ${val(f, 'url')}? Links customers have stop working.`)) return;
        await POST(`${base}:setCobrowseUrl`, { url: val(f, 'url') }); toast('Co-browse URL changed'); render();
      });
      cob.append(set);
    } else {
      cob.append(h('p', {}, 'No co-browse URL yet. It is generated once and then only an operator can change it.'),
        h('button', { type: 'button', id: 'generate-cobrowse', onclick: async () => {
          try { await POST(`${base}:generateCobrowseUrl`, {}); render(); } catch (err) { showError(cob, err); }
        } }, 'Generate co-browse URL'));
    }
    main.append(cob);
  }

  // ---------- allowlist with live tester ----------
  async function pageAllowlist(main, acct) {
    main.append(h('h1', {}, 'Allowlist'));
    const base = `/v1/accounts/${enc(acct)}/allowlist`;
    const entries = await listAll(base, 'entries');
    let lastRev = 0;
    for (const e of entries) lastRev = Math.max(lastRev, Number(e.revision || 0));

    const out = h('div', { class: 'result', id: 'tester-result', 'aria-live': 'polite' }, 'Type a URL to test it.');
    const input = h('input', { type: 'text', id: 'tester-url', size: 60, placeholder: 'https://www.example.com/page', 'aria-describedby': 'tester-result' });
    let timer = 0, seq = 0;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const my = ++seq;
        const url = input.value.trim();
        if (!url) { out.replaceChildren('Type a URL to test it.'); return; }
        try {
          const r = await GET(`${base}:test?url=${enc(url)}&min_revision=${Math.max(lastRev, lastRevision)}`);
          if (my !== seq) return;
          out.replaceChildren(
            h('span', { class: r.allowed ? 'ok' : 'bad', id: 'tester-verdict' }, r.allowed ? 'Allowed' : 'Denied'), ' — ',
            h('span', { id: 'tester-reason' }, shortEnum(r.reason, 'REASON_')), ': ', r.message || '',
            r.entry_id ? h('div', {}, 'Matching entry: ', h('a', { href: `#/a/${enc(acct)}/allowlist?focus=${enc(r.entry_id)}`, id: 'tester-entry' }, r.entry_id)) : null,
            r.allowed && !r.entry_id ? h('div', { class: 'muted' }, 'The allowlist is empty: every http(s) page may be co-browsed.') : null,
            r.normalized_url ? h('div', { class: 'muted' }, 'Parsed as ', r.normalized_url) : null);
        } catch (err) {
          if (my === seq) { out.replaceChildren(); showError(out, err); }
        }
      }, 200);
    });
    main.append(h('section', { class: 'card' }, h('h2', {}, 'Test a URL'),
      h('label', { for: 'tester-url' }, 'URL '), input, out));

    main.append(h('p', { class: 'muted' }, entries.length
      ? 'Only top-level pages matching an entry may be co-browsed. A pattern matches its host and every subdomain; *.host only subdomains; a path is a prefix.'
      : 'The allowlist is empty: every http(s) page may be co-browsed.'));
    const table = h('table', { id: 'allowlist-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Pattern'), h('th', {}, 'Description'), h('th', {}, ''))),
      h('tbody', {}, entries.map((e) => entryRow(e))));
    function entryRow(e) {
      const tr = h('tr', { 'data-id': e.id }, h('td', {}, e.id), h('td', {}, h('code', {}, e.pattern)), h('td', { class: 'desc' }, e.description || ''),
        h('td', {},
          h('button', { type: 'button', onclick: () => tr.replaceWith(editRow(e)) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!confirmAction(`Delete allowlist entry ${e.id} (${e.pattern})?`)) return;
            try { await DEL(`${base}/${enc(e.id)}?etag=${enc(e.etag)}`); toast('Deleted'); render(); } catch (err) { showError(main, err); }
          } }, 'Delete')));
      return tr;
    }
    function editRow(e) {
      const form = onSubmit(h('form', { class: 'row' }, field('Pattern', 'pattern', { value: e.pattern }), field('Description', 'description', { value: e.description || '' }),
        h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: render }, 'Cancel')),
      async (f) => {
        await PATCH(`${base}/${enc(e.id)}`, { id: e.id, etag: e.etag, pattern: val(f, 'pattern'), description: val(f, 'description') }, ['pattern', 'description']);
        toast('Saved'); render();
      });
      return h('tr', { 'data-id': e.id }, h('td', {}, e.id), h('td', { colspan: 3 }, form));
    }
    main.append(table);
    main.append(onSubmit(h('form', { class: 'card', id: 'add-entry' }, h('h2', {}, 'Add an entry'),
      h('div', { class: 'row' }, field('Pattern', 'pattern', { required: true, placeholder: 'example.com/help/' }), field('Description', 'description', { size: 40 }),
        field('Id', 'id', { placeholder: 'generated when empty' }), h('button', { type: 'submit', class: 'primary' }, 'Add'))),
    async (f) => {
      await POST(base, { id: val(f, 'id'), pattern: val(f, 'pattern'), description: val(f, 'description') });
      toast('Added'); render();
    }));
  }

  // ---------- privacy rules ----------
  async function pagePrivacy(main, acct) {
    main.append(h('h1', {}, 'Privacy rules'));
    const base = `/v1/accounts/${enc(acct)}/privacyRules`;
    const rules = await listAll(base, 'rules');
    main.append(h('p', { class: 'muted' }, 'Button blocking: the agent may not click matching elements. Data masking: matching elements are hidden from the agent. Selectors that need document state (:hover, :nth-child, sibling combinators) are refused.'));
    const kinds = [['PRIVACY_RULE_KIND_BUTTON_BLOCK', 'Button blocking'], ['PRIVACY_RULE_KIND_DATA_MASK', 'Data masking']];
    const row = (r) => {
      const tr = h('tr', { 'data-id': r.id }, h('td', {}, r.id), h('td', {}, (kinds.find((k) => k[0] === r.kind) || [0, r.kind])[1]),
        h('td', {}, h('code', {}, r.selector)), h('td', {}, r.url_pattern || h('span', { class: 'muted' }, 'every page')), h('td', { class: 'desc' }, r.description || ''),
        h('td', {}, h('button', { type: 'button', onclick: () => tr.replaceWith(edit(r)) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!confirmAction(`Delete privacy rule ${r.id}?`)) return;
            try { await DEL(`${base}/${enc(r.id)}?etag=${enc(r.etag)}`); render(); } catch (err) { showError(main, err); }
          } }, 'Delete')));
      return tr;
    };
    const ruleFields = (r) => [select('Kind', 'kind', kinds, r.kind || kinds[0][0]),
      field('CSS selector', 'selector', { value: r.selector || '', required: true, size: 30 }),
      field('URL pattern (empty: every page)', 'url_pattern', { value: r.url_pattern || '' }),
      field('Description', 'description', { value: r.description || '', size: 30 })];
    const edit = (r) => h('tr', { 'data-id': r.id }, h('td', {}, r.id), h('td', { colspan: 5 }, onSubmit(h('form', { class: 'row' }, ruleFields(r),
      h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: render }, 'Cancel')),
    async (f) => {
      await PATCH(`${base}/${enc(r.id)}`, { id: r.id, etag: r.etag, kind: val(f, 'kind'), selector: val(f, 'selector'), url_pattern: val(f, 'url_pattern'), description: val(f, 'description') },
        ['kind', 'selector', 'url_pattern', 'description']);
      toast('Saved'); render();
    })));
    main.append(h('table', { id: 'privacy-table' }, h('thead', {}, h('tr', {}, ['Id', 'Kind', 'Selector', 'Pages', 'Description', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, rules.map(row))));
    main.append(onSubmit(h('form', { class: 'card', id: 'add-rule' }, h('h2', {}, 'Add a rule'),
      h('div', { class: 'row' }, ruleFields({}), field('Id', 'id', { placeholder: 'generated when empty' }), h('button', { type: 'submit', class: 'primary' }, 'Add'))),
    async (f) => {
      await POST(base, { id: val(f, 'id'), kind: val(f, 'kind'), selector: val(f, 'selector'), url_pattern: val(f, 'url_pattern'), description: val(f, 'description') });
      toast('Added'); render();
    }));
  }

  // ---------- customization ----------
  async function pageCustomization(main, acct, query) {
    const lang = LANGUAGES.some((l) => l[0] === query.get('lang')) ? query.get('lang') : 'en';
    main.append(h('h1', {}, 'Customization'));
    main.append(h('div', { class: 'langs', role: 'group', 'aria-label': 'Language' }, LANGUAGES.map(([code, name]) =>
      h('button', { type: 'button', 'aria-pressed': code === lang ? 'true' : 'false', onclick: () => { location.hash = `#/a/${enc(acct)}/customization?lang=${code}`; } }, `${name} (${code})`))));
    const path = `/v1/accounts/${enc(acct)}/customizations/${lang}`;
    const { customization: c } = await GET(path);
    const form = onSubmit(h('form', { class: 'card', id: 'customization-form' },
      h('p', { class: 'muted' }, `Texts for ${lang}. Built-in defaults are shown until changed.`),
      field('Disclaimer text', 'disclaimer_text', { textarea: true, value: c.disclaimer_text || '', rows: 4, cols: 70 }),
      h('div', { class: 'row' }, field('Agent alias', 'agent_alias', { value: c.agent_alias || '' }), field('Customer alias', 'customer_alias', { value: c.customer_alias || '' })),
      h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Save'))),
    async (f) => {
      const mask = ['disclaimer_text', 'agent_alias', 'customer_alias'];
      const body = { account_id: acct, language: lang, etag: c.etag };
      for (const m of mask) body[m] = val(f, m);
      await PATCH(path, body, mask);
      toast('Saved'); render();
    });
    main.append(form);
  }

  // ---------- portals, teams, representatives ----------
  async function loadStructure(acct) {
    const base = `/v1/accounts/${enc(acct)}`;
    const [portals, teams, reps, hours] = await Promise.all([
      listAll(`${base}/portals`, 'portals'), listAll(`${base}/teams`, 'teams'),
      listAll(`${base}/representatives`, 'representatives'), listAll(`${base}/businessHours`, 'business_hours')]);
    const portalByID = new Map(portals.map((p) => [p.id, p]));
    const teamByID = new Map(teams.map((t) => [t.id, t]));
    // chain returns a portal and its ancestors, nearest first.
    const chain = (id) => {
      const out = [];
      for (let p = portalByID.get(id); p && out.length < 64; p = portalByID.get(p.parent_id)) out.push(p);
      return out;
    };
    // offAt returns the top-most portal of the chain that turns fn off.
    const offAt = (id, fn) => {
      let top = null;
      for (const p of chain(id)) if (!(p.functions || {})[fn]) top = p;
      return top;
    };
    const teamPortal = (id) => {
      for (let t = teamByID.get(id), n = 0; t && n < 64; t = teamByID.get(t.parent_id), n++) if (t.portal_id) return t.portal_id;
      return '';
    };
    return { base, portals, teams, reps, hours, portalByID, teamByID, chain, offAt, teamPortal };
  }
  function tree(items, render1) {
    const kids = new Map();
    const ids = new Set(items.map((i) => i.id));
    for (const i of items) {
      const p = ids.has(i.parent_id) ? i.parent_id : '';
      if (!kids.has(p)) kids.set(p, []);
      kids.get(p).push(i);
    }
    // Nested lists: every control is reached with Tab in document order.
    const build = (parent, depth) => h('ul', depth ? {} : { class: 'tree' },
      (kids.get(parent) || []).map((i) => h('li', {}, render1(i, depth), kids.has(i.id) ? build(i.id, depth + 1) : null)));
    return build('', 0);
  }
  const portalName = (p) => p ? `${p.name || p.id} (${p.id})` : '';

  async function pagePortals(main, acct) {
    main.append(h('h1', {}, 'Portals'));
    const s = await loadStructure(acct);
    main.append(h('p', { class: 'muted' }, 'A function is on for a representative only when it is on for the subportal, every portal above it, and the representative. Turning one off here turns it off for everyone below at once.'));
    const node = (p) => {
      const box = h('div', { class: 'node', 'data-id': p.id },
        h('strong', {}, p.name || p.id), ' ', h('span', { class: 'muted' }, p.id), p.parent_id ? null : h('span', { class: 'muted' }, ' — top portal'),
        p.business_hours_id ? h('span', { class: 'muted' }, ` — hours: ${p.business_hours_id}`) : null,
        p.notification_email ? h('span', { class: 'muted' }, ` — notifies ${p.notification_email}`) : null, ' ',
        h('button', { type: 'button', onclick: () => box.replaceWith(editPortal(p)) }, 'Edit'), ' ',
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`Delete portal ${p.id}?`)) return;
          try { await DEL(`${s.base}/portals/${enc(p.id)}?etag=${enc(p.etag)}`); render(); } catch (err) { showError(box, err); }
        } }, 'Delete'));
      const funcs = h('div', { class: 'funcs', role: 'group', 'aria-label': `Functions of ${p.name || p.id}` });
      for (const fn of FUNCTIONS) {
        const above = s.offAt(p.parent_id, fn);
        const c = check(fnLabel(fn), fn, !!(p.functions || {})[fn],
          above ? h('span', { class: 'off-above', 'data-off-at': above.id }, ` off at ${portalName(above)}`) : null);
        const input = c.querySelector('input');
        input.addEventListener('change', async () => {
          input.setAttribute("aria-busy", "true");
          try {
            await PATCH(`${s.base}/portals/${enc(p.id)}`, { id: p.id, etag: p.etag, functions: { [fn]: input.checked } }, ['functions.' + fn]);
            toast(`${fnLabel(fn)} ${input.checked ? 'on' : 'off'} at ${p.name || p.id}`);
            render();
          } catch (err) { input.checked = !input.checked; input.removeAttribute("aria-busy"); showError(box, err); }
        });
        funcs.append(c);
      }
      box.append(funcs);
      return box;
    };
    const portalFields = (p) => [field('Name', 'name', { value: p.name || '', required: true }),
      field('Notification e-mail', 'notification_email', { value: p.notification_email || '' }),
      select('Business hours', 'business_hours_id', [['', '(none: always open)']].concat(s.hours.map((x) => [x.id, x.name || x.id])), p.business_hours_id || '')];
    const editPortal = (p) => onSubmit(h('form', { class: 'node row', 'data-id': p.id }, portalFields(p),
      h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: render }, 'Cancel')),
    async (f) => {
      await PATCH(`${s.base}/portals/${enc(p.id)}`, { id: p.id, etag: p.etag, name: val(f, 'name'), notification_email: val(f, 'notification_email'), business_hours_id: val(f, 'business_hours_id') },
        ['name', 'notification_email', 'business_hours_id']);
      toast('Saved'); render();
    });
    main.append(h('div', { id: 'portal-tree' }, s.portals.length ? tree(s.portals, node) : h('p', {}, 'No portals yet.')));
    main.append(onSubmit(h('form', { class: 'card', id: 'add-portal' }, h('h2', {}, 'Add a portal'),
      h('p', { class: 'muted' }, 'A top portal gets a default subportal; new portals start with every function off.'),
      h('div', { class: 'row' }, field('Id', 'id', { placeholder: 'generated when empty' }), portalFields({}),
        select('Parent', 'parent_id', [['', '(none: top portal)']].concat(s.portals.map((p) => [p.id, portalName(p)])), ''),
        h('button', { type: 'submit', class: 'primary' }, 'Add'))),
    async (f) => {
      await POST(`${s.base}/portals`, { id: val(f, 'id'), name: val(f, 'name'), parent_id: val(f, 'parent_id'), notification_email: val(f, 'notification_email'), business_hours_id: val(f, 'business_hours_id') });
      toast('Added'); render();
    }));
  }

  async function pageTeams(main, acct) {
    main.append(h('h1', {}, 'Teams'));
    const s = await loadStructure(acct);
    main.append(h('p', { class: 'muted' }, 'A subteam without a portal of its own serves its parent team\'s portal.'));
    const portalOpts = [['', '(inherit from the parent team)']].concat(s.portals.map((p) => [p.id, portalName(p)]));
    const node = (t) => {
      const served = s.teamPortal(t.id);
      const box = h('div', { class: 'node', 'data-id': t.id }, h('strong', {}, t.name || t.id), ' ', h('span', { class: 'muted' }, t.id), ' — ',
        served ? ['serves ', portalName(s.portalByID.get(served)) || served, t.portal_id ? '' : ' (inherited)'] : h('span', { class: 'muted' }, 'no portal'), ' ',
        h('button', { type: 'button', onclick: () => box.replaceWith(edit(t)) }, 'Edit'), ' ',
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`Delete team ${t.id}?`)) return;
          try { await DEL(`${s.base}/teams/${enc(t.id)}?etag=${enc(t.etag)}`); render(); } catch (err) { showError(box, err); }
        } }, 'Delete'));
      return box;
    };
    const edit = (t) => onSubmit(h('form', { class: 'node row', 'data-id': t.id }, field('Name', 'name', { value: t.name || '' }), select('Portal', 'portal_id', portalOpts, t.portal_id || ''),
      h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: render }, 'Cancel')),
    async (f) => {
      await PATCH(`${s.base}/teams/${enc(t.id)}`, { id: t.id, etag: t.etag, name: val(f, 'name'), portal_id: val(f, 'portal_id') }, ['name', 'portal_id']);
      render();
    });
    main.append(h('div', { id: 'team-tree' }, s.teams.length ? tree(s.teams, node) : h('p', {}, 'No teams yet.')));
    main.append(onSubmit(h('form', { class: 'card', id: 'add-team' }, h('h2', {}, 'Add a team'),
      h('div', { class: 'row' }, field('Id', 'id', { placeholder: 'generated when empty' }), field('Name', 'name', { required: true }),
        select('Parent team', 'parent_id', [['', '(none)']].concat(s.teams.map((t) => [t.id, `${t.name || t.id} (${t.id})`])), ''),
        select('Portal', 'portal_id', portalOpts, ''), h('button', { type: 'submit', class: 'primary' }, 'Add'))),
    async (f) => {
      await POST(`${s.base}/teams`, { id: val(f, 'id'), name: val(f, 'name'), parent_id: val(f, 'parent_id'), portal_id: val(f, 'portal_id') });
      render();
    }));
  }

  async function pageRepresentatives(main, acct) {
    main.append(h('h1', {}, 'Representatives'));
    const s = await loadStructure(acct);
    main.append(h('p', { class: 'muted' }, 'Effective functions: on only when on for the representative and for every portal of the chain its team serves; each one that is off names the level that turns it off.'));
    const teamOpts = [['', '(no team)']].concat(s.teams.map((t) => [t.id, `${t.name || t.id} (${t.id})`]));
    for (const r of s.reps) {
      const portalID = r.team_id ? s.teamPortal(r.team_id) : '';
      const own = r.functions || {};
      const card = h('section', { class: 'card', 'data-id': r.id },
        h('h2', {}, r.display_name || r.id, ' ', h('span', { class: 'muted' }, r.id)),
        h('p', {}, 'Team: ', r.team_id || 'none', ' — portal: ', portalID ? portalName(s.portalByID.get(portalID)) || portalID : 'none'));
      const settings = onSubmit(h('form', { class: 'row' },
        field('Display name', 'display_name', { value: r.display_name || '' }), select('Team', 'team_id', teamOpts, r.team_id || ''),
        check('Enabled for Live Guide', 'live_guide_enabled', !!r.live_guide_enabled),
        h('button', { type: 'submit' }, 'Save'),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`Delete representative ${r.id}?`)) return;
          try { await DEL(`${s.base}/representatives/${enc(r.id)}?etag=${enc(r.etag)}`); render(); } catch (err) { showError(card, err); }
        } }, 'Delete')),
      async (f) => {
        await PATCH(`${s.base}/representatives/${enc(r.id)}`, { id: r.id, etag: r.etag, display_name: val(f, 'display_name'), team_id: val(f, 'team_id'), live_guide_enabled: val(f, 'live_guide_enabled') },
          ['display_name', 'team_id', 'live_guide_enabled']);
        render();
      });
      card.append(settings);
      const table = h('table', { class: 'effective' }, h('thead', {}, h('tr', {}, h('th', {}, 'Function'), h('th', {}, 'Representative'), h('th', {}, 'Effective'))));
      const body = h('tbody', {});
      for (const fn of FUNCTIONS) {
        const top = portalID ? s.offAt(portalID, fn) : null;
        let eff;
        if (!portalID) eff = h('span', { class: 'eff-off' }, 'off — no portal (the team chain serves none)');
        else if (top) eff = h('span', { class: 'eff-off', 'data-off-at': top.id }, `off — turned off at portal ${portalName(top)}`);
        else if (!own[fn]) eff = h('span', { class: 'eff-off', 'data-off-at': 'representative' }, 'off — turned off for the representative');
        else eff = h('span', { class: 'eff-on' }, 'on');
        const c = check(fnLabel(fn), fn, !!own[fn]);
        const input = c.querySelector('input');
        input.addEventListener('change', async () => {
          input.setAttribute("aria-busy", "true");
          try {
            await PATCH(`${s.base}/representatives/${enc(r.id)}`, { id: r.id, etag: r.etag, functions: { [fn]: input.checked } }, ['functions.' + fn]);
            render();
          } catch (err) { input.checked = !input.checked; input.removeAttribute("aria-busy"); showError(card, err); }
        });
        body.append(h('tr', { 'data-function': fn }, h('td', {}, fnLabel(fn)), h('td', {}, c), h('td', {}, eff)));
      }
      table.append(body);
      card.append(table);
      main.append(card);
    }
    if (!s.reps.length) main.append(h('p', {}, 'No representatives yet.'));
    main.append(onSubmit(h('form', { class: 'card', id: 'add-rep' }, h('h2', {}, 'Add a representative'),
      h('div', { class: 'row' }, field('Id', 'id', { placeholder: 'generated when empty' }), field('Display name', 'display_name', { required: true }),
        select('Team', 'team_id', teamOpts, ''), check('Enabled for Live Guide', 'live_guide_enabled', false),
        h('button', { type: 'submit', class: 'primary' }, 'Add'))),
    async (f) => {
      await POST(`${s.base}/representatives`, { id: val(f, 'id'), display_name: val(f, 'display_name'), team_id: val(f, 'team_id'), live_guide_enabled: val(f, 'live_guide_enabled') });
      render();
    }));
  }

  // ---------- business hours ----------
  const DAY_ABBR = { MON: 'MONDAY', TUE: 'TUESDAY', WED: 'WEDNESDAY', THU: 'THURSDAY', FRI: 'FRIDAY', SAT: 'SATURDAY', SUN: 'SUNDAY' };
  function weeklyText(w) { return (w || []).map((x) => `${shortEnum(x.day, 'WEEKDAY_').slice(0, 3)} ${x.start}-${x.end}`).join('\n'); }
  function holidaysText(hs) { return (hs || []).map((x) => `${x.date} ${x.closed ? 'closed' : `${x.start}-${x.end}`} ${x.name || ''}`.trim()).join('\n'); }
  function parseWeekly(text) {
    return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
      const m = l.match(/^(\w+)\s+(\S+?)\s*-\s*(\S+)$/);
      if (!m) return { day: 'WEEKDAY_UNSPECIFIED', start: l, end: '' };
      const d = m[1].toUpperCase();
      const day = DAY_ABBR[d.slice(0, 3)] && DAYS.some((x) => x.startsWith(d)) ? DAY_ABBR[d.slice(0, 3)] : d;
      return { day: 'WEEKDAY_' + day, start: m[2], end: m[3] };
    });
  }
  function parseHolidays(text) {
    return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
      const m = l.match(/^(\S+)\s+(closed|(\S+?)\s*-\s*(\S+))\s*(.*)$/i);
      if (!m) return { date: l, closed: true };
      return m[2].toLowerCase() === 'closed' ? { date: m[1], closed: true, name: m[5] } : { date: m[1], closed: false, start: m[3], end: m[4], name: m[5] };
    });
  }
  async function pageHours(main, acct) {
    main.append(h('h1', {}, 'Business hours'));
    const base = `/v1/accounts/${enc(acct)}/businessHours`;
    const sets = await listAll(base, 'business_hours');
    const form = (x, onSave) => onSubmit(h('form', { class: 'card' },
      h('div', { class: 'row' }, x.id ? null : field('Id', 'id', { placeholder: 'generated when empty' }),
        field('Name', 'name', { value: x.name || '', required: true }), field('Time zone (IANA)', 'time_zone', { value: x.time_zone || 'UTC', required: true })),
      h('div', { class: 'row' },
        field('Weekly windows, one a line: "MON 09:00-17:00" (end before start crosses midnight; 24:00 allowed)', 'weekly', { textarea: true, value: weeklyText(x.weekly), rows: 7 }),
        field('Holidays and events: "2026-12-24 closed Christmas Eve" or "2026-12-31 10:00-14:00 New Year\'s Eve"', 'holidays', { textarea: true, value: holidaysText(x.holidays), rows: 7 })),
      h('button', { type: 'submit', class: 'primary' }, x.id ? 'Save' : 'Add')), onSave);
    for (const x of sets) {
      const status = h('p', { class: 'hours-status', 'aria-live': 'polite' }, 'Checking…');
      const card = h('section', { class: 'card', 'data-id': x.id }, h('h2', {}, x.name || x.id, ' ', h('span', { class: 'muted' }, `${x.id} — ${x.time_zone}`)), status);
      GET(`${base}/${enc(x.id)}:status`).then((st) => {
        const next = st.next_open_time ? [' Next opening: ', h('strong', { class: 'next-open' }, fmtTime(st.next_open_time, st.time_zone)), ` (your time: ${fmtTime(st.next_open_time)})`] : [' It does not open again (no weekly windows ahead).'];
        status.replaceChildren(st.open ? h('span', { class: 'ok' }, 'Open now') : h('span', { class: 'bad' }, 'Closed now'),
          st.open && st.close_time ? ` — closes ${fmtTime(st.close_time, st.time_zone)}.` : '.', ...next);
      }).catch((err) => { status.replaceChildren(); showError(status, err); });
      const f = form(x, async (fm) => {
        await PATCH(`${base}/${enc(x.id)}`, { id: x.id, etag: x.etag, name: val(fm, 'name'), time_zone: val(fm, 'time_zone'), weekly: parseWeekly(val(fm, 'weekly')), holidays: parseHolidays(val(fm, 'holidays')) },
          ['name', 'time_zone', 'weekly', 'holidays']);
        toast('Saved'); render();
      });
      card.append(h('details', {}, h('summary', {}, 'Edit'), f),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`Delete business hours ${x.id}?`)) return;
          try { await DEL(`${base}/${enc(x.id)}?etag=${enc(x.etag)}`); render(); } catch (err) { showError(card, err); }
        } }, 'Delete'));
      card.append(h('p', { class: 'muted' }, weeklyText(x.weekly).replace(/\n/g, ', ') || 'no weekly windows (never open)'),
        (x.holidays || []).length ? h('p', { class: 'muted holidays' }, 'Holidays and events: ', holidaysText(x.holidays).replace(/\n/g, '; ')) : null);
      main.append(card);
    }
    main.append(h('h2', {}, 'Add business hours'));
    const add = form({}, async (fm) => {
      await POST(base, { id: val(fm, 'id'), name: val(fm, 'name'), time_zone: val(fm, 'time_zone'), weekly: parseWeekly(val(fm, 'weekly')), holidays: parseHolidays(val(fm, 'holidays')) });
      toast('Added'); render();
    });
    add.id = 'add-hours';
    main.append(add);
  }

  // ---------- sessions ----------
  async function pageSessions(main, acct, query) {
    main.append(h('h1', {}, 'Sessions'));
    const state = query.get('state') === 'all' ? '' : 'SESSION_STATE_ACTIVE';
    main.append(h('p', {}, state ? h('a', { href: `#/a/${enc(acct)}/sessions?state=all` }, 'Show ended sessions too') : h('a', { href: `#/a/${enc(acct)}/sessions` }, 'Show active sessions only')));
    const sessions = await listAll(`/v1/accounts/${enc(acct)}/sessions${state ? '?state=' + state : ''}`, 'sessions');
    const table = h('table', { id: 'sessions-table' }, h('thead', {}, h('tr', {}, ['Id', 'Kind', 'State', 'Representative', 'Customer', 'Portal', 'Started', 'Specialists', ''].map((t) => h('th', {}, t)))));
    const body = h('tbody', {});
    for (const x of sessions) {
      const active = x.state === 'SESSION_STATE_ACTIVE';
      const specs = h('td', {}, (x.specialists || []).map((sp) => h('div', {}, sp.display_name || sp.id, ' ', h('span', { class: 'muted' }, sp.id), ' ',
        active ? h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`Remove specialist ${sp.id} from session ${x.id}?`)) return;
          try { await DEL(`/v1/sessions/${enc(x.id)}/specialists/${enc(sp.id)}`); render(); } catch (err) { showError(main, err); }
        } }, 'Remove') : null)));
      if (active && x.kind === 'SESSION_KIND_SUPPORT') {
        specs.append(onSubmit(h('form', { class: 'row' }, field('Specialist id', 'specialist_id', { size: 10, required: true }), field('Name', 'display_name', { size: 12, required: true }),
          h('button', { type: 'submit' }, 'Invite')),
        async (f) => { await POST(`/v1/sessions/${enc(x.id)}/specialists`, { specialist_id: val(f, 'specialist_id'), display_name: val(f, 'display_name') }); render(); }));
      }
      body.append(h('tr', { 'data-id': x.id }, h('td', {}, x.id), h('td', {}, shortEnum(x.kind, 'SESSION_KIND_')), h('td', {}, shortEnum(x.state, 'SESSION_STATE_')),
        h('td', {}, x.representative_id || ''), h('td', {}, x.customer_id || ''), h('td', {}, x.portal_id || ''), h('td', {}, fmtTime(x.start_time)), specs,
        h('td', {}, active ? h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`End session ${x.id}? Later checks in it are denied.`)) return;
          try { await POST(`/v1/sessions/${enc(x.id)}:end`, {}); toast('Session ended'); render(); } catch (err) { showError(main, err); }
        } }, 'End') : null, ' ', h('a', { href: `#/a/${enc(acct)}/explorer?session=${enc(x.id)}` }, 'Explore'))));
    }
    table.append(body);
    main.append(sessions.length ? table : h('p', {}, 'No sessions.'));
    main.append(onSubmit(h('form', { class: 'card', id: 'start-session' }, h('h2', {}, 'Start a session'),
      h('div', { class: 'row' }, select('Kind', 'kind', [['SESSION_KIND_LIVE_GUIDE', 'Live Guide'], ['SESSION_KIND_SUPPORT', 'Support']], 'SESSION_KIND_LIVE_GUIDE'),
        field('Representative id', 'representative_id', { required: true }), field('Customer id', 'customer_id', { required: true }),
        field('Portal id (support)', 'portal_id'), h('button', { type: 'submit', class: 'primary' }, 'Start'))),
    async (f) => {
      const r = await POST(`/v1/accounts/${enc(acct)}/sessions`, { kind: val(f, 'kind'), representative_id: val(f, 'representative_id'), customer_id: val(f, 'customer_id'), portal_id: val(f, 'portal_id') });
      toast(`Session ${r.session.id} started`); render();
    }));
  }

  // ---------- notifications ----------
  async function pageNotifications(main, acct) {
    main.append(h('h1', {}, 'Notification queue'));
    main.append(h('p', { class: 'muted' }, 'Completed-session records waiting for delivery, oldest first.'));
    const items = await listAll(`/v1/accounts/${enc(acct)}/notifications`, 'notifications');
    if (!items.length) { main.append(h('p', { id: 'no-notifications' }, 'The queue is empty.')); return; }
    main.append(h('table', { id: 'notifications-table' }, h('thead', {}, h('tr', {}, ['Session', 'Recipient', 'Attempts', 'Next attempt', 'Last error', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((n) => {
        const tr = h('tr', { 'data-id': n.id }, h('td', {}, n.session_id), h('td', {}, n.to), h('td', {}, String(n.attempts || 0)), h('td', {}, fmtTime(n.next_attempt_time)),
          h('td', {}, n.last_error || ''));
        const actions = h('td', {}, onSubmit(h('form', { class: 'row' }, field('Recipient', 'to', { value: n.to, size: 24 }), h('button', { type: 'submit' }, 'Retry now')),
          async (f) => { await POST(`/v1/notifications/${enc(n.id)}:retry`, { to: val(f, 'to') === n.to ? '' : val(f, 'to') }); toast('Queued for retry'); render(); }),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirmAction(`Drop the notification for session ${n.session_id}? It will never be delivered.`)) return;
          try { await DEL(`/v1/notifications/${enc(n.id)}`); render(); } catch (err) { showError(main, err); }
        } }, 'Drop'));
        tr.append(actions);
        return tr;
      }))));
  }

  // ---------- audit log ----------
  function flatten(obj, prefix, out) {
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    } else if (prefix) out[prefix] = JSON.stringify(obj);
    return out;
  }
  function parseJSON(s) { try { return s ? JSON.parse(s) : {}; } catch (e) { return { value: s }; } }
  async function pageAudit(main, acct, query) {
    main.append(h('h1', {}, 'Audit log'));
    const token = query.get('page') || '';
    const r = await GET(`/v1/accounts/${enc(acct)}/auditEvents?page_size=50${token ? '&page_token=' + enc(token) : ''}`);
    const events = r.events || [];
    main.append(h('p', { class: 'muted' }, 'Every committed write, oldest first, with what changed.'));
    for (const ev of events) {
      const before = flatten(parseJSON(ev.before_json), '', {});
      const after = flatten(parseJSON(ev.after_json), '', {});
      const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k] && !/(^|\.)(etag|revision)$/.test(k)).sort();
      main.append(h('section', { class: 'card', 'data-id': ev.id },
        h('div', {}, h('strong', {}, (ev.rpc || '').split('/').pop()), ' ', `${ev.resource_type} ${ev.resource_id}`, ' — ', ev.caller, ' — ', fmtTime(ev.time), h('span', { class: 'muted' }, ` rev ${ev.revision}`)),
        keys.length ? h('table', { class: 'diff' }, h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'Before'), h('th', {}, 'After'))),
          h('tbody', {}, keys.map((k) => h('tr', {}, h('td', {}, k), h('td', { class: 'before' }, before[k] === undefined ? '—' : before[k]), h('td', { class: 'after' }, after[k] === undefined ? '—' : after[k])))))
          : h('p', { class: 'muted' }, 'no field changed')));
    }
    if (!events.length) main.append(h('p', {}, 'No events.'));
    if (r.next_page_token) main.append(h('a', { href: `#/a/${enc(acct)}/audit?page=${enc(r.next_page_token)}` }, 'Newer events →'));
  }

  // ---------- credentials ----------
  async function pageCredentials(main) {
    main.append(h('h1', {}, 'Caller credentials'));
    main.append(h('p', { class: 'muted' }, 'Bearer tokens for callers (operators only). A new token is shown once; it cannot be read again.'));
    const shown = h('div', { id: 'new-token' });
    main.append(shown);
    main.append(onSubmit(h('form', { class: 'card', id: 'create-token' }, h('h2', {}, 'Create a token'),
      h('div', { class: 'row' }, field('Name', 'name', { required: true }),
        select('Role', 'role', [['CALLER_ROLE_DECIDER', 'Decider (session servers)'], ['CALLER_ROLE_ADMIN', 'Admin'], ['CALLER_ROLE_OPERATOR', 'Operator']], 'CALLER_ROLE_ADMIN'),
        field('Account (empty: all accounts)', 'account_id'), h('button', { type: 'submit', class: 'primary' }, 'Create'))),
    async (f) => {
      const r = await POST('/v1/callerTokens', { name: val(f, 'name'), role: val(f, 'role'), account_id: val(f, 'account_id') });
      await listTokens();
      shown.replaceChildren(h('div', { class: 'card', role: 'alert' }, h('p', {}, `Token ${r.token.name} (${r.token.id}) created. Copy it now: it is shown only once.`),
        h('div', { class: 'secret', id: 'token-secret', tabindex: '0' }, r.bearer || '(a certificate credential has no secret)'),
        h('button', { type: 'button', onclick: () => shown.replaceChildren() }, 'I have copied it')));
      shown.querySelector('.secret').focus();
    }));
    const list = h('div', { id: 'tokens' });
    main.append(list);
    async function listTokens() {
      const tokens = await listAll('/v1/callerTokens', 'tokens');
      list.replaceChildren(h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Name', 'Role', 'Account', 'Created', 'State', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, tokens.map((t) => h('tr', { 'data-id': t.id }, h('td', {}, t.id), h('td', {}, t.name), h('td', {}, shortEnum(t.role, 'CALLER_ROLE_')),
          h('td', {}, t.account_id || 'all'), h('td', {}, fmtTime(t.create_time)), h('td', {}, t.revoked ? 'revoked' : 'active'),
          h('td', {}, t.revoked ? null : h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!confirmAction(`Revoke token ${t.name} (${t.id})? Callers using it are refused at once.`)) return;
            try { await POST(`/v1/callerTokens/${enc(t.id)}:revoke`, {}); await listTokens(); } catch (err) { showError(list, err); }
          } }, 'Revoke')))))));
    }
    await listTokens();
  }

  // ---------- decision explorer ----------
  function ruleLink(acct, d) {
    const a = `#/a/${enc(acct)}`;
    const rule = d.rule || '';
    switch (shortEnum(d.reason, 'REASON_')) {
      case 'AGENT_CLICK_RESTRICTED': case 'AGENT_INPUT_RESTRICTED': case 'FEATURE_DISABLED':
        return rule ? `${a}/liveguide?focus=${enc(rule)}` : `${a}/liveguide`;
      case 'DOMAIN_NOT_ALLOWLISTED': return `${a}/allowlist`;
      case 'ELEMENT_BLOCKED': case 'ELEMENT_MASKED': return `${a}/privacy?focus=${enc(rule)}`;
      case 'PORTAL_FUNCTION_DISABLED': return `${a}/portals?focus=${enc(rule)}`;
      case 'REPRESENTATIVE_FUNCTION_DISABLED': return `${a}/representatives?focus=${enc(rule)}`;
      case 'ALLOWED': return rule ? `${a}/allowlist?focus=${enc(rule)}` : '';
      case 'SESSION_ENDED': return `${a}/sessions?state=all`;
    }
    return '';
  }
  async function pageExplorer(main, acct, query) {
    main.append(h('h1', {}, 'Decision explorer'));
    main.append(h('p', { class: 'muted' }, 'Ask what Gatehouse answers a session server: pick a session, an actor, a feature, a URL and an element.'));
    const sessions = await listAll(`/v1/accounts/${enc(acct)}/sessions?state=SESSION_STATE_ACTIVE`, 'sessions');
    if (!sessions.length) {
      main.append(h('p', {}, 'No active session in this account. ', h('a', { href: `#/a/${enc(acct)}/sessions` }, 'Start one'), ' to explore decisions.'));
      return;
    }
    const want = query.get('session');
    const chosen = sessions.find((x) => x.id === want) || sessions[0];
    const byID = new Map(sessions.map((x) => [x.id, x]));
    const result = h('div', { class: 'result', id: 'explorer-result', 'aria-live': 'polite' }, 'No question asked yet.');
    const form = h('form', { class: 'card', id: 'explorer-form' },
      h('div', { class: 'row' },
        select('Session', 'session_id', sessions.map((x) => [x.id, `${x.id} — ${shortEnum(x.kind, 'SESSION_KIND_')}, rep ${x.representative_id}, customer ${x.customer_id}`]), chosen.id),
        select('Actor', 'role', [['ROLE_AGENT', 'Agent (representative)'], ['ROLE_CUSTOMER', 'Customer'], ['ROLE_EXTERNAL_SPECIALIST', 'External specialist']], 'ROLE_AGENT'),
        field('Actor id', 'actor_id', { value: chosen.representative_id || '', required: true })),
      h('div', { class: 'row' },
        select('Feature', 'feature', FEATURES.map((f) => ['FEATURE_' + f, f]), 'FEATURE_CLICK'),
        field('URL', 'url', { size: 50, value: 'https://www.example.com/' }),
        select('Frame', 'frame', [['FRAME_TOP_LEVEL', 'Top level'], ['FRAME_IFRAME', 'Iframe']], 'FRAME_TOP_LEVEL')),
      h('div', { class: 'row' },
        field('Element tag', 'tag', { size: 8, placeholder: 'button' }), field('Element id', 'element_id', { size: 10 }),
        field('Classes (space-separated)', 'classes', { size: 16 }), field('Attributes (name=value, one a line)', 'attributes', { textarea: true, rows: 2 }),
        field('Ancestors, outermost first (e.g. "body > form#pay.secure")', 'ancestors', { size: 30 })),
      h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Decide')));
    const setActor = () => {
      const x = byID.get(val(form, 'session_id'));
      if (!x) return;
      const role = val(form, 'role');
      form.elements.actor_id.value = role === 'ROLE_CUSTOMER' ? x.customer_id : role === 'ROLE_AGENT' ? x.representative_id : ((x.specialist_ids || [])[0] || '');
    };
    form.elements.session_id.addEventListener('change', setActor);
    form.elements.role.addEventListener('change', setActor);
    const node = (s) => {
      const m = s.trim().match(/^([a-zA-Z0-9-]*)((?:[#.][\w-]+)*)$/);
      if (!m) return null;
      const n = { tag: m[1] || '', classes: [] };
      for (const part of m[2].match(/[#.][\w-]+/g) || []) { if (part[0] === '#') n.id = part.slice(1); else n.classes.push(part.slice(1)); }
      return n;
    };
    onSubmit(form, async (f) => {
      const attributes = {};
      for (const line of val(f, 'attributes').split('\n')) { const i = line.indexOf('='); if (i > 0) attributes[line.slice(0, i).trim()] = line.slice(i + 1).trim(); }
      const ancestors = val(f, 'ancestors') ? val(f, 'ancestors').split('>').map(node).filter(Boolean) : [];
      const element = { tag: val(f, 'tag'), id: val(f, 'element_id'), classes: val(f, 'classes').split(/\s+/).filter(Boolean), attributes, ancestors };
      const hasElement = element.tag || element.id || element.classes.length || Object.keys(attributes).length || ancestors.length;
      const sid = val(f, 'session_id');
      const r = await POST(`/v1/sessions/${enc(sid)}:checkFeature`, {
        actor: { role: val(f, 'role'), id: val(f, 'actor_id') }, feature: val(f, 'feature'), url: val(f, 'url'), frame: val(f, 'frame'),
        element: hasElement ? element : undefined, min_revision: String(lastRevision),
      });
      const d = r.decision || {};
      const link = ruleLink(acct, d);
      result.replaceChildren(
        h('div', {}, h('span', { class: d.allowed ? 'ok' : 'bad', id: 'explorer-verdict' }, d.allowed ? 'ALLOWED' : 'DENIED'), ' ',
          h('span', { id: 'explorer-reason' }, shortEnum(d.reason, 'REASON_'))),
        h('div', {}, d.message || ''),
        d.rule ? h('div', {}, 'Decided by: ', link ? h('a', { href: link, id: 'explorer-rule' }, d.rule) : h('span', { id: 'explorer-rule' }, d.rule)) : null,
        h('div', { class: 'muted' }, `at store revision ${r.revision}`));
    });
    main.append(form, result);
  }

  // ---------- start ----------
  window.addEventListener('hashchange', render);
  // The skip link moves the focus; it must not change the route.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', render);
  else render();
})();
