// What every view of the console shares: the token, calls to the API,
// event streams, the status line and small DOM helpers. Every value from
// the API is shown with textContent, never as markup: session values come
// from outside systems.
'use strict';

const TOKEN_KEY = 'callctx.token';

export const $ = (id) => document.getElementById(id);

export const auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  set(t) {
    this.token = t;
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class APIError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// api reads a JSON resource; as 'text' it returns the body as text.
export async function api(path, as) {
  const headers = { Accept: as === 'text' ? '*/*' : 'application/json' };
  if (auth.token) headers.Authorization = 'Bearer ' + auth.token;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store' });
  } catch (e) {
    throw new APIError(0, 'callctx does not answer');
  }
  if (res.ok) return as === 'text' ? res.text() : res.json();
  let detail = res.status + ' ' + res.statusText;
  try {
    const p = await res.json();
    if (p && p.detail) detail = p.detail;
  } catch (e) { /* not a problem document */ }
  if (res.status === 401 || res.status === 403) askForToken();
  throw new APIError(res.status, detail);
}

// apiOr returns fallback when the API answers 404.
export async function apiOr(path, fallback) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return fallback;
    throw e;
  }
}

// streamURL adds the token (EventSource cannot send headers) and params.
export function streamURL(path, params) {
  const q = new URLSearchParams(params || {});
  if (auth.token) q.set('access_token', auth.token);
  const s = q.toString();
  return s ? path + (path.includes('?') ? '&' : '?') + s : path;
}

// follow opens an event stream and hands each named event's JSON to
// onEvent(type, data, id); badge shows its state. It reconnects by itself
// (EventSource does, with Last-Event-ID) and after a refusal; close() ends it.
export function follow(path, params, types, onEvent, badge) {
  let es = null;
  let closed = false;
  let retry = 0;
  const setBadge = (s) => {
    if (!badge) return;
    badge.dataset.state = s;
    badge.textContent = s;
  };
  const open = () => {
    if (closed) return;
    es = new EventSource(streamURL(path, typeof params === 'function' ? params() : params));
    setBadge('connecting');
    es.onopen = () => setBadge('live');
    es.onerror = () => {
      if (closed) return;
      setBadge('reconnecting');
      if (es.readyState === EventSource.CLOSED) {
        // Refused: EventSource does not tell why. A plain read of the same
        // scope does, and asks for a token when that is the reason.
        api('/v1/flows').then(() => {}, (e) => setStatus(e.message, true));
        clearTimeout(retry);
        retry = setTimeout(open, 3000);
      }
    };
    for (const t of types) {
      es.addEventListener(t, (ev) => {
        let d;
        try { d = JSON.parse(ev.data); } catch (e) { return; }
        onEvent(t, d, ev.lastEventId);
      });
    }
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      if (es) es.close();
      setBadge('idle');
    },
  };
}

// ---- status line and token ----

const tokenHooks = [];

// onToken registers what to do when the token changes.
export function onToken(f) { tokenHooks.push(f); }

export function setStatus(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!isError);
}

function showTokenState() {
  $('token').placeholder = auth.token ? 'token in use (enter another to switch)' : 'bearer token (sessions:read)';
}

export function askForToken() {
  $('token-form').classList.add('needed');
  setStatus('The API wants a token with the sessions:read scope.', true);
}

export function initToken() {
  showTokenState();
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    auth.set($('token').value.trim());
    $('token').value = '';
    $('token-form').classList.remove('needed');
    showTokenState();
    setStatus('');
    for (const f of tokenHooks) f();
  });
  $('token-forget').addEventListener('click', () => {
    auth.set('');
    showTokenState();
    setStatus('Token forgotten.');
    for (const f of tokenHooks) f();
  });
}

// ---- DOM and text helpers ----

export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

export function json(v) {
  return v === undefined ? '' : JSON.stringify(v);
}

export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleTimeString();
}

export function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  return Math.floor(s / 3600) + ' h ago';
}

export const count = (n) => Number(n).toLocaleString('en');

// caseItem renders one case a switch evaluated: its trigger, whether it
// fired, and the trigger's explanation.
export function caseItem(c, cls) {
  const d = el('div', null, cls);
  d.dataset.trigger = c.trigger;
  d.append('case ');
  d.appendChild(el('code', c.trigger));
  d.append(' ');
  d.appendChild(el('span', c.result ? 'fired' : 'did not fire', c.result ? 'fired' : 'not-fired'));
  if (c.explain) d.appendChild(explainList([c.explain]));
  return d;
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
