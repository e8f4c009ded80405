// Drives the console in headless Chromium (Debian's, never a downloaded
// one) against a running callctx, and checks what a person sees in each
// view. Run by TestConsole_Browser with CALLCTX_URL, CALLCTX_TOKEN (an admin
// token named "postman", for the REST calls), CALLCTX_READ_TOKEN
// (sessions:read: what the console is given), FLOWS_DIR (the server's flows
// directory, a copy this script may change; writing .reload there makes the
// test reload it) and SHOTS (where to keep the screenshots). Exits non-zero
// on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = must('CALLCTX_URL');
const adminToken = must('CALLCTX_TOKEN');
const readToken = must('CALLCTX_READ_TOKEN');
const flowsDir = must('FLOWS_DIR');
const shots = must('SHOTS');
const TIMEOUT = 15000;
const MANY = 1000; // calls for the list's paging, sorting and filters

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(name + ' is not set');
  return v;
}

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

// api calls callctx as the CRM would, outside the browser.
async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + adminToken, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

// eventually retries f until it returns a truthy value.
async function eventually(what, f, ms = TIMEOUT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error('check failed: ' + what + ' (last: ' + JSON.stringify(last) + ')');
    await new Promise((r) => setTimeout(r, 200));
  }
}

const step = (s) => console.log('console test: ' + s);

