// The Calls view: every call this server holds, live over one event stream
// (GET /v1/events/calls), sorted, filtered and paged in the page; and one
// call watched live: its session (GET /v1/sessions/{id}/events), its flow's
// diagram with the path it took, its transfers and automations.
'use strict';

import { $, api, apiOr, follow, setStatus, el, json, time, ago, count, caseItem, streamURL } from './api.js';
import { loadDiagram, mark, explainOnHover } from './diagram.js';

const PAGE = 50;           // rows per page
const ENDED_PAGE = 500;    // ended calls read per "load older" click
const AUTOMATIONS_MS = 5000; // pending deliveries of the watched call are looked at this often
const enc = encodeURIComponent;

const list = {
  calls: new Map(), // id -> call, as the stream (or the ended-calls pages) gave it
  stream: null,
  sort: { key: 'startedAt', desc: true },
  page: 0,
  showEnded: false,
  endedCursor: undefined, // next page of older ended calls; null once all are read
  drawPending: false,
  onChange: null, // set by the watched call
};

// ---- the list ----

export function startList() {
  if (list.stream) list.stream.close();
  list.calls.clear();
  list.stream = follow('/v1/events/calls', null, ['calls.reset', 'calls.upsert', 'calls.remove'], onListEvent, $('list-state'));
}

