// The Flows view: each flow's diagram (any version the server holds), the
// routing table's (which number goes to which flow), and each calendar's
// coming week as a strip of opening ranges with its exceptions.
'use strict';

import { $, api, apiOr, el, setStatus, time } from './api.js';
import { loadDiagram, explainOnHover } from './diagram.js';
import { changeText } from './wallboard.js';

const enc = encodeURIComponent;
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const view = { shown: '', version: '' };

export async function startFlows(what) {
  try {
    const [flows, cals] = await Promise.all([api('/v1/flows'), apiOr('/v1/calendars', { items: [] })]);
    $('flow-list').replaceChildren(...flows.items.map((f) => link('#flow=' + enc(f.name), f.name, f.nodeCount + ' nodes', 'flow', f.name)));
    $('calendar-list').replaceChildren(...(cals.items.length
      ? cals.items.map((c) => link('#calendar=' + enc(c.name), c.name, c.state, 'calendar', c.name))
      : [el('li', 'none', 'muted')]));
    if (!what && flows.items.length) what = 'flow=' + flows.items[0].name;
    await show(what || '');
  } catch (e) {
    setStatus(e.message, true);
  }
}

function link(href, name, note, kind, key) {
  const li = el('li');
  li.dataset[kind] = key;
  const a = el('a', name);
  a.href = href;
  li.append(a, ' ', el('span', note, 'muted'));
  return li;
}

// show shows a flow ("flow=NAME"), the routing table ("routing") or a
// calendar ("calendar=NAME").
async function show(what) {
  const [kind, name] = what.split(/=(.*)/s);
  view.shown = what;
  for (const li of document.querySelectorAll('#flows-pane li')) {
    li.classList.toggle('picked', li.dataset.flow === name && kind === 'flow' || li.dataset.calendar === name && kind === 'calendar');
  }
  $('routing-link').classList.toggle('picked', kind === 'routing');
  $('flow-diagram').hidden = kind !== 'flow';
  $('flow-pick-version').hidden = kind !== 'flow';
  $('routing-view').hidden = kind !== 'routing';
  $('calendar-view').hidden = kind !== 'calendar';
  $('flow-description').textContent = '';
  if (kind === 'flow') return showFlow(name, '');
  if (kind === 'routing') return showRouting();
  if (kind === 'calendar') return showCalendar(name);
  $('flow-title').textContent = 'Pick a flow';
}

export function showFromHash(hash) {
  if (/^#(flow|calendar)=|^#routing$/.test(hash)) {
    show(decodeURIComponent(hash.slice(1)));
    return true;
  }
  return false;
}

// ---- a flow ----

async function showFlow(name, version) {
  $('flow-title').textContent = 'Flow ' + name;
  const [graph, versions] = await Promise.all([
    api('/v1/flows/' + enc(name) + '/graph' + (version ? '?version=' + enc(version) : '')),
    api('/v1/flows/' + enc(name) + '/versions'),
  ]);
  if (view.shown !== 'flow=' + name) return;
  $('flow-description').textContent = (graph.description ? graph.description + ' · ' : '') +
    graph.nodes.length + ' nodes, ' + graph.edges.length + ' edges · hover a node for what it does';
  const sel = $('flows-version');
  sel.replaceChildren(...versions.items.map((v) => {
    const o = el('option', v.version.slice(0, 8) + ' · loaded ' + time(v.loadedAt) + (v.current ? ' · in force' : ''));
    o.value = v.version;
    return o;
  }));
  sel.value = graph.version;
  sel.disabled = versions.items.length < 2;
  sel.onchange = () => showFlow(name, sel.value);
  const svg = await loadDiagram($('flow-diagram'), name, graph.version);
  explainOnHover(svg, graph, () => null);
}

// ---- the routing table ----

async function showRouting() {
  $('flow-title').textContent = 'Routing table';
  const graph = await api('/v1/routing/graph');
  if (view.shown !== 'routing') return;
  const routes = graph.nodes.filter((n) => n.kind === 'route').length;
  $('routing-summary').textContent = routes
    ? (routes === 1 ? '1 route' : routes + ' routes') + ', tried in order; the first that matches the dialled number (and whose trigger fires) picks the flow' +
      (graph.country ? '; national numbers are read as ' + graph.country : '')
    : 'The flows directory has no routing table: calls name their flow.';
  const svg = await loadDiagram($('routing-diagram'), 'routing', graph.version, 'routing');
  explainOnHover(svg, { nodes: graph.nodes.map((n) => ({ ...n, name: n.label, type: n.kind, summary: n.summary })) }, () => null);
}

// ---- a calendar ----

