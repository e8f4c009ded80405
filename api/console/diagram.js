// Flow diagrams: the SVG the server lays out (GET /v1/flows/{name}/graph
// ?format=svg), put into the page as elements so that a call's path can be
// marked on it, and explained on hover.
'use strict';

import { $, api, el, caseItem } from './api.js';

const svgCache = new Map(); // "kind:name@version" -> SVG text
const enc = encodeURIComponent;

// loadDiagram puts the diagram of a flow (or of the routing table, with
// kind 'routing') into container and returns its <svg>.
export async function loadDiagram(container, name, version, kind) {
  const path = kind === 'routing' ? '/v1/routing/graph' : '/v1/flows/' + enc(name) + '/graph';
  const key = (kind || 'flow') + ':' + name + '@' + (version || '');
  let text = svgCache.get(key);
  if (!text) {
    text = await api(path + '?format=svg' + (version ? '&version=' + enc(version) : ''), 'text');
    svgCache.set(key, text);
  }
  const svg = parseSVG(text);
  container.replaceChildren(svg);
  container.dataset.flow = name;
  container.dataset.version = version || '';
  return svg;
}

// parseSVG parses the server's SVG and keeps only drawing: no scripts,
// links, event handlers or foreign content, and no <title>s (the page
// shows its own tips).
function parseSVG(text) {
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  const root = doc.documentElement;
  if (root.nodeName !== 'svg') throw new Error('the diagram is not SVG');
  for (const n of root.querySelectorAll('script, foreignObject, title, style')) n.remove();
  for (const a of root.querySelectorAll('a')) a.replaceWith(...a.childNodes);
  for (const n of root.querySelectorAll('*')) {
    for (const at of [...n.attributes]) {
      if (/^on/i.test(at.name) || /href$/i.test(at.name)) n.removeAttribute(at.name);
    }
  }
  return document.importNode(root, true);
}

// group returns the element of a node or edge ID in svg.
export function group(svg, id) {
  return svg.querySelector('#' + CSS.escape(id));
}

// mark marks a call's trace on svg: the nodes it passed (visited, with the
// steps in data-steps), the edges it took (taken) and where it stands
// (current).
export function mark(svg, trace) {
  for (const g of svg.querySelectorAll('g.node, g.edge')) {
    g.classList.remove('visited', 'taken', 'current');
    delete g.dataset.steps;
  }
  if (!trace) return;
  trace.nodes.forEach((name, i) => {
    const g = group(svg, 'node-' + name);
    if (!g) return;
    g.classList.add('visited');
    g.dataset.steps = (g.dataset.steps ? g.dataset.steps + ',' : '') + (i + 1 + (trace.dropped || 0));
  });
  for (const id of trace.edges) {
    const g = group(svg, id);
    if (g) g.classList.add('taken');
  }
  if (trace.current) {
    const g = group(svg, 'node-' + trace.current);
    if (g) g.classList.add('current');
  }
}

// explainOnHover shows, over each node of svg, what it does and, for a
// call, what happened there: a switch's cases with their trigger
// explanations, an action's outcome, a wait's end. graph is the JSON
// graph; run() returns the call's recorded run, or null.
export function explainOnHover(svg, graph, run) {
  const tip = $('diagram-tip');
  const byID = new Map(graph.nodes.map((n) => [n.id, n]));
  for (const g of svg.querySelectorAll('g.node')) {
    const node = byID.get(g.id);
    if (!node) continue;
    g.addEventListener('mouseenter', (ev) => {
      tip.replaceChildren(...tipContent(node, run()));
      tip.hidden = false;
      place(tip, ev);
    });
    g.addEventListener('mousemove', (ev) => place(tip, ev));
    g.addEventListener('mouseleave', () => { tip.hidden = true; });
  }
}

function place(tip, ev) {
  const pad = 14;
  const x = Math.min(ev.clientX + pad, window.innerWidth - tip.offsetWidth - pad);
  const y = ev.clientY + pad + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - pad : ev.clientY + pad;
  tip.style.left = Math.max(pad, x) + 'px';
  tip.style.top = Math.max(pad, y) + 'px';
}

function tipContent(node, run) {
  const out = [el('div', node.name + ' · ' + node.type, 'tip-head'), el('div', node.summary)];
  if (node.description) out.push(el('div', node.description, 'muted'));
  const steps = run ? (run.path || []).filter((s) => s.node === node.name) : [];
  if (run && !steps.length) out.push(el('div', 'The call has not been here.', 'muted'));
  const last = steps[steps.length - 1];
  if (!last) return out;
  if (steps.length > 1) out.push(el('div', 'Passed ' + steps.length + ' times; the last:', 'muted'));
  if (last.wait) {
    out.push(el('div', 'Waited ' + last.wait.waitedMs + ' ms for ' + last.wait.trigger + ': ' + (last.wait.fired ? 'it fired' : 'timed out')));
  }
  for (const c of last.cases || []) out.push(caseItem(c, 'case'));
  if (last.outcome) out.push(el('div', 'Outcome: ' + last.outcome.status + (last.outcome.input !== undefined ? ' (input ' + JSON.stringify(last.outcome.input) + ')' : '')));
  if (last.automations && last.automations.length) out.push(el('div', 'Queued ' + last.automations.map((a) => a.automation).join(', ')));
  if (last.next) out.push(el('div', '→ ' + last.next, 'muted'));
  if (last.note) out.push(el('div', last.note, 'muted'));
  return out;
}