function onListEvent(type, d) {
  switch (type) {
    case 'calls.reset':
      for (const [id, c] of list.calls) if (!c.older) list.calls.delete(id);
      break;
    case 'calls.upsert':
      for (const c of d.calls) {
        list.calls.set(c.id, c);
        if (list.onChange && c.id === watched.id) list.onChange(c);
      }
      break;
    case 'calls.remove':
      for (const id of d.ids) {
        const c = list.calls.get(id);
        if (c && !c.older) list.calls.delete(id);
      }
      break;
  }
  $('calls-updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  if ($('status').classList.contains('error')) setStatus('');
  draw();
}

// draw renders the list at the next frame: a burst of events draws once.
function draw() {
  if (list.drawPending) return;
  list.drawPending = true;
  requestAnimationFrame(() => {
    list.drawPending = false;
    renderList();
  });
}

const digits = (s) => (s || '').replace(/[^0-9+]/g, '');

// visible returns the calls the filters let through, sorted.
function visible() {
  const number = $('filter-number').value.trim();
  const numberDigits = digits(number);
  const flow = $('filter-flow').value;
  const node = $('filter-node').value;
  const out = [];
  for (const c of list.calls.values()) {
    if (!list.showEnded && c.state !== 'active') continue;
    if (flow && c.flow !== flow) continue;
    if (node && nodeText(c) !== node) continue;
    if (number) {
      const hit = [c.from, c.to].some((n) => (n || '').includes(number) || (numberDigits.length > 1 && digits(n).includes(numberDigits)));
      if (!hit) continue;
    }
    out.push(c);
  }
  const { key, desc } = list.sort;
  const val = (c) => key === 'node' ? nodeText(c) : (c[key] || '');
  out.sort((a, b) => {
    const x = val(a), y = val(b);
    const r = x < y ? -1 : x > y ? 1 : (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    return desc ? -r : r;
  });
  return out;
}

function nodeText(c) {
  if (!c.flow) return '';
  if (c.state === 'ended') return c.node || '';
  return c.flowDone ? 'done' : c.node || 'starting';
}

function renderList() {
  const rows = visible();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  list.page = Math.min(list.page, pages - 1);
  const first = list.page * PAGE;
  const shown = rows.slice(first, first + PAGE);
  $('calls').tBodies[0].replaceChildren(...shown.map(row));
  $('calls-empty').hidden = rows.length > 0;
  $('calls-empty').textContent = list.calls.size ? 'No call matches.' : 'No calls.';
  let active = 0;
  for (const c of list.calls.values()) if (c.state === 'active') active++;
  $('calls-count').textContent = '(' + count(active) + ' active' + (list.showEnded ? ', ' + count(list.calls.size - active) + ' ended' : '') + ')';
  $('page-info').textContent = rows.length ? count(first + 1) + '–' + count(first + shown.length) + ' of ' + count(rows.length) : '';
  $('page-prev').disabled = $('page-first').disabled = list.page === 0;
  $('page-next').disabled = $('page-last').disabled = list.page >= pages - 1;
  $('load-ended').hidden = !list.showEnded || list.endedCursor === null;
  fillOptions();
  for (const th of $('calls').tHead.rows[0].cells) {
    th.setAttribute('aria-sort', th.dataset.sort === list.sort.key ? (list.sort.desc ? 'descending' : 'ascending') : 'none');
  }
}

function row(c) {
  const tr = document.createElement('tr');
  tr.dataset.callId = c.id;
  tr.setAttribute('aria-selected', String(c.id === watched.id));
  if (c.state === 'ended') tr.classList.add('ended');
  const id = el('td', null, 'id');
  id.appendChild(el('code', c.id));
  id.title = c.id;
  const node = el('td', c.flow ? nodeText(c) || '–' : '–', 'node');
  const route = el('td', c.route || '–', 'route');
  tr.append(id, el('td', c.from, 'number'), el('td', c.to, 'number'), route, el('td', c.flow || '–', 'flow'), node, el('td', ago(c.startedAt), 'started'));
  tr.cells[6].title = new Date(c.startedAt).toLocaleString();
  tr.addEventListener('click', () => select(c.id));
  return tr;
}

// fillOptions offers the flows and nodes the calls are in, keeping the
// choice made.
function fillOptions() {
  const flows = new Set(), nodes = new Set();
  const flow = $('filter-flow').value;
  for (const c of list.calls.values()) {
    if (c.flow) flows.add(c.flow);
    if (c.flow && (!flow || c.flow === flow) && nodeText(c)) nodes.add(nodeText(c));
  }
  setOptions($('filter-flow'), flows);
  setOptions($('filter-node'), nodes);
}

function setOptions(sel, values) {
  const keep = sel.value;
  const want = ['', ...[...values].sort()];
  if (keep && !want.includes(keep)) want.push(keep);
  const have = [...sel.options].map((o) => o.value);
  if (have.join('\n') === want.join('\n')) return;
  sel.replaceChildren(...want.map((v) => { const o = el('option', v || 'all'); o.value = v; return o; }));
  sel.value = keep;
}

async function loadEnded() {
  if (list.endedCursor === null) return;
  try {
    const page = await api('/v1/calls?state=ended&limit=' + ENDED_PAGE + (list.endedCursor ? '&cursor=' + enc(list.endedCursor) : ''));
    for (const c of page.items) {
      if (!list.calls.has(c.id)) list.calls.set(c.id, { ...c, older: true });
    }
    list.endedCursor = page.next || null;
    draw();
  } catch (e) {
    setStatus(e.message, true);
  }
}

export function initList() {
  for (const th of $('calls').tHead.rows[0].cells) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      list.sort = { key, desc: list.sort.key === key ? !list.sort.desc : key === 'startedAt' };
      list.page = 0;
      draw();
    });
  }
  let typing = 0;
  $('filter-number').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { list.page = 0; draw(); }, 120);
  });
  $('calls-filter').addEventListener('submit', (ev) => ev.preventDefault());
  for (const id of ['filter-flow', 'filter-node']) {
    $(id).addEventListener('change', () => { list.page = 0; draw(); });
  }
  $('show-ended').addEventListener('change', (ev) => {
    list.showEnded = ev.target.checked;
    list.page = 0;
    if (list.showEnded && list.endedCursor === undefined) loadEnded();
    draw();
  });
  $('load-ended').addEventListener('click', loadEnded);
  $('page-first').addEventListener('click', () => { list.page = 0; draw(); });
  $('page-prev').addEventListener('click', () => { list.page--; draw(); });
  $('page-next').addEventListener('click', () => { list.page++; draw(); });
  $('page-last').addEventListener('click', () => { list.page = 1e9; draw(); });
  $('call-close').addEventListener('click', () => {
    history.replaceState(null, '', '#calls');
    unwatch();
  });
  setInterval(() => { if (!document.hidden && $('view-calls').hidden === false) draw(); }, 15000); // "3 min ago"
}

// ---- one call ----

const watched = {
  id: '',
  call: null,
  es: null,
  version: 0,
  variables: {},
  since: {},
  history: new Map(),
  run: null,          // the flow's recorded run
  graph: null,        // the flow's graph JSON (with the trace)
  pickedVersion: '',  // a version the user picked instead of the call's
  seq: 0,             // the list entry's seq the flow view is up to
  autoTimer: 0,
  flowBusy: null,
};

export function select(id) {
  if (location.hash !== '#call=' + enc(id)) history.replaceState(null, '', '#call=' + enc(id));
  watch(id);
  draw();
}

export function selected() { return watched.id; }

function unwatch() {
  if (watched.es) watched.es.close();
  watched.es = null;
  clearTimeout(watched.autoTimer);
  watched.id = '';
  list.onChange = null;
  $('call-pane').hidden = true;
  $('view-calls').classList.remove('with-call');
  draw();
}

