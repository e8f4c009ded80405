// callctx console: the calls live (list and one call's session and flow),
// a supervisor's wallboard, and the flows, routing table and calendars as
// diagrams. Plain JavaScript modules with no build step; the charts are
// uPlot's. Everything live comes over Server-Sent Events: nothing polls
// the call list.
'use strict';

import { $, initToken, onToken } from './api.js';
import { initList, initCall, startList, select, selected, watch } from './calls.js';
import { initWallboard, startWallboard, stopWallboard } from './wallboard.js';
import { startFlows, showFromHash } from './flows.js';

const views = ['calls', 'wallboard', 'flows'];
let current = '';

// route shows the view the location's hash names: #calls, #call=ID,
// #wallboard, #flows, #flow=NAME, #routing, #calendar=NAME.
function route() {
  const h = location.hash;
  let view = 'calls';
  if (h === '#wallboard') view = 'wallboard';
  else if (/^#(flows|flow=|routing|calendar=)/.test(h)) view = 'flows';
  for (const v of views) {
    $('view-' + v).hidden = v !== view;
    document.querySelector(`#views a[data-view="${v}"]`).setAttribute('aria-current', v === view ? 'page' : 'false');
  }
  if (view === 'wallboard' && current !== 'wallboard') startWallboard();
  if (view !== 'wallboard') stopWallboard();
  if (view === 'flows' && current !== 'flows') startFlows(h === '#flows' ? '' : decodeURIComponent(h.slice(1)));
  else if (view === 'flows') showFromHash(h);
  current = view;
  const m = /^#call=(.+)$/.exec(h);
  if (m && decodeURIComponent(m[1]) !== selected()) select(decodeURIComponent(m[1]));
}

initToken();
initList();
initCall();
initWallboard();
onToken(() => {
  startList();
  if (selected()) watch(selected());
  if (current === 'wallboard') startWallboard();
  if (current === 'flows') startFlows(location.hash.slice(1));
});
window.addEventListener('hashchange', route);
startList(); // the call list stays live in every view: it is one stream
route();
