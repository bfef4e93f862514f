// The browser SDK resumes across a page reload (docs/channels.md): headless Chromium loads a page
// that connects with the built client (clients/js/dist) keeping its positions in localStorage
// (localStoragePositions), subscribes a channel, and logs every event it hands to the app into
// localStorage. The page goes away and comes back while events are published: its first
// connection presents ?since= and its subscribe `since`, and the app gets exactly the missed
// events, no duplicate, no gap; also with a reload in the middle of a stream of publishes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { api, keepAlivePublisher, mintToken, sleep, startServer, sdkPageServer } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// The app: positions in localStorage; every event the SDK hands over appended to a log kept in
// localStorage too, so that what the page saw survives the reload.
const page = (wsUrl, token) => `<!doctype html>
<html><head><meta charset="utf-8"><title>resume</title></head><body>
<script type="module">
  import { connect, localStoragePositions } from '/sdk/index.js';
  const log = (entry) => {
    const all = JSON.parse(localStorage.getItem('app-log') ?? '[]');
    all.push(entry);
    localStorage.setItem('app-log', JSON.stringify(all));
  };
  window.zena = { welcomes: [], subscribed: [], resyncs: [], errors: [] };
  const client = connect({ url: ${JSON.stringify(wsUrl)}, token: () => ${JSON.stringify(token)}, positions: localStoragePositions() });
  client.onState((e) => { if (e.state === 'open') window.zena.welcomes.push(e.welcome); });
  client.onResync((e) => window.zena.resyncs.push(e));
  client.onError((e) => window.zena.errors.push(String(e)));
  client.onAny((type, payload, message) => {
    if (type === 'subscribed') { window.zena.subscribed.push(payload); return; }
    if (typeof message.seq === 'number') log({ channel: message.channel, seq: message.seq, id: payload.threadId });
  });
  client.subscribe('deal:web').catch((e) => window.zena.errors.push('subscribe: ' + e));
  window.addEventListener('pagehide', () => client.close());
</script></body></html>`;


const NEW = (threadId) => ({ type: 'thread.new', payload: { threadId, accountId: 'acc' } });

test('BrowserRecovery.ReloadWithLocalStoragePositions_GetsExactlyTheMissedEvents', { timeout: 90000 }, async () => {
  const server = await startServer({ env: { ZENA_LOG_LEVEL: 'info' } });
  const web = await sdkPageServer(() => page(server.wsUrl(), mintToken({ sub: 'agent-9', claims: { channels: ['deal:*'] } })));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  const publisher = keepAlivePublisher(server, { sockets: 1 });
  try {
    const tab = await browser.newPage();
    const pageErrors = [];
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    const appLog = () => tab.evaluate(() => JSON.parse(localStorage.getItem('app-log') ?? '[]'));
    const waitLog = (n) => tab.waitForFunction((count) => JSON.parse(localStorage.getItem('app-log') ?? '[]').length >= count, n, { timeout: 10000 });
    const publish = async (channel, id) => {
      const res = await publisher.post('/api/publish', { channel, ...NEW(id) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };

    // First visit: no positions yet.
    await tab.goto(web.url);
    await tab.waitForFunction(() => window.zena?.subscribed.length === 1, null, { timeout: 10000 });
    const firstWelcome = await tab.evaluate(() => window.zena.welcomes[0]);
    assert.equal(firstWelcome.channel, 'user:agent-9');
    assert.ok(!('recovered' in firstWelcome), 'nothing to present on the first visit');
    for (let i = 1; i <= 3; i += 1) {
      await publish('user:agent-9', `p${i}`);
      await publish('deal:web', `d${i}`);
    }
    await waitLog(6);
    const stored = await tab.evaluate(() => Object.fromEntries(Object.keys(localStorage).filter((k) => k.startsWith('zena-realtime:')).map((k) => [k, JSON.parse(localStorage.getItem(k))])));
    assert.deepEqual(Object.keys(stored).sort(), ['zena-realtime:deal:web', 'zena-realtime:user:agent-9']);
    assert.equal(stored['zena-realtime:user:agent-9'].seq, 3);
    assert.equal(stored['zena-realtime:deal:web'].seq, 3);

    // The page goes away; events are published meanwhile; the page comes back.
    await tab.goto('about:blank');
    await sleep(100);
    const deadline = Date.now() + 5000;
    while ((await api(server, 'GET', '/api/users/agent-9/connections')).body.connections !== 0 && Date.now() < deadline) await sleep(50);
    for (let i = 4; i <= 8; i += 1) assert.equal((await publish('user:agent-9', `p${i}`)).delivered, 0);
    for (let i = 4; i <= 7; i += 1) await publish('deal:web', `d${i}`);
    await tab.goto(web.url);
    await tab.waitForFunction(() => window.zena?.subscribed.length === 1, null, { timeout: 10000 });
    await waitLog(6 + 5 + 4);
    const welcome = await tab.evaluate(() => window.zena.welcomes[0]);
    assert.deepEqual([welcome.recovered, welcome.missed, welcome.seq], [true, 5, 8], 'the reload presented ?since=');
    const subscribed = await tab.evaluate(() => window.zena.subscribed[0]);
    assert.deepEqual([subscribed.recovered, subscribed.missed, subscribed.seq], [true, 4, 7], 'the subscribe presented since');
    await sleep(300);
    const log = await appLog();
    const of = (channel) => log.filter((e) => e.channel === channel).map((e) => [e.seq, e.id]);
    assert.deepEqual(of('user:agent-9'), [1, 2, 3, 4, 5, 6, 7, 8].map((i) => [i, `p${i}`]));
    assert.deepEqual(of('deal:web'), [1, 2, 3, 4, 5, 6, 7].map((i) => [i, `d${i}`]));
    assert.deepEqual(await tab.evaluate(() => window.zena.resyncs), []);

    // A reload in the middle of a stream of publishes: across both page lives, every event once.
    const K = 300;
    const sent = (async () => {
      for (let i = 1; i <= K; i += 1) {
        await publish(i % 2 ? 'user:agent-9' : 'deal:web', `s${i}`);
        await sleep(5);
      }
    })();
    await tab.waitForFunction((n) => JSON.parse(localStorage.getItem('app-log') ?? '[]').length >= n, 15 + 60, { timeout: 10000 });
    await tab.reload();
    await sent;
    await tab.waitForFunction((n) => JSON.parse(localStorage.getItem('app-log') ?? '[]').length >= n, 15 + K, { timeout: 15000 })
      .catch(() => {});
    await sleep(300);
    const all = await appLog();
    const stream = all.slice(15);
    for (const [channel, parity] of [['user:agent-9', 1], ['deal:web', 0]]) {
      const expected = Array.from({ length: K }, (_, k) => k + 1).filter((i) => i % 2 === parity).map((i) => `s${i}`);
      assert.deepEqual(stream.filter((e) => e.channel === channel).map((e) => e.id), expected, `${channel}: no gap, no duplicate`);
      const seqs = all.filter((e) => e.channel === channel).map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, k) => k + 1));
    }
    const resumed = await tab.evaluate(() => window.zena.welcomes[0]);
    assert.equal(resumed.recovered, true, 'the reload resumed');
    assert.deepEqual(await tab.evaluate(() => window.zena.resyncs), []);
    assert.deepEqual(await tab.evaluate(() => window.zena.errors), []);
    assert.deepEqual(pageErrors, []);
  } finally {
    publisher.close();
    await browser.close();
    web.close();
    await server.stop();
  }
});
