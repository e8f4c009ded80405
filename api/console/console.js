// callctx console: active calls, and one call's session live over SSE.
// Plain JavaScript with no dependencies. Every value from the API is shown
// with textContent, never as markup: session values come from outside
// systems.
'use strict';

(function () {
  const POLL_MS = 2000;
  const TOKEN_KEY = 'callctx.token';
  const $ = (id) => document.getElementById(id);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    showEnded: false,
    calls: [],
    selected: '',       // call ID being watched
    call: null,         // the watched call
    es: null,           // its EventSource
    version: 0,         // last session version seen on the stream
    variables: {},
    since: {},          // variable name -> version that last changed it
    history: new Map(), // version -> entry
    pollTimer: 0,
    calendarsTimer: 0,
    nodes: {},          // call ID -> current flow node, for the list
    flowTimer: 0,
  };
  const CALENDARS_MS = 30000; // calendars change by the minute: their state is read this often
  const NODE_LOOKUPS = 50; // calls of the list whose flow node is looked up
  const NODE_PARALLEL = 4;

  // ---- API ----

  class APIError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  // apiOr returns fallback when the API answers 404 (a call without a flow).
  async function apiOr(path, fallback) {
    try {
      return await api(path);
    } catch (e) {
      if (e.status === 404) return fallback;
      throw e;
    }
  }

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    let res;
    try {
      res = await fetch(path, { headers, cache: 'no-store' });
    } catch (e) {
      throw new APIError(0, 'callctx does not answer');
    }
    if (res.ok) return res.json();
    let detail = res.status + ' ' + res.statusText;
    try {
      const p = await res.json();
      if (p && p.detail) detail = p.detail;
    } catch (e) { /* not a problem document */ }
    if (res.status === 401 || res.status === 403) askForToken();
    throw new APIError(res.status, detail);
  }

  // ---- status line and token ----

  function setStatus(text, isError) {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  function showTokenState() {
    $('token').placeholder = state.token ? 'token in use (enter another to switch)' : 'bearer token (sessions:read)';
  }

  function askForToken() {
    $('token-form').classList.add('needed');
    setStatus('The API wants a token with the sessions:read scope.', true);
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    $('token').value = '';
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    $('token-form').classList.remove('needed');
    showTokenState();
    setStatus('');
    refreshCalls();
    refreshCalendars();
    if (state.selected) watch(state.selected);
  });

  $('token-forget').addEventListener('click', () => {
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    stopWatching();
    setStatus('Token forgotten.');
    refreshCalls();
  });

  $('show-ended').addEventListener('change', (ev) => {
    state.showEnded = ev.target.checked;
    $('calls-title').firstChild.textContent = state.showEnded ? 'Calls ' : 'Active calls ';
    refreshCalls();
  });

  // ---- helpers ----

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function json(v) {
    return v === undefined ? '' : JSON.stringify(v);
  }

  function time(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString();
  }

  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }

  // ---- calls list ----

  async function refreshCalls() {
    clearTimeout(state.pollTimer);
    try {
      const page = await api('/v1/calls?limit=200&state=' + (state.showEnded ? 'all' : 'active'));
      state.calls = page.items;
      renderCalls();
      await refreshNodes();
      $('calls-updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
      if ($('status').classList.contains('error')) setStatus('');
    } catch (e) {
      setStatus(e.message, true);
    }
    state.pollTimer = setTimeout(refreshCalls, POLL_MS);
  }

  function renderCalls() {
    const body = $('calls').tBodies[0];
    const rows = [];
    for (const c of state.calls) {
      const tr = document.createElement('tr');
      tr.dataset.callId = c.id;
      tr.setAttribute('aria-selected', String(c.id === state.selected));
      if (c.state === 'ended') tr.classList.add('ended');
      const id = el('td');
      id.appendChild(el('code', c.id));
      id.title = c.id;
      const from = el('td', c.from), to = el('td', c.to);
      from.title = c.from;
      to.title = c.to;
      const node = el('td', c.flow ? state.nodes[c.id] || '…' : '–');
      node.className = 'node';
      const route = el('td', c.route || '–', 'route');
      route.title = c.route || '';
      tr.append(id, from, to, route, el('td', c.flow || '–'), node, el('td', ago(c.startedAt)));
      tr.addEventListener('click', () => select(c.id));
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    $('calls-empty').hidden = state.calls.length > 0;
    $('calls-count').textContent = '(' + state.calls.length + ')';
  }

  // ---- opening hours ----

  // refreshCalendars shows each calendar open or closed now and when that
  // changes ("closes in 42 min"); the pane stays hidden without calendars.
  async function refreshCalendars() {
    clearTimeout(state.calendarsTimer);
    try {
      const list = await api('/v1/calendars');
      renderCalendars(list.items);
    } catch (e) {
      setStatus(e.message, true);
    }
    state.calendarsTimer = setTimeout(refreshCalendars, CALENDARS_MS);
  }

  function renderCalendars(items) {
    $('calendars-pane').hidden = items.length === 0;
    const rows = items.map((c) => {
      const tr = el('tr');
      tr.dataset.calendar = c.name;
      const name = el('td', c.name);
      name.title = (c.description ? c.description + ' · ' : '') + c.tz;
      const st = el('td', c.state + (c.exception ? ' (' + c.exception + ')' : ''), 'state');
      st.dataset.state = c.state;
      const why = el('td', c.reason, 'why');
      tr.append(name, st, el('td', changeText(c.nextChange), 'next'), why);
      return tr;
    });
    $('calendars').tBodies[0].replaceChildren(...rows);
  }

  // changeText says when a calendar next opens or closes: "closes in 42 min
  // (12:00)", "opens in 2 days (Mon 08:00)", in the calendar's own time.
  function changeText(ch) {
    if (!ch) return 'stays so';
    const verb = ch.open ? 'opens' : 'closes';
    const clock = ch.at.slice(11, 16);
    const day = new Date(ch.at.slice(0, 10) + 'T00:00:00Z').getUTCDay();
    const when = ch.inSeconds < 86400 ? clock : ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][day] + ' ' + clock;
    return verb + ' ' + inText(ch.inSeconds) + ' (' + when + ')';
  }

  function inText(s) {
    if (s < 60) return 'in less than a minute';
    const m = Math.floor(s / 60);
    if (m < 60) return 'in ' + m + ' min';
    const h = Math.floor(m / 60);
    if (h < 48) return 'in ' + h + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
    return 'in ' + Math.floor(h / 24) + ' days';
  }

  // refreshNodes looks up where the flows of the first listed calls stand.
  async function refreshNodes() {
    const todo = state.calls.filter((c) => c.flow).slice(0, NODE_LOOKUPS);
    const nodes = {};
    let i = 0;
    async function worker() {
      while (i < todo.length) {
        const c = todo[i++];
        const run = await apiOr('/v1/calls/' + encodeURIComponent(c.id) + '/flow', null).catch(() => null);
        if (run) nodes[c.id] = nodeText(run);
      }
    }
    await Promise.all(Array.from({ length: NODE_PARALLEL }, worker));
    state.nodes = nodes;
    for (const tr of $('calls').tBodies[0].rows) {
      const td = tr.querySelector('td.node');
      if (td && nodes[tr.dataset.callId]) td.textContent = nodes[tr.dataset.callId];
    }
  }

  function nodeText(run) {
    return run.done ? 'done' : run.node || '–';
  }

  // ---- one call ----

  function select(id) {
    if (location.hash !== '#call=' + encodeURIComponent(id)) {
      history.replaceState(null, '', '#call=' + encodeURIComponent(id));
    }
    watch(id);
    renderCalls();
  }

  function stopWatching() {
    if (state.es) state.es.close();
    state.es = null;
    clearTimeout(state.flowTimer);
  }

  // ---- the flow of one call ----

  // refreshFlow reads the flow's path and the automations every POLL_MS
  // while the call is watched: flow steps and deliveries do not all write
  // to the session, so the event stream does not announce them.
  async function refreshFlow(id) {
    clearTimeout(state.flowTimer);
    try {
      const [run, autos] = await Promise.all([
        apiOr('/v1/calls/' + encodeURIComponent(id) + '/flow', null),
        apiOr('/v1/calls/' + encodeURIComponent(id) + '/automations', { items: [] }),
      ]);
      if (state.selected !== id) return;
      renderFlow(run);
      renderAutomations(autos.items);
    } catch (e) {
      setStatus(e.message, true);
    }
    // An ended call's flow changes no more, but its automations may still
    // be delivered: keep looking until none is pending.
    const settled = state.call && state.call.state === 'ended' &&
      !$('automations').querySelector('td[data-status="pending"]');
    if (state.selected === id && !settled) state.flowTimer = setTimeout(() => refreshFlow(id), POLL_MS);
  }

  function renderFlow(run) {
    $('flow-section').hidden = !run;
    if (!run) return;
    $('flow-summary').textContent = run.flow + ' · ' + (run.done ? 'done' : 'at ' + run.node + ', step ' + run.step);
    const items = (run.path || []).map((st, i) => {
      const li = el('li');
      li.dataset.node = st.node;
      if (!run.done && i === run.path.length - 1 && st.node === run.node) li.classList.add('current');
      li.appendChild(el('div', time(st.at) + ' · ' + st.node + ' (' + st.type + ')' + (st.next ? ' → ' + st.next : ''), 'meta'));
      if (st.action) li.appendChild(el('div', actionText(st.action), 'detail'));
      if (st.outcome) {
        li.appendChild(el('div', 'outcome: ' + (st.outcome.status || 'done') + (st.outcome.input !== undefined ? ' (input ' + JSON.stringify(st.outcome.input) + ')' : ''), 'detail'));
      }
      if (st.wait) {
        li.appendChild(el('div', 'waited ' + st.wait.waitedMs + ' ms of ' + st.wait.timeoutMs + ' ms for ' + st.wait.trigger + ': ' + (st.wait.fired ? 'it fired' : 'timed out'), 'detail'));
      }
      for (const cs of st.cases || []) {
        const d = el('div', null, 'detail case');
        d.dataset.trigger = cs.trigger;
        d.append('case ');
        d.appendChild(el('code', cs.trigger));
        d.append(' ');
        d.appendChild(el('span', cs.result ? 'fired' : 'did not fire', cs.result ? 'fired' : 'not-fired'));
        if (cs.explain) d.appendChild(explainList([cs.explain]));
        li.appendChild(d);
      }
      if (st.automations && st.automations.length) {
        li.appendChild(el('div', 'automations: ' + st.automations.map((a) => a.automation).join(', '), 'detail'));
      }
      if (st.note) li.appendChild(el('div', st.note, 'detail'));
      return li;
    });
    $('flow-path').replaceChildren(...items);
  }

  function actionText(a) {
    switch (a.type) {
      case 'play': return 'play ' + a.prompt;
      case 'say': return 'say "' + a.text + '"';
      case 'input': return 'input into ' + a.var;
      case 'transfer': return 'transfer to ' + a.target + (a.mode ? ' (' + a.mode + ')' : '') +
        (a.headers ? ' with ' + Object.keys(a.headers).map((k) => k + ': ' + a.headers[k]).join(', ') : '');
      case 'hangup': return 'hang up';
    }
    return JSON.stringify(a);
  }

  // explainList renders a trigger explanation as a nested list: each
  // condition with the value seen and whether it held.
  function explainList(nodes) {
    const ul = el('ul', null, 'explain');
    for (const x of nodes) {
      const li = el('li', explainText(x), String(!!x.result));
      if (x.children && x.children.length) li.appendChild(explainList(x.children));
      ul.appendChild(li);
    }
    return ul;
  }

  function explainText(x) {
    switch (x.kind) {
      case 'trigger': return 'trigger ' + x.trigger;
      case 'calendar': return 'calendar ' + x.calendar + ' is ' + x.is + ' — ' + (x.decided || (x.missing ? x.var + ' not set' : ''));
      case 'all': case 'any': case 'not': return x.kind;
      case 'compare': {
        let t = (x.var || 'now') + ' ' + x.op;
        if (x.value !== undefined) t += ' ' + JSON.stringify(x.value);
        return t + ' — ' + (x.missing ? 'not set' : 'saw ' + JSON.stringify(x.seen)) + (x.decided ? ' (' + x.decided + ')' : '');
      }
    }
    return x.kind || '?';
  }

  function renderAutomations(items) {
    $('automations-section').hidden = items.length === 0;
    const rows = items.map((d) => {
      const tr = el('tr');
      tr.dataset.automation = d.automation;
      const st = el('td', d.status);
      st.dataset.status = d.status;
      const attempts = (d.attempts || []).map((a) => a.statusCode || a.error || '?').join(', ');
      const att = el('td', attempts || '–');
      att.title = d.error || '';
      tr.append(el('td', d.automation), st, att, el('td', d.source));
      return tr;
    });
    $('automations').tBodies[0].replaceChildren(...rows);
  }

  function setStream(s) {
    const b = $('stream-state');
    b.dataset.state = s;
    b.textContent = s;
  }

  async function watch(id) {
    stopWatching();
    state.selected = id;
    state.call = null;
    state.version = 0;
    state.variables = {};
    state.since = {};
    state.history = new Map();
    $('call-none').hidden = true;
    $('call-detail').hidden = false;
    $('call-id').textContent = id;
    clearTimeout(state.flowTimer);
    $('flow-section').hidden = true;
    $('automations-section').hidden = true;
    $('transfers-section').hidden = true;
    renderCall();
    renderVariables([]);
    renderHistory();
    try {
      const [call, hist] = await Promise.all([
        api('/v1/calls/' + encodeURIComponent(id)),
        api('/v1/sessions/' + encodeURIComponent(id) + '/history'),
      ]);
      if (state.selected !== id) return;
      state.call = call;
      for (const h of hist) addHistory(h);
      renderCall();
      renderTransfers();
      renderHistory();
      if (call.flow) refreshFlow(id);
    } catch (e) {
      setStatus(e.message, true);
      setStream('error');
      return;
    }
    openStream(id);
  }

  function openStream(id) {
    let url = '/v1/sessions/' + encodeURIComponent(id) + '/events';
    const q = [];
    if (state.token) q.push('access_token=' + encodeURIComponent(state.token));
    if (state.version > 0) q.push('lastEventId=' + state.version);
    if (q.length) url += '?' + q.join('&');
    const es = new EventSource(url);
    state.es = es;
    setStream('connecting');
    es.onopen = () => { if (state.es === es) setStream('live'); };
    es.onerror = () => {
      if (state.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (or said 204 after the end): try
        // once more later, resuming after the last version seen.
        if (state.call && state.call.state === 'ended') { setStream('ended'); return; }
        setStream('reconnecting');
        setTimeout(() => { if (state.es === es && state.selected === id) openStream(id); }, 3000);
      } else {
        setStream('reconnecting'); // EventSource retries by itself with Last-Event-ID
      }
    };
    const onEvent = (ev) => {
      if (state.es !== es) return;
      let d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      apply(ev.type, d);
      if (ev.type === 'call.ended') {
        es.close();
        setStream('ended');
      }
    };
    for (const t of ['session.snapshot', 'call.started', 'session.updated', 'transfer.status', 'call.ended']) {
      es.addEventListener(t, onEvent);
    }
  }

  // apply takes one stream event into the view.
  function apply(type, d) {
    const changed = [];
    if (type === 'session.snapshot') {
      for (const name of Object.keys(d.variables || {})) {
        if (json(state.variables[name]) !== json(d.variables[name])) changed.push(name);
      }
      // Writes between the history read and the stream's start are in the
      // snapshot's variables but not yet in the history shown.
      const known = Math.max(0, ...state.history.keys());
      if (d.version > known) fillHistory(state.selected, known);
    } else {
      for (const name of Object.keys(d.changes || {})) {
        changed.push(name);
        state.since[name] = d.version;
      }
      addHistory({ version: d.version, at: d.at, actor: d.actor, changes: d.changes || {} });
      renderHistory();
    }
    state.version = d.version;
    state.variables = d.variables || {};
    if (type === 'call.ended' && state.call) {
      state.call.state = 'ended';
      state.call.endedAt = (d.variables && d.variables['call.endedAt']) || d.at;
      state.call.endReason = d.variables && d.variables['call.endReason'];
      renderCall();
    }
    renderVariables(changed);
    // The SIP bridge records every transfer in sip.transfers and the legs it
    // placed in sip.legs: the event's variables hold them already.
    if (changed.includes('sip.transfers') || changed.includes('sip.legs')) renderTransfers();
  }

  // renderTransfers shows the call's transfers and legs: from the stream's
  // variables once it has sent them, else as the call was read.
  function renderTransfers() {
    const c = state.call || {};
    const transfers = state.variables['sip.transfers'] || c.transfers || [];
    const legs = state.variables['sip.legs'] || c.legs || [];
    $('transfers-section').hidden = transfers.length === 0 && legs.length === 0;
    const rows = transfers.map((t) => {
      const tr = el('tr');
      tr.dataset.transferId = t.id;
      const st = el('td', t.status);
      st.dataset.status = t.status;
      const target = el('td', t.target);
      target.title = t.target;
      const reason = [t.reasonCode, t.reason, t.handoverReason ? 'handover: ' + t.handoverReason : null].filter(Boolean).join(' · ');
      const rc = el('td', reason || '–');
      rc.title = reason;
      tr.append(el('td', time(t.startedAt)), el('td', t.mode), target, st, el('td', t.sipCode || '–'), rc);
      return tr;
    });
    $('transfers').tBodies[0].replaceChildren(...rows);
    const p = $('legs');
    p.replaceChildren();
    if (legs.length) {
      p.append('Legs placed for this call: ');
      legs.forEach((id, i) => {
        if (i) p.append(', ');
        const a = el('a', id);
        a.addEventListener('click', () => select(id));
        p.appendChild(a);
      });
    }
  }

  async function fillHistory(id, after) {
    try {
      const hist = await api('/v1/sessions/' + encodeURIComponent(id) + '/history?after=' + after);
      if (state.selected !== id) return;
      for (const h of hist) addHistory(h);
      renderHistory();
      renderVariables([]);
    } catch (e) {
      setStatus(e.message, true);
    }
  }

  function addHistory(h) {
    state.history.set(h.version, h);
    for (const name of Object.keys(h.changes || {})) {
      if (!(name in state.since) || state.since[name] < h.version) state.since[name] = h.version;
    }
  }

  function renderCall() {
    const c = state.call || {};
    $('call-from').textContent = c.from || '–';
    $('call-to').textContent = c.to || '–';
    $('call-direction').textContent = c.direction || '–';
    $('call-route').textContent = c.route || '–';
    $('call-flow').textContent = c.flow || '–';
    $('call-state').textContent = c.state || '–';
    $('call-started').textContent = time(c.startedAt);
    $('call-ended').textContent = c.endedAt ? time(c.endedAt) + (c.endReason ? ' (' + c.endReason + ')' : '') : '–';
  }

  function renderVariables(changed) {
    $('session-version').textContent = state.version || '–';
    const names = Object.keys(state.variables).sort();
    const rows = names.map((name) => {
      const tr = document.createElement('tr');
      tr.dataset.var = name;
      tr.className = 'ns-' + name.split('.')[0];
      if (changed.includes(name)) tr.classList.add('changed');
      const v = el('td', json(state.variables[name]), 'value');
      v.title = json(state.variables[name]);
      const n = el('td');
      n.appendChild(el('code', name));
      tr.append(n, v, el('td', state.since[name] ? 'v' + state.since[name] : ''));
      return tr;
    });
    $('variables').tBodies[0].replaceChildren(...rows);
  }

  function renderHistory() {
    const items = [...state.history.values()].sort((a, b) => b.version - a.version).map((h) => {
      const li = el('li');
      li.value = h.version;
      li.dataset.version = h.version;
      li.appendChild(el('div', 'v' + h.version + ' · ' + time(h.at) + ' · ' + (h.actor || '?'), 'meta'));
      const ul = el('ul');
      for (const name of Object.keys(h.changes || {}).sort()) {
        const ch = h.changes[name];
        const item = el('li');
        item.appendChild(el('code', name));
        item.append(' ');
        if (ch.old !== null && ch.old !== undefined) {
          item.appendChild(el('span', json(ch.old), 'old value'));
          item.append(' → ');
        }
        item.appendChild(el('span', ch.new === null || ch.new === undefined ? '(deleted)' : json(ch.new), 'new value'));
        ul.appendChild(item);
      }
      li.appendChild(ul);
      return li;
    });
    $('history').replaceChildren(...items);
  }

  // ---- start ----

  function fromHash() {
    const m = /^#call=(.+)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : '';
  }

  window.addEventListener('hashchange', () => {
    const id = fromHash();
    if (id && id !== state.selected) select(id);
  });

  showTokenState();
  refreshCalls();
  refreshCalendars();
  const initial = fromHash();
  if (initial) watch(initial);
})();
