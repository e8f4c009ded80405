// Drives the console in headless Chromium (Debian's, never a downloaded
// one) against a running callctx: a call created over REST appears in the
// list, and a session write shows up without a reload. Run by
// TestConsole_Browser with CALLCTX_URL, CALLCTX_TOKEN (an admin token named
// "postman", for the REST calls), CALLCTX_READ_TOKEN (sessions:read: what
// the console is given) and SCREENSHOT (where to keep the picture). Exits
// non-zero on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = must('CALLCTX_URL');
const adminToken = must('CALLCTX_TOKEN');
const readToken = must('CALLCTX_READ_TOKEN');
const screenshot = must('SCREENSHOT');
const TIMEOUT = 15000;

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
    viewport: { width: 1360, height: 860 },
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

  step('open the console: it asks for a token');
  await page.goto(base + '/console');
  await page.waitForSelector('#token-form.needed');
  await page.fill('#token', readToken);
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#calls-updated:not(:empty)');

  step('opening hours: a calendar open or closed now, and when that changes');
  const hours = page.locator('#calendars tr[data-calendar="support-hours"]');
  await hours.waitFor();
  const cal = await api('GET', '/v1/calendars/support-hours');
  const hourCells = await hours.locator('td').allTextContents();
  check(hourCells[1].startsWith(cal.state), 'the calendar shows its state (' + cal.state + '): ' + JSON.stringify(hourCells));
  check(/^(opens|closes) in (less than a minute|\d+ (min|h|days))/.test(hourCells[2]), 'the next change reads like "closes in 42 min": ' + JSON.stringify(hourCells));
  check(hourCells[2].startsWith(cal.open ? 'closes' : 'opens'), 'the next change agrees with the state: ' + JSON.stringify(hourCells));
  check(hourCells[3] === cal.reason, 'what decided is shown: ' + JSON.stringify(hourCells));

  step('a call the routing table routed shows its route');
  const routed = await api('POST', '/v1/calls', { from: '+4940555000', to: '+49 30 9990000' });
  check(routed.route === 'hotline' && routed.flow === 'hotline', 'the hotline number is routed: ' + JSON.stringify(routed));
  const routedRow = page.locator(`#calls tbody tr[data-call-id="${routed.id}"]`);
  await routedRow.locator('td.route').filter({ hasText: 'hotline' }).waitFor();
  await api('POST', `/v1/calls/${routed.id}/end`, { reason: 'done' });

  step('a call created over REST appears');
  const call = await api('POST', '/v1/calls', {
    from: '+4930123456', to: '+4940555000', variables: { 'ivr.language': 'de' },
  });
  const row = page.locator(`#calls tbody tr[data-call-id="${call.id}"]`);
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  check(cells[0] === call.id && cells[1] === '+4930123456' && cells[2] === '+4940555000' && cells[3] === '–', 'the row shows id, from, to, no route: ' + JSON.stringify(cells));

  step('watch its session');
  await row.click();
  await page.waitForSelector('#stream-state[data-state="live"]');
  const value = (name) => page.locator(`#variables tr[data-var="${name}"] td.value`);
  await value('call.from').filter({ hasText: '"+4930123456"' }).waitFor();
  check((await value('ivr.language').textContent()) === '"de"', 'the seed variable is shown');
  check((await page.textContent('#session-version')) === '1', 'version 1');

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

  await page.screenshot({ path: screenshot, fullPage: true });
  step('screenshot ' + screenshot);

  step('the end of the call reaches the console');
  await api('POST', `/v1/calls/${call.id}/end`, { reason: 'caller-hangup' });
  await page.waitForSelector('#stream-state[data-state="ended"]');
  await page.locator('#call-state').filter({ hasText: 'ended' }).waitFor();
  check((await value('call.endReason').textContent()) === '"caller-hangup"', 'call.endReason is shown');

  step('a call with a flow: its node in the list, its path with the trigger explanation');
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
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-flow.png'), fullPage: true });
  step('screenshot ' + screenshot.replace(/\.png$/, '-flow.png'));

  step('a call held by the SIP bridge: its context, then its transfer and the outcome');
  const calls = await api('GET', '/v1/calls?state=active&limit=1000');
  const held = calls.items.find((c) => c.sipCallId !== null);
  check(held, 'the SIP caller\'s call is active');
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
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-transfer.png'), fullPage: true });
  step('screenshot ' + screenshot.replace(/\.png$/, '-transfer.png'));

  check(problems.length === 0, 'the page logged no errors: ' + problems.join('; '));
  step('ok');
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
