// The client SDK in a real browser: headless Chromium (Debian's) driven by playwright-core loads
// a page that imports the built client (clients/js/dist), connects with a real token, receives a
// published deal.risk and a streamed ask.response, stays open through idle heartbeats (browsers
// cannot see protocol pings: the SDK's ping/pong), survives a server restart, and leaves a
// screenshot in build/artifacts/ for CI.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { API_KEY, SEED_EVENTS, api, mintToken, sleep, startServer, sdkPageServer } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const artifacts = process.env.ZENA_ARTIFACTS ?? path.join(root, 'build/artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const page = (wsUrl, token) => `<!doctype html>
<html><head><meta charset="utf-8"><title>Zena Realtime in a browser</title>
<style>body{font:15px system-ui;margin:24px} .risk{color:#b00020} #answer{white-space:pre-wrap;border:1px solid #ccc;padding:8px}</style>
</head><body>
<h1>Zena Realtime</h1>
<p>State: <b id="state">starting</b> (opens: <span id="opens">0</span>)</p>
<ul id="risks"></ul>
<div id="answer"></div>
<script type="module">
  import { connect } from '/sdk/index.js';
  const client = connect({ url: ${JSON.stringify(wsUrl)}, token: () => ${JSON.stringify(token)} });
  window.zena = { opens: 0, states: [], risks: [], answer: '', complete: false };
  client.onState((e) => {
    window.zena.states.push(e.state);
    if (e.state === 'open') document.getElementById('opens').textContent = String(++window.zena.opens);
    document.getElementById('state').textContent = e.state;
  });
  client.on('deal.risk', (p) => {
    window.zena.risks.push(p);
    const li = document.createElement('li');
    li.className = 'risk';
    li.textContent = p.dealId + ': ' + p.riskLevel + ' risk, ' + p.riskReason;
    document.getElementById('risks').append(li);
  });
  (async () => {
    for await (const chunk of client.stream('q1')) {
      window.zena.answer += chunk.chunk;
      document.getElementById('answer').textContent = window.zena.answer;
    }
    window.zena.complete = true;
  })();
</script></body></html>`;


test('Browser.ClientSdk_ReceivesRiskAndStream_StaysAliveIdle_SurvivesRestart', async () => {
  const env = { ZENA_HEARTBEAT_INTERVAL_MS: '1000' };
  let server = await startServer({ env });
  const port = server.port;
  const site = await sdkPageServer(() => page(server.wsUrl(), mintToken({ sub: 'agent-7' })));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const tab = await browser.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(site.url);
    await tab.waitForFunction(() => window.zena?.opens === 1, null, { timeout: 10000 });

    const risk = SEED_EVENTS.find((e) => e.type === 'deal.risk');
    assert.equal((await api(server, 'POST', '/api/broadcast', { userId: 'agent-7', ...risk })).status, 200);
    await tab.waitForFunction(() => window.zena.risks.length === 1, null, { timeout: 5000 });
    assert.deepEqual(await tab.evaluate(() => window.zena.risks[0]), risk.payload);

    const words = ['The ', 'offer ', 'on ', '12 Main St ', 'expires ', 'Friday.'];
    const items = words.map((chunk) => ({ userId: 'agent-7', type: 'ask.response', payload: { chunk, isComplete: false, streamId: 'q1' } }));
    items.push({ userId: 'agent-7', type: 'ask.response', payload: { chunk: '', isComplete: true, streamId: 'q1', sources: [{ type: 'thread', id: 'thread-123' }] } });
    assert.equal((await api(server, 'POST', '/api/batch', { items })).status, 200);
    await tab.waitForFunction(() => window.zena.complete, null, { timeout: 5000 });
    assert.equal(await tab.evaluate(() => window.zena.answer), words.join(''));

    // Idle for three heartbeat intervals: the page cannot see pings, so the SDK asks for pongs.
    await sleep(3500);
    assert.equal(await tab.evaluate(() => window.zena.opens), 1, 'no reconnect while idle');
    assert.equal(await tab.evaluate(() => window.zena.states.at(-1)), 'open');

    mkdirSync(artifacts, { recursive: true });
    await tab.screenshot({ path: path.join(artifacts, 'browser-client.png'), fullPage: true });

    // A restart: the server drains (1001), the page reconnects soon, and events flow again.
    await server.stop();
    server = await startServer({ env, args: ['--port', String(port)] });
    await tab.waitForFunction(() => window.zena.opens === 2, null, { timeout: 10000 });
    assert.equal((await api(server, 'POST', '/api/broadcast', { userId: 'agent-7', ...risk })).status, 200);
    await tab.waitForFunction(() => window.zena.risks.length === 2, null, { timeout: 5000 });
    await tab.screenshot({ path: path.join(artifacts, 'browser-client-after-restart.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    site.close();
    await server.stop();
  }
});
