// The Wallboard view: GET /v1/stats/events keeps the figures live; uPlot
// draws the per-minute series. The charts' data are the report's arrays as
// they come, so a chart's last point is the report's last minute.
'use strict';

import { $, api, follow, el, count, setStatus } from './api.js';

const COLORS = { started: '#2457c5', ended: '#8a94a6', answered: '#1f8a4c', delivered: '#1f8a4c', failed: '#b7791f', gaveUp: '#c53030' };
// Colours of the failure reasons, in the order they are first seen.
const REASON_COLORS = ['#c53030', '#b7791f', '#7b3fa0', '#d2691e', '#6a7385', '#2c7a7b'];

const board = {
  stream: null,
  report: null,
  charts: {}, // name -> { plot, keys }
  calendarsTimer: 0,
};

export function initWallboard() {
  $('wb-window').addEventListener('change', () => { if (board.stream) startWallboard(); });
  window.addEventListener('resize', () => {
    for (const c of Object.values(board.charts)) c.plot.setSize(size(c.plot.root.parentElement));
  });
}

// The wallboard's charts and their objects, for tests and the curious.
window.callctxCharts = board.charts;

export function startWallboard() {
  stopWallboard();
  board.stream = follow('/v1/stats/events', { window: $('wb-window').value }, ['stats'], (t, r) => render(r), $('wb-state'));
  refreshCalendars();
}

export function stopWallboard() {
  if (board.stream) board.stream.close();
  board.stream = null;
  clearTimeout(board.calendarsTimer);
}

const sum = (s) => s.reduce((a, b) => a + b, 0);

function render(r) {
  board.report = r;
  $('wb-updated').textContent = 'as of ' + new Date(r.at).toLocaleTimeString();
  $('wb-active').textContent = count(r.activeCalls);
  $('wb-started-total').textContent = count(sum(r.calls.started));
  $('wb-ended-total').textContent = count(sum(r.calls.ended));
  $('wb-delivered').textContent = count(sum(r.automations.delivered));
  $('wb-retried').textContent = count(sum(r.automations.failed));
  $('wb-gaveup').textContent = count(sum(r.automations.gaveUp));
  $('wb-pending').textContent = count(r.automations.pending);
  $('wb-answered').textContent = count(sum(r.transfers.answered));
  const reasons = Object.keys(r.transfers.failedBy).sort();
  $('wb-failed-by').replaceChildren(...(reasons.length ? reasons.map((k) => {
    const li = el('li', count(sum(r.transfers.failedBy[k])) + ' failed: ' + k);
    li.dataset.reason = k;
    return li;
  }) : [el('li', 'none failed')]));

  chart('calls', r.minutes, [['started', 'started', r.calls.started], ['ended', 'ended', r.calls.ended]]);
  chart('transfers', r.minutes, [['answered', 'answered', r.transfers.answered],
    ...reasons.map((k, i) => ['failed:' + k, 'failed: ' + k, r.transfers.failedBy[k], REASON_COLORS[i % REASON_COLORS.length]])]);
  chart('automations', r.minutes, [['delivered', 'delivered', r.automations.delivered],
    ['failed', 'failed, retried', r.automations.failed], ['gaveUp', 'gave up', r.automations.gaveUp]]);
  renderFunnels(r.flows);
  renderTargets(r.targets || []);
}

function size(box) {
  return { width: Math.max(280, box.clientWidth), height: 180 };
}