export async function watch(id) {
  unwatch();
  Object.assign(watched, { id, call: null, version: 0, variables: {}, since: {}, history: new Map(), run: null, graph: null, pickedVersion: '', seq: 0 });
  $('call-pane').hidden = false;
  $('view-calls').classList.add('with-call');
  $('call-id').textContent = id;
  $('flow-section').hidden = true;
  $('automations-section').hidden = true;
  $('transfers-section').hidden = true;
  $('call-diagram').replaceChildren();
  renderCall();
  renderVariables([]);
  renderHistory();
  try {
    const [call, hist] = await Promise.all([
      api('/v1/calls/' + enc(id)),
      readHistory(id, 0),
    ]);
    if (watched.id !== id) return;
    watched.call = call;
    for (const h of hist) addHistory(h);
    renderCall();
    renderTransfers();
    renderHistory();
    if (call.flow) refreshFlow(id, true);
  } catch (e) {
    setStatus(e.message, true);
    setStream('error');
    return;
  }
  // The list stream says when the call moves on in its flow: the diagram
  // and the automations follow it, without polling.
  list.onChange = (c) => {
    if (c.seq > watched.seq && watched.call && watched.call.flow) refreshFlow(id, false);
  };
  openStream(id);
}

// ---- the flow of the watched call ----

async function refreshFlow(id, first) {
  if (watched.flowBusy) { watched.flowAgain = true; return; }
  watched.flowBusy = true;
  try {
    do {
      watched.flowAgain = false;
      const entry = list.calls.get(id);
      if (entry) watched.seq = Math.max(watched.seq, entry.seq || 0);
      const flow = watched.call.flow;
      const v = watched.pickedVersion;
      const [run, autos, graph] = await Promise.all([
        apiOr('/v1/calls/' + enc(id) + '/flow', null),
        apiOr('/v1/calls/' + enc(id) + '/automations', { items: [] }),
        apiOr('/v1/flows/' + enc(flow) + '/graph?call=' + enc(id) + (v ? '&version=' + enc(v) : ''), null),
      ]);
      if (watched.id !== id) return;
      watched.run = run;
      renderPath(run);
      renderAutomations(autos.items);
      if (graph) await renderDiagram(graph, first);
      first = false;
    } while (watched.flowAgain && watched.id === id);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    watched.flowBusy = false;
  }
  // Deliveries change without the call moving: look again while one waits.
  clearTimeout(watched.autoTimer);
  if (watched.id === id && $('automations').querySelector('td[data-status="pending"]')) {
    watched.autoTimer = setTimeout(async () => {
      const autos = await apiOr('/v1/calls/' + enc(id) + '/automations', { items: [] }).catch(() => null);
      if (autos && watched.id === id) renderAutomations(autos.items);
      if (watched.id === id) refreshFlow(id, false);
    }, AUTOMATIONS_MS);
  }
}

async function renderDiagram(graph, first) {
  const box = $('call-diagram');
  const trace = graph.trace;
  if (first || box.dataset.version !== graph.version || box.dataset.flow !== graph.flow || !box.firstChild) {
    const svg = await loadDiagram(box, graph.flow, graph.version);
    explainOnHover(svg, graph, () => watched.run);
    if (first) await fillVersions(graph);
  }
  watched.graph = graph;
  mark(box.querySelector('svg'), trace);
  const note = [];
  if (trace && trace.version !== graph.version) note.push('the call runs version ' + trace.version.slice(0, 8) + ' (no longer held); drawn on ' + graph.version.slice(0, 8));
  if (!graph.current) note.push('not the version in force');
  $('flow-version-note').textContent = note.join('; ');
}

// fillVersions offers the versions of the flow the server holds; the
// call's own is chosen.
async function fillVersions(graph) {
  const sel = $('flow-version');
  const versions = await apiOr('/v1/flows/' + enc(graph.flow) + '/versions', { items: [] });
  const callVersion = graph.trace ? graph.trace.version : graph.version;
  sel.replaceChildren(...versions.items.map((v) => {
    const same = versions.items.find((o) => o !== v && o.digest === v.digest);
    let label = v.version.slice(0, 8) + ' · loaded ' + time(v.loadedAt);
    if (v.version === callVersion) label += ' · this call';
    if (v.current) label += ' · in force';
    else if (same) label += ' · same flow';
    const o = el('option', label);
    o.value = v.version;
    return o;
  }));
  sel.value = watched.pickedVersion || callVersion;
  sel.disabled = versions.items.length < 2;
  sel.parentElement.title = versions.items.length < 2 ? 'The server holds one version of this flow.' : 'A reload kept the versions calls started with.';
}

export function initCall() {
  $('flow-version').addEventListener('change', (ev) => {
    const callVersion = watched.graph && watched.graph.trace ? watched.graph.trace.version : '';
    watched.pickedVersion = ev.target.value === callVersion ? '' : ev.target.value;
    if (watched.id) refreshFlow(watched.id, false);
  });
}

