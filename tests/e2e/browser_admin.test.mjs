// The page at / (docs/admin.md) in headless Chromium (Debian's, driven by playwright-core): the
// live numbers move when clients connect, a connected user sees an event published from the
// page's form (with its channel and seq), a refused publish shows the API's error next to the
// field it names, a client event goes out on the user's connection; the login flow in
// production; usable at 360 px wide and with the keyboard. Screenshots go to build/artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { API_KEY, Client, metric, mintToken, startServer, waitFor } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const artifacts = process.env.ZENA_ARTIFACTS ?? path.join(root, 'build/artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';

// Dev mode with the harness's secret and key (so its tokens and API calls work); the dev state
// file goes to a scratch directory, removed when the server stops.
async function devServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-admin-'));
  const server = await startServer({ args: ['--mode', 'dev'], env: { ZENA_DEV_STATE_FILE: path.join(dir, 'dev.toml') } });
  const stop = server.stop.bind(server);
  server.stop = async (...args) => {
    try { return await stop(...args); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
  return server;
}

async function launch() {
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}

const text = (tab, selector) => tab.locator(selector).textContent();

test('AdminPage.DevMode_LiveNumbersMove_PublishArrives_RefusalShownAtField', async () => {
  const server = await devServer();
  const browser = await launch();
  const clients = [];
  try {
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    // The refused publish below is answered 400 on purpose; any other failed load is a fault.
    tab.on('console', (m) => { if (m.type() === 'error' && !/status of 400/.test(m.text())) errors.push(m.text()); });
    await tab.goto(server.url('/'));
    await tab.locator('#live-state', { hasText: 'live' }).waitFor({ timeout: 5000 });
    assert.equal(await text(tab, '#mode'), 'dev mode');
    assert.equal(await text(tab, '#v-connections'), '0');

    // Three users connect from outside the page: the pushed numbers follow, without a reload.
    for (const user of ['u1', 'u2', 'u2']) {
      const c = new Client(server.wsUrl(mintToken({ sub: user })));
      await c.next();
      clients.push(c);
    }
    await tab.locator('#v-connections', { hasText: /^3$/ }).waitFor({ timeout: 5000 });
    assert.equal(await text(tab, '#v-users'), '2');
    const perThread = await tab.$$eval('#threads tr', (rows) => rows.map((r) => Number(r.children[1].textContent)));
    assert.equal(perThread.length, 2, 'one row per event-loop thread (ZENA_THREADS=2)');
    assert.equal(perThread.reduce((a, b) => a + b, 0), 3);
    assert.match(await text(tab, '#nodes'), /\(this\)/);

    // Connect as a user with a token the server mints (dev mode).
    await tab.fill('#user', 'agent-7');
    await tab.click('#connect');
    await tab.locator('#conn-state', { hasText: 'open as agent-7' }).waitFor({ timeout: 5000 });
    await tab.locator('#events li[data-type="connected"]').waitFor({ timeout: 5000 });
    await tab.locator('#v-connections', { hasText: /^4$/ }).waitFor({ timeout: 5000 });

    // Publish deal.risk to agent-7 from the form built from the catalog.
    await tab.selectOption('#publish-type', 'deal.risk');
    assert.equal(await tab.locator('#publish-riskLevel option').count(), 2, 'the enum is a select of its values');
    assert.equal(await tab.getAttribute('#publish-dealId', 'aria-required'), 'true');
    await tab.fill('#target', 'agent-7');
    await tab.fill('#publish-dealId', 'deal-123');
    await tab.selectOption('#publish-riskLevel', 'high');
    await tab.fill('#publish-riskFlags', '["silent buyer"]');
    await tab.fill('#publish-riskReason', 'no reply in 9 days');
    await tab.click('#publish');
    const arrived = tab.locator('#events li[data-type="deal.risk"]');
    await arrived.waitFor({ timeout: 5000 });
    assert.match(await arrived.locator('.head').textContent(), /channel user:agent-7 · seq 1/);
    assert.deepEqual(JSON.parse(await arrived.locator('pre').textContent()),
      { dealId: 'deal-123', riskLevel: 'high', riskFlags: ['silent buyer'], riskReason: 'no reply in 9 days' });
    assert.match(await text(tab, '#publish-result'), /delivered to 1 connection/);
    await tab.locator('#v-published', { hasText: /^[1-9]/ }).waitFor({ timeout: 5000 });
    // And the thread that holds agent-7's connection counts the delivery in its own rate.
    await tab.waitForFunction(
      () => [...document.querySelectorAll('#threads tr')].some((r) => Number(r.children[3].textContent) > 0), null,
      { timeout: 5000 });

    // A refused publish: the required dealId left out; the API's error sits next to that field.
    await tab.fill('#publish-dealId', '');
    await tab.click('#publish');
    await tab.locator('#err-publish-dealId', { hasText: 'payload.dealId' }).waitFor({ timeout: 5000 });
    assert.match(await text(tab, '#err-publish-dealId'), /is required/);
    assert.equal(await tab.getAttribute('#publish-dealId', 'aria-invalid'), 'true');
    assert.equal(await tab.locator('#events li[data-type="deal.risk"]').count(), 1, 'nothing delivered');
    await tab.screenshot({ path: path.join(artifacts, 'admin-dev.png'), fullPage: true });

    // A client event goes out on the user's own connection.
    const before = (await metric(server, 'zena_client_messages_total')) ?? 0;
    await tab.selectOption('#send-type', 'thread.view');
    await tab.fill('#send-threadId', 'thread-9');
    await tab.click('#send');
    await tab.locator('#events li.sent[data-type="thread.view"]').waitFor({ timeout: 5000 });
    await waitFor(async () => ((await metric(server, 'zena_client_messages_total')) ?? 0) > before, 5000,
      'the server to count the client event');

    // The page never holds the API key: not in its files, not in what it shows.
    for (const file of ['/', '/admin/app.js', '/admin/app.css']) {
      assert.ok(!(await (await fetch(server.url(file))).text()).includes(API_KEY), `${file} holds no API key`);
    }
    assert.ok(!(await tab.content()).includes(API_KEY));
    assert.deepEqual(errors, []);
  } finally {
    for (const c of clients) c.ws.terminate();
    await browser.close();
    await server.stop();
  }
});

test('AdminPage.NarrowScreenAndKeyboard_NoOverflowAt360px_TabReachesControls', async () => {
  const server = await devServer();
  const browser = await launch();
  try {
    const tab = await browser.newPage({ viewport: { width: 360, height: 740 } });
    await tab.goto(server.url('/'));
    await tab.locator('#live-state', { hasText: 'live' }).waitFor({ timeout: 5000 });
    await tab.locator('#publish-dealId').waitFor({ timeout: 5000 });
    const widths = await tab.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth }));
    assert.ok(widths.doc <= 360 && widths.body <= 360, `no horizontal overflow at 360 px: ${JSON.stringify(widths)}`);
    await tab.screenshot({ path: path.join(artifacts, 'admin-360px.png'), fullPage: true });

    // Every control has a label (or a name of its own).
    const unlabelled = await tab.$$eval('#app input, #app select, #app textarea, #app button', (els) =>
      els.filter((e) => e.offsetParent !== null && !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
        !(e.tagName === 'BUTTON' && e.textContent.trim())).map((e) => e.id || e.outerHTML.slice(0, 60)));
    assert.deepEqual(unlabelled, []);

    // Tab alone reaches the controls, in the page's order.
    const reached = [];
    for (let i = 0; i < 80; i += 1) {
      await tab.keyboard.press('Tab');
      const id = await tab.evaluate(() => document.activeElement?.id ?? '');
      if (id && !reached.includes(id)) reached.push(id);
      if (id === 'clear') break;
    }
    for (const id of ['user', 'token', 'connect', 'publish-type', 'target', 'publish-dealId', 'publish', 'send-type', 'clear']) {
      assert.ok(reached.includes(id), `Tab reaches #${id}: ${reached.join(', ')}`);
    }
    assert.ok(reached.indexOf('connect') < reached.indexOf('publish-type'), 'tab order follows the page');

    // And the keyboard alone connects: focus the button, press Enter.
    await tab.focus('#connect');
    await tab.keyboard.press('Enter');
    await tab.locator('#conn-state', { hasText: 'open as alice' }).waitFor({ timeout: 5000 });
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('AdminPage.Production_LoginRequired_CookieHttpOnlyStrict_LiveAfterLogin', async () => {
  const server = await startServer({ env: { ZENA_ADMIN_ENABLED: 'true', ZENA_ADMIN_PASSWORD: PASSWORD } });
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const tab = await context.newPage();
    await tab.goto(server.url('/'));
    await tab.locator('#login').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await tab.locator('#app').isVisible(), false);
    assert.equal(await text(tab, '#mode'), 'production');
    await tab.screenshot({ path: path.join(artifacts, 'admin-login.png') });

    await tab.fill('#password', 'not the password');
    await tab.keyboard.press('Enter');
    await tab.locator('#login-error', { hasText: 'wrong password' }).waitFor({ timeout: 5000 });
    assert.deepEqual(await context.cookies(), [], 'no session for a wrong password');

    await tab.fill('#password', PASSWORD);
    await tab.keyboard.press('Enter');
    await tab.locator('#live-state', { hasText: 'live' }).waitFor({ timeout: 5000 });
    const [cookie] = await context.cookies();
    assert.equal(cookie.name, 'zena_admin');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await tab.evaluate(() => document.cookie), '', 'the script cannot read the session');
    // Outside dev mode no token is minted: the page asks for one.
    assert.equal(await tab.locator('#mint-row').isVisible(), false);
    await tab.click('#connect');
    await tab.locator('#connect-error', { hasText: 'paste a token' }).waitFor({ timeout: 5000 });
    await tab.fill('#token', mintToken({ sub: 'pasted-user' }));
    await tab.click('#connect');
    await tab.locator('#conn-state', { hasText: 'open as pasted-user' }).waitFor({ timeout: 5000 });
    await tab.locator('#v-connections', { hasText: /^1$/ }).waitFor({ timeout: 5000 });

    // A reload keeps the session; logging out ends it.
    await tab.reload();
    await tab.locator('#live-state', { hasText: 'live' }).waitFor({ timeout: 5000 });
    await tab.click('#logout');
    await tab.locator('#login').waitFor({ state: 'visible', timeout: 5000 });
  } finally {
    await browser.close();
    await server.stop();
  }
});