// chart draws series over the minutes in the chart called name: a new
// uPlot when the series changed, else new data for the one there.
function chart(name, minutes, series) {
  const box = $('chart-' + name);
  const keys = series.map((s) => s[0]).join('|');
  const data = [minutes, ...series.map((s) => s[2])];
  let c = board.charts[name];
  if (c && c.keys === keys) {
    c.plot.setData(data);
    showLast(c.plot);
    return;
  }
  if (c) c.plot.destroy();
  const opts = {
    ...size(box),
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    legend: { live: true },
    // Off the chart, the legend shows the minute under way.
    hooks: { setCursor: [(u) => { if (u.cursor.idx == null) showLast(u); }] },
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(4, Math.ceil(hi * 1.15))] } },
    axes: [
      { stroke: '#6a7385', grid: { stroke: '#eceef2' } },
      { stroke: '#6a7385', grid: { stroke: '#eceef2' }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: (u, vals) => vals.map((v) => count(v)) },
    ],
    series: [{ label: 'minute' }, ...series.map(([key, label, , color]) => ({
      label,
      stroke: color || COLORS[key] || '#2457c5',
      width: 2,
      points: { show: minutes.length <= 60 },
      value: (u, v) => (v == null ? '–' : count(v)),
    }))],
  };
  // eslint-disable-next-line no-undef
  const plot = new uPlot(opts, data, box);
  box.dataset.series = keys;
  board.charts[name] = { plot, keys };
  showLast(plot);
}

// showLast puts the values of the last minute in a chart's legend.
function showLast(u) {
  const n = u.data[0].length;
  if (n && u.cursor.idx == null) u.setLegend({ idx: n - 1 });
}

// renderFunnels shows per flow how many active calls stand at each node,
// as a meter per node against the flow's busiest node.
function renderFunnels(flows) {
  const box = $('funnels');
  if (!flows.length) {
    box.replaceChildren(el('p', 'No flows.', 'empty'));
    return;
  }
  // The busiest flows first.
  const shown = [...flows].sort((a, b) => b.calls - a.calls || (a.flow < b.flow ? -1 : 1));
  box.replaceChildren(...shown.map((f) => {
    const sec = el('section', null, 'funnel');
    sec.dataset.flow = f.flow;
    sec.appendChild(el('h4', f.flow + ' · ' + count(f.calls) + ' active'));
    const t = el('table');
    const top = Math.max(1, ...f.nodes.map((n) => n.calls), f.done, f.starting);
    const rows = f.nodes.map((n) => funnelRow(n.node, n.type, n.calls, top));
    if (f.starting) rows.unshift(funnelRow('starting', '', f.starting, top));
    if (f.done) rows.push(funnelRow('flow ended', '', f.done, top));
    t.append(...rows);
    sec.appendChild(t);
    return sec;
  }));
}

function funnelRow(name, type, calls, top) {
  const tr = el('tr');
  tr.dataset.node = name;
  const bar = el('td', null, 'bar');
  const m = document.createElement('meter');
  m.min = 0;
  m.max = top;
  m.value = calls;
  bar.appendChild(m);
  tr.append(el('td', name, 'name'), el('td', type, 'type muted'), el('td', count(calls), 'calls'), bar);
  if (!calls) tr.classList.add('none');
  return tr;
}

// renderTargets shows the SIP targets the server watches with OPTIONS (sip.keepalive): up,
// down (with why, on hover), or not probed yet.
function renderTargets(targets) {
  $('tile-targets').hidden = targets.length === 0;
  $('targets').tBodies[0].replaceChildren(...targets.map((t) => {
    const tr = el('tr');
    tr.dataset.target = t.target;
    const state = t.up === null || t.up === undefined ? 'unknown' : (t.up ? 'up' : 'down');
    const st = el('td', state, 'state');
    st.dataset.state = state;
    st.title = t.up ? (t.status ? t.status + (t.rttMs ? ' in ' + t.rttMs.toFixed(1) + ' ms' : '') : '') : (t.error || '');
    tr.append(el('td', t.target), st, el('td', t.since ? new Date(t.since).toLocaleTimeString() : '–'));
    return tr;
  }));
}

// ---- opening hours ----

const CALENDARS_MS = 30000; // calendars change by the minute: their state is read this often

// refreshCalendars shows each calendar open or closed now and when that
// changes ("closes in 42 min"); the tile stays hidden without calendars.
async function refreshCalendars() {
  clearTimeout(board.calendarsTimer);
  try {
    const list = await api('/v1/calendars');
    renderCalendars(list.items);
  } catch (e) {
    setStatus(e.message, true);
  }
  if (board.stream) board.calendarsTimer = setTimeout(refreshCalendars, CALENDARS_MS);
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
export function changeText(ch) {
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