const userDataDir = mkdtempSync(join(tmpdir(), 'callctx-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60000,
  });
  context.setDefaultTimeout(TIMEOUT);
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    // The first load is refused with 401 until the token is given: Chromium
    // logs that failed load, which is expected.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push('console error: ' + m.text());
  });
  const shot = async (name) => {
    await page.screenshot({ path: join(shots, name), fullPage: true });
    step('screenshot ' + name);
  };
  const view = async (name) => {
    await page.click(`#views a[data-view="${name}"]`);
    await page.waitForSelector(`#view-${name}:not([hidden])`);
  };

  step('open the console: it asks for a token');
  await page.goto(base + '/console');
  await page.waitForSelector('#token-form.needed');
  await page.fill('#token', readToken);
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#list-state[data-state="live"]');
  await page.waitForSelector('#calls-updated:not(:empty)');

  step('a call the routing table routed shows its route');
  const routed = await api('POST', '/v1/calls', { from: '+4940555000', to: '+49 30 9990000' });
  check(routed.route === 'hotline' && routed.flow === 'hotline', 'the hotline number is routed: ' + JSON.stringify(routed));
  const routedRow = page.locator(`#calls tbody tr[data-call-id="${routed.id}"]`);
  await routedRow.locator('td.route').filter({ hasText: 'hotline' }).waitFor();
  await api('POST', `/v1/calls/${routed.id}/end`, { reason: 'done' });
  await routedRow.waitFor({ state: 'detached' }); // ended calls leave the list unless asked for

  step('a call created over REST appears');
  const call = await api('POST', '/v1/calls', {
    from: '+4930123456', to: '+4940555000', variables: { 'ivr.language': 'de' },
  });
  const row = page.locator(`#calls tbody tr[data-call-id="${call.id}"]`);
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  check(cells[0] === call.id && cells[1] === '+4930123456' && cells[2] === '+4940555000' && cells[3] === '–', 'the row shows id, from, to, no route: ' + JSON.stringify(cells));

  await wholeNumbers(page, 'the list alone');

  step('watch its session');
  await row.click();
  await page.waitForSelector('#stream-state[data-state="live"]');
  const value = (name) => page.locator(`#variables tr[data-var="${name}"] td.value`);
  await value('call.from').filter({ hasText: '"+4930123456"' }).waitFor();
  check((await value('ivr.language').textContent()) === '"de"', 'the seed variable is shown');
  check((await page.textContent('#session-version')) === '1', 'version 1');
  await wholeNumbers(page, 'beside a watched call');

  // Anything that reloads or navigates the page would lose this marker.
  await page.evaluate(() => { window.callctxMarker = 'same document'; });
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });

  step('a session write shows up without a reload');
  const xss = '<img src=x onerror="window.callctxXSS=1">';
  await api('POST', `/v1/sessions/${call.id}`, {
    'ivr.email': 'jane@example.com', 'ivr.premium': true, 'ivr.note': xss,
  });
  await value('ivr.email').filter({ hasText: '"jane@example.com"' }).waitFor();
  check((await value('ivr.premium').textContent()) === 'true', 'ivr.premium is true');
  check((await page.textContent('#session-version')) === '2', 'version 2');
  await page.locator('#history li[data-version="2"] .meta').filter({ hasText: 'postman' }).waitFor();
  check(await page.evaluate(() => window.callctxMarker) === 'same document', 'the page was not reloaded');
  check(navigations === 0, 'no navigation happened');

  step('values from outside are text, never markup');
  check((await value('ivr.note').textContent()) === JSON.stringify(xss), 'the note is shown as its JSON text');
  check(await page.locator('#variables img, #history img').count() === 0, 'no element was made from a value');
  check(await page.evaluate(() => window.callctxXSS) === undefined, 'no script ran');

  step('the end of the call reaches the console');
  await api('POST', `/v1/calls/${call.id}/end`, { reason: 'caller-hangup' });
  await page.waitForSelector('#stream-state[data-state="ended"]');
  await page.locator('#call-state').filter({ hasText: 'ended' }).waitFor();
  check((await value('call.endReason').textContent()) === '"caller-hangup"', 'call.endReason is shown');

  await flowCall(page, value);
  const busy = await manyCalls(page);
  await sipTransfer(page, value, view, shot);
  await wallboard(page, view);
  for (const c of busy) await api('POST', `/v1/calls/${c.id}/end`, { reason: 'done' });
  await flowsView(page, view, shot);

  check(problems.length === 0, 'the page logged no errors: ' + problems.join('; '));
  step('ok');

  // ---- the steps ----

  // wholeNumbers checks that every phone number in the list is shown whole:
  // the text is the number the API has, and its cell is wide enough for it.
  async function wholeNumbers(page, where) {
    const cut = await page.evaluate(() => {
      const out = [];
      const pane = document.getElementById('calls-pane').getBoundingClientRect();
      for (const td of document.querySelectorAll('#calls tbody td.number')) {
        const r = document.createRange();
        r.selectNodeContents(td);
        const text = r.getBoundingClientRect();
        const cell = td.getBoundingClientRect();
        if (td.scrollWidth > td.clientWidth + 1 || text.right > cell.right + 1 || cell.right > pane.right + 1) out.push(td.textContent);
      }
      return { cut: out, n: document.querySelectorAll('#calls tbody td.number').length, width: window.innerWidth };
    });
    check(cut.n > 0 && cut.cut.length === 0 && cut.width === 1280, `numbers are whole at 1280 px, ${where}: ${JSON.stringify(cut)}`);
    step(`${cut.n} numbers whole at 1280 px, ${where}`);
  }

  async function flowCall(page, value) {
    step('a call with a flow: its node in the list, its path on the diagram');
    const flowCall = await api('POST', '/v1/calls', { from: '+4930999888', to: '+4940555000', flow: 'order-status' });
    const flowRow = page.locator(`#calls tbody tr[data-call-id="${flowCall.id}"]`);
    await flowRow.locator('td.node').filter({ hasText: 'welcome' }).waitFor();
    await flowRow.click();
    await page.locator('#flow-path li[data-node="lookup-number"]').waitFor();
    await page.locator('#automations tr[data-automation="crm-lookup-number"] td[data-status="delivered"]').waitFor();
    await api('POST', `/v1/calls/${flowCall.id}/flow/next`, {});
    await api('POST', `/v1/sessions/${flowCall.id}`, { 'ivr.email': 'max@example.com', 'ivr.premium': true, 'ivr.track_id': 'TRK-77001' });
    await api('POST', `/v1/calls/${flowCall.id}/flow/next`, { status: 'done', step: 1 });
    const sw = page.locator('#flow-path li[data-node="premium-check"] .case[data-trigger="premium"]');
    await sw.locator('.fired').waitFor();
    const explained = await sw.locator('ul.explain li').allTextContents();
    check(explained.some((t) => t.startsWith('ivr.premium eq true — saw true')), 'the explanation shows ivr.premium as seen: ' + JSON.stringify(explained));
    await page.locator('#flow-summary').filter({ hasText: 'at to-agent, step 2' }).waitFor();
    await flowRow.locator('td.node').filter({ hasText: 'to-agent' }).waitFor();
    await value('ivr.email').filter({ hasText: '"max@example.com"' }).waitFor();
    await pathMatches(page, flowCall.id);

    step('hovering the switch explains its trigger');
    await page.hover('#call-diagram g.node#node-premium-check');
    const tip = page.locator('#diagram-tip');
    await tip.waitFor();
    const tipText = await tip.textContent();
    check(/premium-check · switch/.test(tipText) && tipText.includes('case premium fired') && tipText.includes('ivr.premium eq true — saw true'),
      'the tip explains the switch: ' + tipText);
    await page.mouse.move(5, 5);
    await tip.waitFor({ state: 'hidden' });
    await shot('console-call.png');

    step('the path moves on live: the transfer fails, the call says goodbye');
    await api('POST', `/v1/calls/${flowCall.id}/flow/next`, { status: 'failed', step: 2 });
    await page.locator('#call-diagram g.node.current#node-goodbye').waitFor();
    await pathMatches(page, flowCall.id);

    step('a reload keeps the version the call runs; the picker shows the new one');
    const before = await api('GET', '/v1/flows/order-status/versions');
    const file = join(flowsDir, 'order-status.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('prompt: welcome-order-status', 'prompt: welcome-new-menu'));
    writeFileSync(join(flowsDir, '.reload'), '');
    await eventually('the test reloaded the flows', () => existsSync(join(flowsDir, '.reloaded')));
    check(readFileSync(join(flowsDir, '.reloaded'), 'utf8') === 'ok', 'the reload went through');
    const after = await api('GET', '/v1/flows/order-status/versions');
    check(after.items.length === before.items.length + 1 && after.items[0].current, 'the server holds the new version: ' + JSON.stringify(after));
    // Re-open the call: the picker lists both versions, the call's chosen.
    await page.click('#call-close');
    await flowRow.click();
    await page.locator('#call-diagram g.node.current#node-goodbye').waitFor();
    const options = await page.locator('#flow-version option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    check(options.length === after.items.length, 'the picker lists every version: ' + JSON.stringify(options));
    const callVersion = before.items[0].version;
    check(await page.inputValue('#flow-version') === callVersion, 'the call\'s version is chosen');
    check(options.some(([v, t]) => v === callVersion && t.includes('this call')), 'the call\'s version is named so: ' + JSON.stringify(options));
    const welcome = page.locator('#call-diagram g#node-welcome text');
    check((await welcome.allTextContents()).join(' ').includes('welcome-order-status'), 'the call\'s version shows the old prompt');
    await page.selectOption('#flow-version', after.items[0].version);
    await page.locator('#call-diagram g#node-welcome text').filter({ hasText: 'welcome-new-menu' }).waitFor();
    await pathMatches(page, flowCall.id, after.items[0].version);
    await page.selectOption('#flow-version', callVersion);
    await page.locator('#call-diagram g#node-welcome text').filter({ hasText: 'welcome-order-status' }).waitFor();
    await api('POST', `/v1/calls/${flowCall.id}/end`, { reason: 'caller-hangup' });
  }

  // pathMatches checks the diagram's marks against the path the API
  // recorded: every node passed marked visited and none else, the node the
  // call stands at marked current, and each edge marked taken joining two
  // nodes the path passed one after the other.
  async function pathMatches(page, id, version) {
    const run = await api('GET', `/v1/calls/${id}/flow`);
    const graph = await api('GET', `/v1/flows/order-status/graph?call=${id}` + (version ? '&version=' + version : ''));
    const want = [...new Set(run.path.map((s) => 'node-' + s.node))].sort();
    await eventually('the diagram marks the recorded path ' + JSON.stringify(want), async () => {
      const seen = await page.evaluate(() => ({
        visited: [...document.querySelectorAll('#call-diagram g.node.visited')].map((g) => g.id).sort(),
        current: [...document.querySelectorAll('#call-diagram g.node.current')].map((g) => g.id),
        taken: [...document.querySelectorAll('#call-diagram g.edge.taken')].map((g) => g.id).sort(),
      }));
      const edges = new Map(graph.edges.map((e) => [e.id, e]));
      const pairs = new Set(run.path.slice(1).map((s, i) => run.path[i].node + '>' + s.node));
      if (!run.done && run.path.length) pairs.add(run.path[run.path.length - 1].node + '>' + run.node);
      return JSON.stringify(seen.visited) === JSON.stringify(want) &&
        JSON.stringify(seen.current) === JSON.stringify(run.done ? [] : ['node-' + run.node]) &&
        seen.taken.length === graph.trace.edges.length && seen.taken.length >= run.path.length - 1 &&
        seen.taken.every((e) => edges.has(e) && pairs.has(edges.get(e).from + '>' + edges.get(e).to)) && seen;
    });
    step(`the diagram marks the recorded path: ${run.path.map((s) => s.node).join(' → ')}${run.done ? '' : ' (at ' + run.node + ')'}`);
  }

  async function manyCalls(page) {
    step(`${MANY} calls: paged, sorted, filtered, without polling`);
    await page.click('#call-close');
    let polled = 0;
    const onRequest = (r) => { if (/\/v1\/calls(\?|$)/.test(new URL(r.url()).pathname + new URL(r.url()).search)) polled++; };
    page.on('request', onRequest);
    const made = [];
    let next = 0;
    const worker = async () => {
      while (next < MANY) {
        const i = next++;
        const c = await api('POST', '/v1/calls', { from: '+4930' + String(5000000 + i), to: '+49800' + String(1000000 + (i % 7)) });
        made.push(c);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    // The list and the board are read one after the other: retried until
    // they agree.
    const active = await eventually('the list counts every active call', async () => {
      const n = (await api('GET', '/v1/stats?window=1m')).activeCalls;
      const shown = await page.textContent('#calls-count');
      return n > MANY && shown === '(' + n.toLocaleString('en') + ' active)' && n;
    });
    await page.locator('#page-info').filter({ hasText: '1–50 of ' + active.toLocaleString('en') }).waitFor();
    check(await page.locator('#calls tbody tr').count() === 50, 'a page holds 50 calls');
    await page.click('#page-last');
    await page.locator('#page-info').filter({ hasNotText: /^1–50 / }).waitFor();
    const m = /^([\d,]+)–([\d,]+) of ([\d,]+)$/.exec(await page.textContent('#page-info'));
    const num = (s) => Number(s.replace(/,/g, ''));
    check(m && num(m[2]) === active && num(m[3]) === active && (num(m[1]) - 1) % 50 === 0, 'the last page ends with the last call: ' + (m && m[0]));
    check(await page.locator('#calls tbody tr').count() === active - num(m[1]) + 1, 'the last page holds the rest');

    step('sort by From, both ways');
    await page.click('#page-first');
    await page.locator('#page-info').filter({ hasText: /^1–50 / }).waitFor();
    await page.click('#calls th[data-sort="from"] button');
    await page.waitForSelector('#calls th[data-sort="from"][aria-sort="ascending"]');
    const froms = await page.locator('#calls tbody td.number:nth-child(2)').allTextContents();
    const sorted = [...froms].sort();
    check(JSON.stringify(froms) === JSON.stringify(sorted), 'sorted by from, ascending: ' + froms.slice(0, 5));
    await page.click('#calls th[data-sort="from"] button');
    await page.waitForSelector('#calls th[data-sort="from"][aria-sort="descending"]');
    const desc = await page.locator('#calls tbody td.number:nth-child(2)').allTextContents();
    check(JSON.stringify(desc) === JSON.stringify([...desc].sort().reverse()) && desc[0] > froms[0], 'then descending: ' + desc.slice(0, 5));

    step('filter by number');
    const one = made[MANY - 7];
    await page.fill('#filter-number', one.from.slice(-7));
    await page.locator('#page-info').filter({ hasText: '1–1 of 1' }).waitFor();
    check((await page.locator('#calls tbody tr').getAttribute('data-call-id')) === one.id, 'the one call with that number');
    await page.fill('#filter-number', '800 1000003');
    const byTo = made.filter((c) => c.to === '+498001000003').length;
    await page.locator('#page-info').filter({ hasText: ' of ' + byTo }).waitFor();
    await page.fill('#filter-number', '');

    step('filter by flow and node');
    const flowCalls = [];
    for (let i = 0; i < 3; i++) flowCalls.push(await api('POST', '/v1/calls', { from: '+4930777000' + i, to: '+4940555000', flow: 'order-status' }));
    await api('POST', `/v1/calls/${flowCalls[0].id}/flow/next`, {});
    await page.selectOption('#filter-flow', 'order-status');
    await page.locator('#page-info').filter({ hasText: '1–3 of 3' }).waitFor();
    await eventually('the node filter offers welcome', async () => (await page.locator('#filter-node option').allTextContents()).includes('welcome'));
    await page.selectOption('#filter-node', 'welcome');
    await page.locator('#page-info').filter({ hasText: '1–3 of 3' }).waitFor();
    // One of them is asked for its first action: it stays at welcome, now
    // presented; the stream says so and the list follows.
    const nodes = await page.locator('#calls tbody td.node').allTextContents();
    check(nodes.every((n) => n === 'welcome'), 'every call shown stands at welcome: ' + nodes);
    check(polled === 0, `the list did not poll the API (${polled} requests to /v1/calls)`);
    page.off('request', onRequest);
    await page.selectOption('#filter-node', '');
    await page.selectOption('#filter-flow', '');
    await shot('console-calls.png');
    return flowCalls;
  }

  async function wallboard(page, view) {
    step('the wallboard: its figures are GET /v1/stats');
    await view('wallboard');
    await page.waitForSelector('#wb-state[data-state="live"]');
    const hours = page.locator('#calendars tr[data-calendar="support-hours"]');
    await hours.waitFor();
    const cal = await api('GET', '/v1/calendars/support-hours');
    const hourCells = await hours.locator('td').allTextContents();
    check(hourCells[1].startsWith(cal.state), 'the calendar shows its state (' + cal.state + '): ' + JSON.stringify(hourCells));
    check(/^(opens|closes) in (less than a minute|\d+ (min|h|days))/.test(hourCells[2]), 'the next change reads like "closes in 42 min": ' + JSON.stringify(hourCells));
    check(hourCells[2].startsWith(cal.open ? 'closes' : 'opens'), 'the next change agrees with the state: ' + JSON.stringify(hourCells));
    check(hourCells[3] === cal.reason, 'what decided is shown: ' + JSON.stringify(hourCells));

    step('the wallboard: the SBC that does not answer OPTIONS shows down');
    await page.locator('#targets td.state[data-state="down"]').first().waitFor();
    const targetCells = await page.locator('#targets tbody tr').first().locator('td').allTextContents();
    check(/^sip:127\.0\.0\.1:\d+$/.test(targetCells[0]) && targetCells[1] === 'down', 'the target row says down: ' + JSON.stringify(targetCells));
    const rows = await page.locator('#targets tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.dataset.target, tr.querySelector('td.state').dataset.state]));
    const wantTargets = (await api('GET', '/v1/stats?window=1m')).targets.map((x) => [x.target, x.up === null ? 'unknown' : x.up ? 'up' : 'down']);
    check(JSON.stringify(rows) === JSON.stringify(wantTargets), 'the targets are those of /v1/stats: ' + JSON.stringify(rows) + ' vs ' + JSON.stringify(wantTargets));

    // The page and the API are read one after the other: retried until they
    // agree (a minute may turn in between).
    const agreed = await eventually('the charts\' last points match /v1/stats', async () => {
      const stats = await api('GET', '/v1/stats?window=1h');
      const shown = await page.evaluate(() => {
        const c = window.callctxCharts;
        const legend = (name) => [...document.querySelectorAll(`#chart-${name} .u-legend .u-series`)].map((s) => s.querySelector('.u-value').textContent);
        return {
          minutes: c.calls.plot.data[0].length,
          lastMinute: c.calls.plot.data[0].at(-1),
          started: c.calls.plot.data[1].at(-1),
          ended: c.calls.plot.data[2].at(-1),
          answered: c.transfers.plot.data[1].at(-1),
          delivered: c.automations.plot.data[1].at(-1),
          callsLegend: legend('calls'),
          active: document.getElementById('wb-active').textContent,
        };
      });
      const n = (v) => v.toLocaleString('en');
      const ok = shown.minutes === 60 && shown.lastMinute === stats.minutes.at(-1) &&
        shown.started === stats.calls.started.at(-1) && shown.ended === stats.calls.ended.at(-1) &&
        shown.answered === stats.transfers.answered.at(-1) && shown.delivered === stats.automations.delivered.at(-1) &&
        shown.callsLegend[1] === n(stats.calls.started.at(-1)) && shown.callsLegend[2] === n(stats.calls.ended.at(-1)) &&
        shown.active === n(stats.activeCalls);
      return ok && { shown, stats };
    });
    check(agreed.stats.calls.started.at(-1) > 0 || agreed.stats.calls.started.at(-2) > 0, 'this run\'s calls are counted');
    check(Number((await page.textContent('#wb-answered')).replace(/,/g, '')) === agreed.stats.transfers.answered.reduce((a, b) => a + b, 0) &&
      agreed.stats.transfers.totals.answered >= 1, 'the answered SIP transfer is counted');
    step(`charts end at ${agreed.shown.started} started, ${agreed.shown.ended} ended this minute, as /v1/stats says; ${agreed.shown.active} active`);

    step('hovering the last point shows its values');
    const over = page.locator('#chart-calls .u-over');
    // Retried like the charts above: a minute may turn between the hover and the API's answer.
    await eventually('the legend at the last point shows /v1/stats\' last minute', async () => {
      const box = await over.boundingBox();
      await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2);
      const legend = await page.locator('#chart-calls .u-legend .u-series .u-value').allTextContents();
      const stats = await api('GET', '/v1/stats?window=1h');
      if (legend[1] !== stats.calls.started.at(-1).toLocaleString('en')) {
        throw new Error('legend ' + JSON.stringify(legend) + ', started ' + stats.calls.started.at(-1)); // kept as the last try's
      }
      return true;
    });
    await page.mouse.move(5, 5);

    step('calls in each node, as /v1/stats counts them');
    const funnel = await eventually('the funnel matches /v1/stats', async () => {
      const s = await api('GET', '/v1/stats');
      const f = s.flows.find((x) => x.flow === 'order-status');
      const rows = await page.locator('#funnels section[data-flow="order-status"] tr').evaluateAll((trs) => trs.map((tr) => [tr.dataset.node, tr.querySelector('td.calls').textContent]));
      const want = f.nodes.map((nd) => [nd.node, String(nd.calls)]);
      if (f.starting) want.unshift(['starting', String(f.starting)]);
      if (f.done) want.push(['flow ended', String(f.done)]);
      return JSON.stringify(rows) === JSON.stringify(want) && rows;
    });
    check(funnel.length >= 6, 'every node of order-status is listed: ' + JSON.stringify(funnel));
    await shot('console-wallboard.png');
  }

  async function flowsView(page, view, shot) {
    step('the flows: each drawn, one element per node and edge of its graph');
    await view('flows');
    await page.click('#flow-list li[data-flow="order-status"] a');
    const graph = await api('GET', '/v1/flows/order-status/graph');
    await page.locator('#flow-diagram g#node-welcome text').filter({ hasText: 'welcome-new-menu' }).waitFor();
    const drawn = await page.evaluate(() => ({
      nodes: [...document.querySelectorAll('#flow-diagram g.node')].map((g) => g.id).sort(),
      edges: [...document.querySelectorAll('#flow-diagram g.edge')].map((g) => g.id).sort(),
    }));
    check(JSON.stringify(drawn.nodes) === JSON.stringify(graph.nodes.map((n) => n.id).sort()), 'a node per node: ' + JSON.stringify(drawn.nodes));
    check(JSON.stringify(drawn.edges) === JSON.stringify(graph.edges.map((e) => e.id).sort()), 'an edge per edge: ' + JSON.stringify(drawn.edges));
    await page.hover('#flow-diagram g.node#node-to-agent');
    await page.locator('#diagram-tip').filter({ hasText: 'transfer (refer) to sip:premium-queue@pbx.example.com' }).waitFor();
    await page.mouse.move(5, 5);
    await shot('console-flows.png');

    step('the routing table: which number goes to which flow');
    await page.click('#routing-link');
    const routing = await api('GET', '/v1/routing');
    await page.locator('#routing-diagram g#route-0 text').filter({ hasText: routing.routes[0].name }).waitFor();
    const routeText = (await page.locator('#routing-diagram g#route-0 text').allTextContents()).join(' ');
    check(routeText.includes(routing.routes[0].number), 'the route shows its number: ' + routeText);
    check(await page.locator(`#routing-diagram g#flow-${routing.routes[0].flow}`).count() === 1, 'its flow is drawn');
    await shot('console-routing.png');

    step('a calendar: the coming week as a strip, with its exceptions');
    await page.click('#calendar-list li[data-calendar="support-hours"] a');
    const cal = await api('GET', '/v1/calendars/support-hours');
    await page.locator('#calendar-view .week-row[data-date]').first().waitFor();
    const days = await page.locator('#calendar-view .week-row[data-date]').evaluateAll((rows) => rows.map((r) => ({
      date: r.dataset.date, exception: r.dataset.exception || '', ranges: [...r.querySelectorAll('.open')].map((b) => b.dataset.range),
    })));
    check(days.length === 7 && days[0].date === cal.at.slice(0, 10), 'seven days from today: ' + JSON.stringify(days.map((d) => d.date)));
    const keys = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    for (const d of days) {
      const exc = cal.upcoming.find((u) => u.date === d.date);
      const want = exc ? exc.hours : cal.weekly[keys[new Date(d.date + 'T00:00:00Z').getUTCDay()]];
      check(JSON.stringify(d.ranges) === JSON.stringify(want) && d.exception === (exc ? exc.exception : ''), `${d.date} shows ${JSON.stringify(want)}: ${JSON.stringify(d)}`);
    }
    const listed = await page.locator('#calendar-view ul.exceptions li').evaluateAll((lis) => lis.map((li) => li.dataset.date));
    check(JSON.stringify(listed) === JSON.stringify(cal.upcoming.map((u) => u.date)), 'the next exceptions are listed: ' + JSON.stringify(listed));
    await shot('console-calendar.png');
  }

  async function sipTransfer(page, value, view, shot) {
    step('a call held by the SIP bridge: its context, then its transfer and the outcome');
    await view('calls');
    let held, cursor = '';
    do {
      const page = await api('GET', '/v1/calls?state=active&limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      held = page.items.find((c) => c.sipCallId !== null);
      cursor = page.next;
    } while (!held && cursor);
    check(held, 'the SIP caller\'s call is active');
    await page.fill('#filter-number', held.from);
    const heldRow = page.locator(`#calls tbody tr[data-call-id="${held.id}"]`);
    await heldRow.click();
    await value('sip.x-customer-id').filter({ hasText: '"12345"' }).waitFor();
    await page.waitForSelector('#stream-state[data-state="live"]');
    // The caller (postman/sipp/caller.xml) checks these in the REFER.
    const transfer = await api('POST', `/v1/calls/${held.id}/transfer`, {
      transferTarget: 'sip:agent@192.0.2.20:5060',
      handoverReason: 'premium customer',
      transferNotificationsHangupMS: 200,
      transferSipHeaders: [{ name: 'X-AI-Summary', value: 'Premium customer; asked about TRK-48213' }],
      session: { variables: ['sip.x-customer-id'], as: 'headers' },
    });
    const trRow = page.locator(`#transfers tr[data-transfer-id="${transfer.id}"]`);
    await trRow.locator('td[data-status="answered"]').waitFor();
    const trCells = await trRow.locator('td').allTextContents();
    check(trCells[1] === 'refer' && trCells[2] === 'sip:agent@192.0.2.20:5060' && trCells[4] === '200', 'the transfer row: ' + JSON.stringify(trCells));
    await page.waitForSelector('#stream-state[data-state="ended"]');
    await page.locator('#call-ended').filter({ hasText: 'transferred' }).waitFor();
    await page.fill('#filter-number', '');
  }
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
