// Presence, typing indicators and read receipts in real browsers (docs/presence.md): headless
// Chromium loads pages that use the built client (clients/js/dist). Alice (two tabs) and Bob
// (another browser context) hold thread:9. Alice types in her composer (client.typing on each
// keystroke): Bob's page shows "alice is typing", and it clears when she sends (typing.stop) and
// when she goes quiet (the server's timeout); her own other tab never shows it. Alice's first tab
// opens thread t9 (thread.view): her second tab's unread badge clears on thread.read. Presence:
// Bob sees Alice join, presence() lists both, and the publisher SDK's getPresence and
// channelPresence agree. Screenshots go to build/artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { createRealtimeService } from '../../clients/node/dist/index.js';
import { API_KEY, mintToken, sleep, startServer, sdkPageServer } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const artifacts = process.env.ZENA_ARTIFACTS ?? path.join(root, 'build/artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const THREAD = 'thread:9';

// One app for every tab: the user comes from the page's fragment (`/#alice`), its token from
// the table the test writes into the page. The tab holds thread:9, shows who is typing there and
// who is present, has a composer that calls typing() on every keystroke and stopTyping() on
// send, and an unread badge for thread t9 that thread.read (this user, t9) clears.
const page = (wsUrl, tokens) => `<!doctype html>
<html><head><meta charset="utf-8"><title>Zena Realtime: presence</title>
<style>
  body{font:15px system-ui;margin:24px;max-width:640px}
  .badge{display:inline-block;min-width:1.4em;padding:0 6px;border-radius:10px;background:#d93025;color:#fff;text-align:center}
  .badge:empty{display:none}
  #typing{color:#666;font-style:italic;min-height:1.4em}
  #composer{width:100%;padding:6px}
</style>
</head><body>
<h1>Thread 9 <small id="who"></small></h1>
<p>Inbox: thread t9 <span id="badge-t9" class="badge">1</span></p>
<p>Here: <span id="members"></span></p>
<div id="typing"></div>
<form id="form"><input id="composer" autocomplete="off" placeholder="Reply…"></form>
<script type="module">
  import { connect } from '/sdk/index.js';
  const me = location.hash.slice(1);
  const tokens = ${JSON.stringify(tokens)};
  document.getElementById('who').textContent = '(' + me + ')';
  const client = connect({ url: ${JSON.stringify(wsUrl)}, token: () => tokens[me] });
  const zena = (window.zena = { client, subscribed: false, typingLists: [], joins: [], leaves: [], reads: [], errors: [] });
  client.onError((e) => zena.errors.push(String(e)));
  const members = new Set();
  const showMembers = () => { document.getElementById('members').textContent = [...members].sort().join(', '); };
  client.on('presence.join', (p) => { zena.joins.push(p); if (p.channel === '${THREAD}') { members.add(p.userId); showMembers(); } });
  client.on('presence.leave', (p) => { zena.leaves.push(p); if (p.channel === '${THREAD}') { members.delete(p.userId); showMembers(); } });
  client.onTyping('${THREAD}', (users) => {
    zena.typingLists.push(users);
    document.getElementById('typing').textContent = users.length === 0 ? ''
      : users.join(', ') + (users.length === 1 ? ' is typing…' : ' are typing…');
  });
  client.on('thread.read', (p) => {
    zena.reads.push(p);
    if (p.userId === me) document.getElementById('badge-' + p.threadId)?.replaceChildren();
  });
  const composer = document.getElementById('composer');
  composer.addEventListener('input', () => client.typing('${THREAD}'));
  document.getElementById('form').addEventListener('submit', (e) => {
    e.preventDefault();
    client.stopTyping('${THREAD}');
    composer.value = '';
  });
  client.subscribe('${THREAD}')
    .then(() => client.presence('${THREAD}'))
    .then((state) => { for (const u of state.users ?? []) members.add(u); showMembers(); zena.subscribed = true; })
    .catch((e) => zena.errors.push('subscribe/presence: ' + e));
  window.addEventListener('pagehide', () => client.close());
</script></body></html>`;

test('BrowserPresence.TypingIndicator_ReadReceiptAcrossTabs_AndPresence', { timeout: 90000 }, async () => {
  const server = await startServer({ env: { ZENA_LOG_LEVEL: 'info' } });
  const tokens = Object.fromEntries(['alice', 'bob'].map((sub) => [sub, mintToken({ sub, claims: { channels: ['thread:*'] } })]));
  const web = await sdkPageServer(() => page(server.wsUrl(), tokens));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  const publisher = createRealtimeService({ url: server.url(''), apiKey: API_KEY });
  const pageErrors = [];
  const tab = async (context, user) => {
    const t = await context.newPage();
    t.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
    await t.goto(`${web.url}#${user}`);
    await t.waitForFunction(() => window.zena?.subscribed === true, null, { timeout: 10000 });
    return t;
  };
  const text = (t, selector) => t.evaluate((s) => document.querySelector(s).textContent, selector);
  const waitText = (t, selector, expected, timeout = 5000) =>
    t.waitForFunction(([s, e]) => document.querySelector(s).textContent === e, [selector, expected], { timeout })
      .catch(async () => assert.fail(`${selector} is ${JSON.stringify(await text(t, selector))}, expected ${JSON.stringify(expected)}`));
  try {
    mkdirSync(artifacts, { recursive: true });
    const aliceContext = await browser.newContext(); // her two tabs share one browser
    const bobContext = await browser.newContext();
    const bob = await tab(bobContext, 'bob');
    const alice1 = await tab(aliceContext, 'alice');
    const alice2 = await tab(aliceContext, 'alice');

    // Presence: Bob saw Alice join once (two tabs, one user), and presence() lists both.
    await bob.waitForFunction(() => window.zena.joins.some((j) => j.userId === 'alice'), null, { timeout: 5000 });
    await waitText(bob, '#members', 'alice, bob');
    await sleep(200);
    assert.deepEqual(await bob.evaluate(() => window.zena.joins.filter((j) => j.userId === 'alice')), [{ channel: THREAD, userId: 'alice' }],
      'one join per user, never per tab');
    const state = await bob.evaluate((c) => window.zena.client.presence(c), THREAD);
    assert.deepEqual([[...state.users].sort(), state.count], [['alice', 'bob'], 2]);
    assert.equal(await text(alice2, '#members'), 'alice, bob');
    const refused = await bob.evaluate(() => window.zena.client.presence('thread:elsewhere').then(() => 'resolved', (e) => `${e.name}:${e.reason}`));
    assert.equal(refused, 'PresenceError:not_subscribed');

    // The publisher SDK sees the same.
    const users = await publisher.getPresence(['alice', 'bob', 'carol']);
    assert.deepEqual([users.alice.online, users.alice.connections, users.bob.online, users.carol.online], [true, 2, true, false]);
    const channel = await publisher.channelPresence(THREAD);
    assert.deepEqual([channel.channel, [...channel.users].sort(), channel.count], [THREAD, ['alice', 'bob'], 2]);

    // Alice types: every keystroke calls typing(); Bob sees her typing; her other tab does not.
    await alice1.click('#composer');
    await alice1.keyboard.type('Sounds good, see you', { delay: 40 });
    await waitText(bob, '#typing', 'alice is typing…');
    await bob.screenshot({ path: path.join(artifacts, 'browser-presence-typing.png'), fullPage: true });
    // She sends: typing.stop, and Bob's indicator clears at once (well before any timeout).
    const sentAt = Date.now();
    await alice1.keyboard.press('Enter');
    await waitText(bob, '#typing', '', 2000);
    assert.ok(Date.now() - sentAt < 2000, 'cleared by typing.stop, not by a timeout');
    assert.equal(await text(alice2, '#typing'), '', 'the typer\'s own tabs never show her typing');
    assert.deepEqual(await alice2.evaluate(() => window.zena.typingLists), []);
    assert.deepEqual(await alice1.evaluate(() => window.zena.typingLists), []);
    const lists = await bob.evaluate(() => window.zena.typingLists);
    assert.deepEqual(lists, [['alice'], []], 'one on, one off, however many keystrokes');

    // She types again and goes quiet: the server's timeout (6 s) clears it, before the SDK's 8 s.
    // (Past the server's one-a-second throttle of active:true first.)
    await sleep(1100);
    await alice1.keyboard.type('one more', { delay: 40 });
    await waitText(bob, '#typing', 'alice is typing…');
    const quietAt = Date.now();
    await waitText(bob, '#typing', '', 12000);
    const after = Date.now() - quietAt;
    assert.ok(after >= 4000 && after < 8000, `cleared by the server's timeout after ${after} ms`);

    // Read receipts: Alice's second tab has an unread badge for t9; her first tab opens t9.
    assert.equal(await text(alice2, '#badge-t9'), '1');
    await alice2.screenshot({ path: path.join(artifacts, 'browser-presence-unread.png'), fullPage: true });
    await alice1.evaluate(() => window.zena.client.send('thread.view', { threadId: 't9' }));
    await waitText(alice2, '#badge-t9', '');
    const read = await alice2.evaluate(() => window.zena.reads[0]);
    assert.equal(read.threadId, 't9');
    assert.equal(read.userId, 'alice');
    assert.ok(Math.abs(read.readAt - Date.now()) < 60000, 'readAt is a Unix ms time');
    await alice2.screenshot({ path: path.join(artifacts, 'browser-presence-read.png'), fullPage: true });
    await sleep(300);
    assert.deepEqual(await alice1.evaluate(() => window.zena.reads), [], 'the tab that sent the view gets none');
    assert.equal(await text(alice1, '#badge-t9'), '1', 'and its badge is the app\'s to clear');
    assert.deepEqual(await bob.evaluate(() => window.zena.reads), [], 'Bob does not hold thread:t9: he never gets it');

    for (const t of [alice1, alice2, bob]) assert.deepEqual(await t.evaluate(() => window.zena.errors), []);

    // Alice closes one tab: still present. Closes the other: Bob sees her leave.
    await alice1.close();
    await sleep(300);
    assert.equal(await text(bob, '#members'), 'alice, bob');
    await alice2.close();
    await waitText(bob, '#members', 'bob');
    assert.deepEqual(await bob.evaluate(() => window.zena.leaves), [{ channel: THREAD, userId: 'alice' }]);

    assert.deepEqual(await bob.evaluate(() => window.zena.errors), []);
    assert.deepEqual(pageErrors, []);
  } finally {
    await publisher.close();
    await browser.close();
    web.close();
    await server.stop();
  }
});