function renderPath(run) {
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
    for (const cs of st.cases || []) li.appendChild(caseItem(cs, 'detail case'));
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

// ---- the session of the watched call ----

function setStream(s) {
  const b = $('stream-state');
  b.dataset.state = s;
  b.textContent = s;
}

function openStream(id) {
  const q = {};
  if (watched.version > 0) q.lastEventId = watched.version;
  const es = new EventSource(streamURL('/v1/sessions/' + enc(id) + '/events', q));
  watched.es = es;
  setStream('connecting');
  es.onopen = () => { if (watched.es === es) setStream('live'); };
  es.onerror = () => {
    if (watched.es !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The server refused the stream (or said 204 after the end): try
      // once more later, resuming after the last version seen.
      if (watched.call && watched.call.state === 'ended') { setStream('ended'); return; }
      setStream('reconnecting');
      setTimeout(() => { if (watched.es === es && watched.id === id) openStream(id); }, 3000);
    } else {
      setStream('reconnecting'); // EventSource retries by itself with Last-Event-ID
    }
  };
  const onEvent = (ev) => {
    if (watched.es !== es) return;
    let d;
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    apply(ev.type, d);
    if (ev.type === 'call.ended') {
      es.close();
      setStream('ended');
    }
  };
  for (const t of ['session.snapshot', 'call.started', 'session.updated', 'transfer.status', 'call.referred', 'call.ended']) {
    es.addEventListener(t, onEvent);
  }
}

// apply takes one stream event into the view.
function apply(type, d) {
  const changed = [];
  if (type === 'session.snapshot') {
    for (const name of Object.keys(d.variables || {})) {
      if (json(watched.variables[name]) !== json(d.variables[name])) changed.push(name);
    }
    // Writes between the history read and the stream's start are in the
    // snapshot's variables but not yet in the history shown.
    const known = Math.max(0, ...watched.history.keys());
    if (d.version > known) fillHistory(watched.id, known);
  } else {
    for (const name of Object.keys(d.changes || {})) {
      changed.push(name);
      watched.since[name] = d.version;
    }
    addHistory({ version: d.version, at: d.at, actor: d.actor, changes: d.changes || {} });
    renderHistory();
  }
  watched.version = d.version;
  if (d.variables) {
    watched.variables = d.variables;
  } else {
    // A replayed event (after a reconnection) carries its changes only.
    for (const [name, c] of Object.entries(d.changes || {})) {
      if (c.new === null) delete watched.variables[name]; else watched.variables[name] = c.new;
    }
  }
  if (type === 'call.ended' && watched.call) {
    watched.call.state = 'ended';
    watched.call.endedAt = watched.variables['call.endedAt'] || d.at;
    watched.call.endReason = watched.variables['call.endReason'];
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
  const c = watched.call || {};
  const transfers = watched.variables['sip.transfers'] || c.transfers || [];
  const legs = watched.variables['sip.legs'] || c.legs || [];
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

// readHistory reads a session's history after version after, every page of it.
async function readHistory(id, after) {
  const out = [];
  let q = 'after=' + after;
  for (;;) {
    const page = await api('/v1/sessions/' + enc(id) + '/history?limit=1000&' + q);
    out.push(...page.items);
    if (!page.next) return out;
    q = 'cursor=' + encodeURIComponent(page.next);
  }
}

async function fillHistory(id, after) {
  try {
    const hist = await readHistory(id, after);
    if (watched.id !== id) return;
    for (const h of hist) addHistory(h);
    renderHistory();
    renderVariables([]);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function addHistory(h) {
  watched.history.set(h.version, h);
  for (const name of Object.keys(h.changes || {})) {
    if (!(name in watched.since) || watched.since[name] < h.version) watched.since[name] = h.version;
  }
}

function renderCall() {
  const c = watched.call || {};
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
  $('session-version').textContent = watched.version || '–';
  const names = Object.keys(watched.variables).sort();
  const rows = names.map((name) => {
    const tr = document.createElement('tr');
    tr.dataset.var = name;
    tr.className = 'ns-' + name.split('.')[0];
    if (changed.includes(name)) tr.classList.add('changed');
    const v = el('td', json(watched.variables[name]), 'value');
    v.title = json(watched.variables[name]);
    const n = el('td');
    n.appendChild(el('code', name));
    tr.append(n, v, el('td', watched.since[name] ? 'v' + watched.since[name] : ''));
    return tr;
  });
  $('variables').tBodies[0].replaceChildren(...rows);
}

function renderHistory() {
  const items = [...watched.history.values()].sort((a, b) => b.version - a.version).map((h) => {
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