async function showCalendar(name) {
  $('flow-title').textContent = 'Calendar ' + name;
  const c = await api('/v1/calendars/' + enc(name));
  if (view.shown !== 'calendar=' + name) return;
  $('flow-description').textContent = (c.description ? c.description + ' · ' : '') + c.tz;
  const box = $('calendar-view');
  const state = el('p', null, 'cal-state');
  const st = el('strong', c.state + (c.exception ? ' (' + c.exception + ')' : ''));
  st.dataset.state = c.state;
  state.append(st, ' now · ' + changeText(c.nextChange) + ' · ' + c.reason);
  box.replaceChildren(state, el('h3', 'The coming week'), weekStrip(c), exceptionList(c));
}

// days lists the next seven dates (YYYY-MM-DD) from the calendar's today,
// each with its opening ranges: the weekly plan, or the hours of the
// exception that governs it.
function days(c) {
  const today = new Date(c.at.slice(0, 10) + 'T00:00:00Z');
  const upcoming = new Map((c.upcoming || []).map((u) => [u.date, u]));
  const out = [];
  for (let i = 0; i < 7; i++) {
    const d = new Date(today.getTime() + i * 86400000);
    const date = d.toISOString().slice(0, 10);
    const exc = upcoming.get(date);
    out.push({ date, weekday: d.getUTCDay(), exc, ranges: exc ? exc.hours : (c.weekly[DAYS[d.getUTCDay()]] || []) });
  }
  return out;
}

const minutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

// weekStrip draws the coming week: a row per day, its opening ranges as
// bars on 24 hours (a range past midnight goes on into the next row), an
// exception's day marked with its name, and a line at now.
function weekStrip(c) {
  const week = days(c);
  const bars = week.map(() => []);
  // Yesterday's plan may run past midnight into today (exceptions are
  // known from today on: yesterday is taken from the weekly hours).
  const yesterday = DAYS[(week[0].weekday + 6) % 7];
  for (const r of c.weekly[yesterday] || []) {
    const [a, b] = r.split('-').map(minutes);
    if (b <= a && b > 0) bars[0].push([0, b, r]);
  }
  week.forEach((d, i) => {
    for (const r of d.ranges) {
      const [a, b] = r.split('-').map(minutes);
      if (b > a) bars[i].push([a, b, r]);
      else {
        bars[i].push([a, 1440, r]);
        if (i + 1 < 7) bars[i + 1].push([0, b, r]);
      }
    }
  });
  const strip = el('div', null, 'week');
  const scale = el('div', null, 'week-row scale');
  scale.appendChild(el('span', '', 'day'));
  const ticks = el('div', null, 'track');
  for (const h of [0, 6, 12, 18, 24]) {
    const t = el('span', String(h).padStart(2, '0') + ':00', 'tick');
    t.style.left = (h / 24 * 100) + '%';
    ticks.appendChild(t);
  }
  scale.appendChild(ticks);
  strip.appendChild(scale);
  const now = minutes(c.at.slice(11, 16));
  week.forEach((d, i) => {
    const row = el('div', null, 'week-row');
    row.dataset.date = d.date;
    if (d.exc) row.dataset.exception = d.exc.exception;
    const label = el('span', DAY_NAMES[d.weekday] + ' ' + d.date.slice(8, 10) + '.' + d.date.slice(5, 7) + '.', 'day');
    const track = el('div', null, 'track');
    for (const [a, b, r] of bars[i]) {
      const bar = el('span', null, 'open');
      bar.style.left = (a / 1440 * 100) + '%';
      bar.style.width = ((b - a) / 1440 * 100) + '%';
      bar.title = 'open ' + r;
      bar.dataset.range = r;
      track.appendChild(bar);
    }
    if (d.exc) {
      track.classList.add(d.exc.closed ? 'closed-day' : 'special-day');
      track.appendChild(el('span', (d.exc.closed ? 'closed: ' : '') + d.exc.exception + (d.exc.holiday ? ' (' + d.exc.holiday + ')' : ''), 'exc'));
    }
    if (i === 0) {
      const line = el('span', null, 'now');
      line.style.left = (now / 1440 * 100) + '%';
      line.title = 'now, ' + c.at.slice(11, 16);
      track.appendChild(line);
    }
    row.append(label, track);
    strip.appendChild(row);
  });
  return strip;
}

function exceptionList(c) {
  const wrap = el('div');
  wrap.appendChild(el('h3', 'Exceptions in the next 30 days'));
  if (!c.upcoming || !c.upcoming.length) {
    wrap.appendChild(el('p', 'None: the weekly hours hold.', 'muted'));
    return wrap;
  }
  const ul = el('ul', null, 'exceptions');
  for (const u of c.upcoming) {
    const li = el('li');
    li.dataset.date = u.date;
    const wd = DAY_NAMES[new Date(u.date + 'T00:00:00Z').getUTCDay()];
    li.append(el('strong', wd + ' ' + u.date), ' · ' + u.exception + (u.holiday ? ' (' + u.holiday + ')' : '') + ' · ' + (u.closed ? 'closed' : u.hours.join(', ')));
    ul.appendChild(li);
  }
  wrap.appendChild(ul);
  return wrap;
}
