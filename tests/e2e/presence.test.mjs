// Presence, typing indicators and read receipts (docs/presence.md, issue 13), end to end: the real
// binary, two users with two tabs each (four real WebSocket connections), a real webhook receiver.
//
// - User presence: GET /api/presence shapes; presence.online once per user (not per tab); a reload
//   inside the grace period sends no presence.offline and keeps the user online; closing every
//   connection sends presence.offline after the grace (not before), and lastSeen; routes apply.
// - Channel presence: presence.join / presence.leave once per user, never per tab; presence.get
//   and GET /api/channels/{channel}/presence (users and count; only count past max_list); a
//   namespace with presence off; presence.get for a channel not held.
// - Typing: relayed to every tab of the other users and to none of the sender's; typing.stop and
//   the timeout send active:false (not before the timeout); throttled to one active:true a second
//   per user and channel; not relayed for a channel not held or a namespace with typing off; the
//   seed's typing.start {} still goes upstream and one with a channel does not.
// - Receipts: thread.view → thread.read to the reader's other tabs (not the sending one) on the
//   personal channel, stored latest per thread (a resuming tab gets the newest of each thread);
//   to the other subscribers of thread:<id> when the reader holds it and receipts are on; never to
//   a user outside the channel; the webhook still gets thread.view.
//
// Every absence is proved the same way: after a bounded wait (several times what a delivery
// takes), a marker is sent and must be the next thing that arrives.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import {
  api, connectChannels, httpReceiver, metric, nextN, position, signature, sleep, startRedis, startServer, waitFor,
  writeConfig,
} from './harness.mjs';

const WEBHOOK_SECRET = 'presence-webhook-secret-0123456789';
const GRACE_MS = 500;
const TYPING_TIMEOUT_MS = 400;
const QUIET_WAIT_MS = 250; // the bounded wait before a marker: many times a loopback delivery

// Environment names of presence.offline_grace_ms, presence.max_list and typing.timeout_ms
// (docs/configuration.md).
const ENV_GRACE = 'ZENA_PRESENCE_OFFLINE_GRACE_MS';
const ENV_MAX_LIST = 'ZENA_PRESENCE_MAX_LIST';
const ENV_TYPING_TIMEOUT = 'ZENA_TYPING_TIMEOUT_MS';

// Every namespace has presence, typing and receipts on unless the TOML file turns them off.
const namespacesConfig = writeConfig(`
[channels.namespaces.quiet]
presence = false

[channels.namespaces.mute]
typing = false
`);
const receiptsOffConfig = writeConfig(`
[channels.namespaces.thread]
receipts = false
`);

const CLAIMS = { channels: ['room:*', 'quiet:*', 'mute:*', 'thread:*'] };

const JOIN = (channel, userId) => ({ type: 'presence.join', payload: { channel, userId } });
const LEAVE = (channel, userId) => ({ type: 'presence.leave', payload: { channel, userId } });
const TYPING = (channel, userId, active) => ({ type: 'typing', payload: { channel, userId, active } });
const NEW = (threadId) => ({ type: 'thread.new', payload: { threadId, accountId: 'acc' } });
const view = (m) => ({ type: m.type, payload: m.payload });
const sortByJson = (list) => [...list].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
const presenceRoute = (channel) => `/api/channels/${encodeURIComponent(channel)}/presence`;

/** `n` tabs of `user`, each a real connection with grants on room:*, quiet:*, mute:*, thread:*. */
async function tabs(server, user, n = 2, claims = CLAIMS) {
  const out = [];
  for (let i = 0; i < n; i += 1) out.push(await connectChannels(server, user, { claims }));
  return out;
}

async function closeAll(clients) {
  await Promise.all(clients.filter((c) => c.ws.readyState === c.ws.OPEN).map((c) => c.close()));
}

/** A live (not stored) event: no position. */
function assertLive(m, what) {
  assert.ok(!('seq' in m) && !('epoch' in m), `${what} carries no epoch/seq: ${JSON.stringify(m)}`);
}

/** The next message of `client` is `expected` (type and payload), a live one. */
async function expectLive(client, expected, what = expected.type) {
  const m = await client.next();
  assert.deepEqual(view(m), expected, `${what}: got ${JSON.stringify(m)}`);
  assertLive(m, what);
  if ('channel' in m && expected.payload?.channel) assert.equal(m.channel, expected.payload.channel);
  return m;
}

/**
 * What arrives for these tabs, grouped by user ({ alice: [a1, a2], bob: [b1] }), within a bounded
 * wait: after QUIET_WAIT_MS, a marker is published to each user's personal channel, and each
 * listed tab's messages up to the marker are returned ([[...a1's], [...a2's]] per user). A user's
 * listing must name every one of their open tabs (each gets the marker).
 */
async function untilMarker(server, byUser, max = 100) {
  await sleep(QUIET_WAIT_MS);
  const out = {};
  for (const [user, clients] of Object.entries(byUser)) {
    const marker = NEW(`marker-${user}-${Math.random()}`);
    const res = await api(server, 'POST', '/api/broadcast', { userId: user, ...marker });
    assert.equal(res.status, 200);
    out[user] = [];
    for (const client of clients) {
      const before = [];
      for (let i = 0; ; i += 1) {
        assert.ok(i < max, `at most ${max} messages before a marker`);
        const next = await client.next();
        if (JSON.stringify(view(next)) === JSON.stringify(marker)) break;
        before.push(next);
      }
      out[user].push(before);
    }
  }
  return out;
}

/** Nothing arrives for these tabs (as untilMarker): the marker is the next message of each. */
async function assertQuiet(server, byUser, what = 'nothing') {
  const got = await untilMarker(server, byUser);
  for (const [user, lists] of Object.entries(got)) {
    for (const [i, list] of lists.entries()) {
      assert.deepEqual(list, [], `${what}: ${user} tab ${i + 1} got ${JSON.stringify(list)} before the marker`);
    }
  }
}

/** Subscribes `client` to `channel`: the answer is `subscribed`, and the only other messages are
 * `joins` (presence.join events, in any order relative to the answer). */
async function join(client, channel, joins = []) {
  client.send({ type: 'subscribe', payload: { channel } });
  const got = await nextN(client, 1 + joins.length);
  const answers = got.filter((m) => m.type === 'subscribed' || m.type === 'subscribe.error');
  assert.equal(answers.length, 1, `one answer to the subscribe: ${JSON.stringify(got)}`);
  assert.equal(answers[0].type, 'subscribed', JSON.stringify(answers[0]));
  assert.equal(answers[0].payload.channel, channel);
  const others = got.filter((m) => m !== answers[0]);
  assert.deepEqual(sortByJson(others.map(view)), sortByJson(joins), `the joins with the subscribe of ${channel}`);
  for (const m of others) assertLive(m, 'presence.join');
  return answers[0];
}

async function leave(client, channel) {
  client.send({ type: 'unsubscribe', payload: { channel } });
  assert.deepEqual(await client.next(), { type: 'unsubscribed', payload: { channel } });
}

/** presence.get from `client` → its presence.state payload. */
async function presenceGet(client, channel) {
  client.send({ type: 'presence.get', payload: { channel } });
  const m = await client.next();
  assert.equal(m.type, 'presence.state', JSON.stringify(m));
  assertLive(m, 'presence.state');
  return m.payload;
}

const sortedUsers = (p) => (p.users ? { ...p, users: [...p.users].sort() } : p);

// ---- User presence, upstream

/** The webhook bodies, parsed, with the receiver's arrival time and the signature check. */
function bodies(hook) {
  return hook.received.map((r) => ({ ...JSON.parse(r.body), arrivedAt: r.at, signed: r.headers['x-zena-signature'] === signature(r.body, WEBHOOK_SECRET) }));
}
const presenceOf = (hook, userId) => bodies(hook).filter((b) => b.type?.startsWith('presence.') && b.userId === userId);

let markerCount = 0;
/**
 * A webhook marker: a fresh user connects (its presence.online is the marker) or, when
 * `clientEvent`, sends sync.request. The webhook sends events one at a time, in order, so once the
 * marker arrived, anything queued before it had arrived too. Closes the marker's connection.
 */
async function webhookMarker(server, hook, { clientEvent = false } = {}) {
  markerCount += 1;
  const user = `marker-${markerCount}`;
  await sleep(QUIET_WAIT_MS);
  const client = await connectChannels(server, user);
  if (clientEvent) {
    client.send({ type: 'sync.request', payload: {} });
    await waitFor(() => bodies(hook).some((b) => b.type === 'sync.request' && b.userId === user), 5000, `the marker ${user}`);
  } else {
    await waitFor(() => presenceOf(hook, user).some((b) => b.type === 'presence.online'), 5000, `the marker ${user}`);
  }
  await client.close();
  return user;
}

/** A presence upstream body: exactly { type, userId, at }, signed, `at` within [from, to]. */
function assertPresenceBody(b, type, userId, from, to) {
  const { arrivedAt, signed, ...body } = b;
  assert.deepEqual(Object.keys(body).sort(), ['at', 'type', 'userId'], JSON.stringify(body));
  assert.equal(body.type, type);
  assert.equal(body.userId, userId);
  assert.equal(typeof body.at, 'number');
  assert.ok(body.at >= from - 5 && body.at <= to + 5, `${type} at ${body.at} within [${from}, ${to}]`);
  assert.ok(signed, 'signed like every webhook body');
}

async function presenceApi(server, ...userIds) {
  const res = await api(server, 'GET', `/api/presence?userIds=${userIds.map(encodeURIComponent).join(',')}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** A server with a webhook and the short grace; `routes`: upstream.routes, or none (default). */
async function presenceServer(routes) {
  const hook = await httpReceiver();
  const server = await startServer({
    env: {
      ZENA_WEBHOOK_URL: hook.url('/zena/events'),
      ZENA_WEBHOOK_SECRET: WEBHOOK_SECRET,
      [ENV_GRACE]: String(GRACE_MS),
      ...(routes === undefined ? {} : { ZENA_UPSTREAM_ROUTES: routes }),
    },
  });
  return { server, hook, async stop() { await server.stop(); await hook.close(); } };
}

const PRESENCE_ROUTES = 'presence.online=webhook,presence.offline=webhook,*=none';

describe('user presence', () => {
  test('UserPresence.FirstTabSendsOnline_OncePerUserNotPerTab_AndTheApiShapes', async () => {
    const { server, hook, stop } = await presenceServer(PRESENCE_ROUTES);
    try {
      const before = Date.now();
      const [a1] = await tabs(server, 'alice', 1);
      await waitFor(() => presenceOf(hook, 'alice').length === 1, 5000, 'alice online');
      const a2 = (await tabs(server, 'alice', 1))[0];
      const [b1, b2] = await tabs(server, 'bob');
      const afterConnect = Date.now();
      // Routes: client events go nowhere (*=none), presence goes to the webhook.
      a1.send({ type: 'sync.request', payload: {} });
      await webhookMarker(server, hook);
      const alice = presenceOf(hook, 'alice');
      const bob = presenceOf(hook, 'bob');
      assert.equal(alice.length, 1, `one presence.online for alice's two tabs: ${JSON.stringify(alice)}`);
      assert.equal(bob.length, 1, `one presence.online for bob's two tabs: ${JSON.stringify(bob)}`);
      assertPresenceBody(alice[0], 'presence.online', 'alice', before, afterConnect);
      assertPresenceBody(bob[0], 'presence.online', 'bob', before, afterConnect);
      assert.ok(!bodies(hook).some((b) => b.type === 'sync.request'), 'sync.request is routed to none');

      assert.deepEqual(await presenceApi(server, 'alice', 'bob', 'nobody'), {
        alice: { online: true, connections: 2 },
        bob: { online: true, connections: 2 },
        nobody: { online: false }, // never seen since the start: no lastSeen
      });
      await closeAll([a1, a2, b1, b2]);
    } finally {
      await stop();
    }
  });

  test('UserPresence.ReloadInsideTheGrace_NoOfflineNoSecondOnline_StaysOnline', async () => {
    const { server, hook, stop } = await presenceServer(PRESENCE_ROUTES);
    try {
      let [a1, a2] = await tabs(server, 'alice');
      const [b1, b2] = await tabs(server, 'bob');
      await waitFor(() => presenceOf(hook, 'alice').length === 1 && presenceOf(hook, 'bob').length === 1, 5000, 'online');

      // One tab reloads: the other holds the user online throughout.
      await a1.close();
      [a1] = await tabs(server, 'alice', 1);
      await waitFor(async () => (await presenceApi(server, 'alice')).alice.connections === 2, 1000, 'alice at 2 connections');

      // Both tabs reload: no connection for a moment, inside the 500 ms grace.
      const closed = Date.now();
      await closeAll([a1, a2]);
      const during = await waitFor(async () => {
        const p = (await presenceApi(server, 'alice')).alice;
        return p.connections === 0 ? p : undefined;
      }, 200, 'alice at 0 connections');
      assert.equal(during.online, true, `inside the grace alice is online: ${JSON.stringify(during)}`);
      await sleep(100);
      [a1, a2] = await tabs(server, 'alice');
      assert.ok(Date.now() - closed < GRACE_MS - 100, `the reload took ${Date.now() - closed} ms, inside the grace`);

      await sleep(GRACE_MS + 300); // well past the grace the closes started
      await webhookMarker(server, hook);
      const events = presenceOf(hook, 'alice').map((b) => b.type);
      assert.deepEqual(events, ['presence.online'], 'a reload does not flap: no offline, no second online');
      const now = (await presenceApi(server, 'alice', 'bob'));
      assert.equal(now.alice.online, true);
      assert.equal(now.alice.connections, 2);
      assert.deepEqual(now.bob, { online: true, connections: 2 });
      await closeAll([a1, a2, b1, b2]);
    } finally {
      await stop();
    }
  });

  test('UserPresence.AllConnectionsClosed_OfflineAfterTheGraceNotBefore_WithLastSeen', async () => {
    const { server, hook, stop } = await presenceServer(PRESENCE_ROUTES);
    try {
      const [a1, a2] = await tabs(server, 'alice');
      const [b1, b2] = await tabs(server, 'bob');
      await waitFor(() => presenceOf(hook, 'bob').length === 1, 5000, 'bob online');

      const closeStart = Date.now();
      await closeAll([b1, b2]);
      const closeEnd = Date.now();
      // Half the grace later: still online with no connection, and no offline sent yet.
      await sleep(GRACE_MS / 2 - (Date.now() - closeStart));
      const during = (await presenceApi(server, 'bob')).bob;
      assert.equal(during.online, true, JSON.stringify(during));
      assert.equal(during.connections, 0, JSON.stringify(during));
      assert.ok(Date.now() - closeStart < GRACE_MS - 50, 'still inside the grace');
      assert.deepEqual(presenceOf(hook, 'bob').map((b) => b.type), ['presence.online'], 'no offline inside the grace');

      await waitFor(() => presenceOf(hook, 'bob').length === 2, GRACE_MS + 3000, 'bob offline');
      const offline = presenceOf(hook, 'bob')[1];
      assertPresenceBody(offline, 'presence.offline', 'bob', closeStart + GRACE_MS, Date.now());
      assert.ok(offline.arrivedAt - closeStart >= GRACE_MS - 5,
        `offline only after the grace: ${offline.arrivedAt - closeStart} ms after the closes`);

      const after = (await presenceApi(server, 'alice', 'bob'));
      assert.deepEqual(after.alice, { online: true, connections: 2 }, 'alice is untouched');
      assert.deepEqual(Object.keys(after.bob).sort(), ['lastSeen', 'online'], JSON.stringify(after.bob));
      assert.equal(after.bob.online, false);
      assert.ok(after.bob.lastSeen >= closeStart - 5 && after.bob.lastSeen <= closeEnd + 100,
        `lastSeen ${after.bob.lastSeen} is when the last connection closed, in [${closeStart}, ${closeEnd}]`);
      assert.ok(offline.at - after.bob.lastSeen >= GRACE_MS - 10, 'the offline comes a grace after lastSeen');

      // Back: online again, once.
      const [b3, b4] = await tabs(server, 'bob');
      await webhookMarker(server, hook);
      assert.deepEqual(presenceOf(hook, 'bob').map((b) => b.type), ['presence.online', 'presence.offline', 'presence.online']);
      assert.deepEqual(presenceOf(hook, 'alice').map((b) => b.type), ['presence.online']);
      await closeAll([a1, a2, b3, b4]);
    } finally {
      await stop();
    }
  });

  test('UserPresence.DefaultRoutes_SendOnlineAndOfflineToTheWebhook', async () => {
    const { server, hook, stop } = await presenceServer(undefined);
    try {
      const start = Date.now();
      const [a1, a2] = await tabs(server, 'alice');
      const [b1, b2] = await tabs(server, 'bob');
      b1.send({ type: 'sync.request', payload: {} }); // client events keep going too
      await waitFor(() => bodies(hook).some((b) => b.type === 'sync.request' && b.userId === 'bob'), 5000, 'sync.request');
      await closeAll([a1, a2]);
      await waitFor(() => presenceOf(hook, 'alice').length === 2, GRACE_MS + 3000, 'alice offline');
      await webhookMarker(server, hook);
      const alice = presenceOf(hook, 'alice');
      assert.deepEqual(alice.map((b) => b.type), ['presence.online', 'presence.offline']);
      assertPresenceBody(alice[0], 'presence.online', 'alice', start, Date.now());
      assertPresenceBody(alice[1], 'presence.offline', 'alice', start + GRACE_MS, Date.now());
      assert.deepEqual(presenceOf(hook, 'bob').map((b) => b.type), ['presence.online']);
      await closeAll([b1, b2]);
    } finally {
      await stop();
    }
  });

  test('UserPresence.RoutedToNone_NoPresenceUpstream_ClientEventsStillGo', async () => {
    const { server, hook, stop } = await presenceServer('presence.online=none,presence.offline=none,*=webhook');
    try {
      const [a1, a2] = await tabs(server, 'alice');
      const [b1, b2] = await tabs(server, 'bob');
      await closeAll([a1, a2]);
      await sleep(GRACE_MS + 200);
      const marker = await webhookMarker(server, hook, { clientEvent: true });
      assert.deepEqual(bodies(hook).filter((b) => b.type?.startsWith('presence.')), [], 'presence routed to none');
      assert.deepEqual(bodies(hook).map((b) => [b.type, b.userId]), [['sync.request', marker]]);
      const now = await presenceApi(server, 'alice', 'bob');
      assert.deepEqual(Object.keys(now.alice).sort(), ['lastSeen', 'online'], JSON.stringify(now.alice));
      assert.equal(now.alice.online, false, 'offline after the grace even with its event routed to none');
      assert.equal(typeof now.alice.lastSeen, 'number');
      assert.deepEqual(now.bob, { online: true, connections: 2 });
      await closeAll([b1, b2]);
    } finally {
      await stop();
    }
  });

  test('UserPresence.Api_PercentEncodedIds_OneToAThousand', async () => {
    const { server, stop } = await presenceServer(PRESENCE_ROUTES);
    try {
      const odd = 'd o,e/é'; // a comma, a space, a slash and UTF-8 in one id: each percent-encoded
      const [c] = await tabs(server, odd, 1);
      assert.deepEqual(await presenceApi(server, odd, 'bob'), { [odd]: { online: true, connections: 1 }, bob: { online: false } });
      const thousand = Array.from({ length: 1000 }, (_, i) => `u${i}`);
      const res = await api(server, 'GET', `/api/presence?userIds=${thousand.join(',')}`);
      assert.equal(res.status, 200);
      assert.equal(Object.keys(res.body).length, 1000);
      assert.deepEqual(res.body.u999, { online: false });
      const tooMany = await api(server, 'GET', `/api/presence?userIds=${[...thousand, 'u1000'].join(',')}`);
      assert.equal(tooMany.status, 400, '1,001 ids are refused');
      assert.equal((await api(server, 'GET', '/api/presence?userIds=')).status, 400, 'no id is refused');
      assert.equal((await api(server, 'GET', '/api/presence?userIds=alice', undefined, { key: 'wrong-key-0123456789' })).status, 401);
      await c.close();
    } finally {
      await stop();
    }
  });
});

describe('user presence: to the Redis stream', () => {
  let redis;
  let rc;
  before(async () => {
    redis = await startRedis();
    rc = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
    rc.on('error', () => {});
    await rc.connect();
  });
  after(async () => {
    await rc.quit();
    await redis.stop();
  });

  test('UserPresence.RoutedToRedis_OnlineAndOfflineAppendedToTheClientEventsStream', async () => {
    const stream = 'zena:client-events';
    const server = await startServer({
      env: {
        ZENA_REDIS_URL: redis.url,
        ZENA_UPSTREAM_ROUTES: 'presence.online=redis,presence.offline=redis,*=none',
        [ENV_GRACE]: String(GRACE_MS),
      },
    });
    try {
      const entries = async () => (await rc.xRange(stream, '-', '+')).map((e) => e.message);
      const start = Date.now();
      const [a1, a2] = await tabs(server, 'alice');
      const [b1, b2] = await tabs(server, 'bob');
      await waitFor(async () => (await entries()).length >= 2, 5000, 'two entries');
      const closeStart = Date.now();
      await closeAll([a1, a2]);
      await waitFor(async () => (await entries()).length >= 3, GRACE_MS + 5000, 'the offline entry');
      await sleep(QUIET_WAIT_MS);
      const got = await entries();
      assert.deepEqual(got.map((m) => [m.type, m.userId]).sort(),
        [['presence.offline', 'alice'], ['presence.online', 'alice'], ['presence.online', 'bob']]);
      for (const m of got) {
        const body = JSON.parse(m.event);
        assert.deepEqual(Object.keys(body).sort(), ['at', 'type', 'userId']);
        assert.deepEqual([body.type, body.userId], [m.type, m.userId], 'the fields repeat the body');
        assert.ok(body.at >= start - 5 && body.at <= Date.now() + 5);
        if (body.type === 'presence.offline') assert.ok(body.at >= closeStart + GRACE_MS - 5, 'after the grace');
      }
      await closeAll([b1, b2]);
    } finally {
      await server.stop();
      await rc.del(stream);
    }
  });
});

// ---- Channel presence

describe('channel presence', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--config', namespacesConfig] }); });
  after(async () => { await server.stop(); });

  test('ChannelPresence.JoinAndLeave_OncePerUser_NeverPerTab', async () => {
    const ch = 'room:jl';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    const [c1] = await tabs(server, 'carol', 1); // an observer that stays to the end
    await join(c1, ch, [JOIN(ch, 'carol')]);

    await join(a1, ch, [JOIN(ch, 'alice')]); // the joiner's own connection gets its join (it confirms)
    await expectLive(c1, JOIN(ch, 'alice'));
    await join(a2, ch); // alice's second tab: no join, to anyone
    await assertQuiet(server, { alice: [a1, a2], carol: [c1] }, 'alice\'s second tab subscribing');

    await join(b1, ch, [JOIN(ch, 'bob')]);
    for (const c of [a1, a2, c1]) await expectLive(c, JOIN(ch, 'bob'));
    await join(b2, ch);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2], carol: [c1] }, 'bob\'s second tab subscribing');

    // alice's first tab leaves: she still holds the channel in her second one.
    await leave(a1, ch);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2], carol: [c1] }, 'alice\'s first tab leaving');
    // Her last one ends: one leave to each remaining subscriber, none to a1 (no longer on it).
    await a2.close();
    for (const c of [b1, b2, c1]) await expectLive(c, LEAVE(ch, 'alice'));
    await assertQuiet(server, { alice: [a1], bob: [b1, b2], carol: [c1] }, 'after alice\'s leave');

    // bob: an unsubscribe (not his last), then his last by unsubscribe.
    await leave(b2, ch);
    await assertQuiet(server, { bob: [b1, b2], carol: [c1] }, 'bob\'s first tab leaving');
    await leave(b1, ch);
    await expectLive(c1, LEAVE(ch, 'bob'));
    await assertQuiet(server, { alice: [a1], bob: [b1, b2], carol: [c1] }, 'after bob\'s leave');

    assert.deepEqual(await presenceGet(c1, ch), { channel: ch, users: ['carol'], count: 1 });
    await closeAll([a1, b1, b2, c1]);
  });

  test('ChannelPresence.SubscribeAgain_SendsNoSecondJoin', async () => {
    const ch = 'room:again';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    const first = await join(a1, ch, [JOIN(ch, 'alice')]);
    for (const b of [b1, b2]) await expectLive(b, JOIN(ch, 'alice'));
    await join(a1, ch); // held already: answered, nothing else
    a1.send({ type: 'subscribe', payload: { channel: ch, since: position(first.payload) } });
    assert.equal((await a1.next()).type, 'subscribed');
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'a subscribe to a channel already held');
    assert.deepEqual(sortedUsers(await presenceGet(b1, ch)), { channel: ch, users: ['alice', 'bob'], count: 2 });
    // And a single unsubscribe still leaves.
    await leave(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, LEAVE(ch, 'alice'));
    await closeAll([a1, a2, b1, b2]);
  });

  test('ChannelPresence.ServerSideSubscribeAndRemoval_OneJoinAndOneLeavePerUser', async () => {
    const ch = 'room:srv';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(a1, ch, [JOIN(ch, 'alice')]);
    await join(a2, ch);

    // The backend subscribes both of bob's tabs at once: one join.
    const res = await api(server, 'POST', '/api/users/bob/subscriptions', { channel: ch });
    assert.deepEqual([res.status, res.body.connections], [200, 2]);
    for (const a of [a1, a2]) await expectLive(a, JOIN(ch, 'bob'));
    const seen = await untilMarker(server, { alice: [a1, a2], bob: [b1, b2] });
    assert.deepEqual(seen.alice, [[], []], 'one join to each of alice\'s tabs for two tabs subscribed at once');
    for (const [i, list] of seen.bob.entries()) {
      // Its answer, and the join that confirms (at most one per tab; which of bob's tabs already
      // held the channel when it was sent is the server's order).
      const answers = list.filter((m) => m.type === 'subscribed');
      assert.equal(answers.length, 1, `bob tab ${i + 1}: ${JSON.stringify(list)}`);
      assert.equal(answers[0].payload.channel, ch);
      const rest = list.filter((m) => m.type !== 'subscribed');
      assert.ok(rest.length <= 1, `bob tab ${i + 1}: at most one join: ${JSON.stringify(list)}`);
      for (const m of rest) assert.deepEqual(view(m), JOIN(ch, 'bob'));
    }
    assert.ok(seen.bob.flat().some((m) => m.type === 'presence.join'), 'bob\'s own connections get the join');

    // And removes them at once: one leave.
    const del = await api(server, 'DELETE', `/api/users/bob/subscriptions/${encodeURIComponent(ch)}`);
    assert.deepEqual([del.status, del.body.connections], [200, 2]);
    for (const b of [b1, b2]) assert.deepEqual(await b.next(), { type: 'unsubscribed', payload: { channel: ch, reason: 'server' } });
    for (const a of [a1, a2]) await expectLive(a, LEAVE(ch, 'bob'));
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'one leave for two tabs removed at once');
    await closeAll([a1, a2, b1, b2]);
  });

  test('ChannelPresence.Get_AnswersUsersAndCount_AndTheApiAgrees', async () => {
    const ch = 'room:get';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(a1, ch, [JOIN(ch, 'alice')]);
    await join(a2, ch);
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    for (const a of [a1, a2]) await expectLive(a, JOIN(ch, 'bob'));

    const expected = { channel: ch, users: ['alice', 'bob'], count: 2 };
    for (const c of [a1, a2, b1, b2]) assert.deepEqual(sortedUsers(await presenceGet(c, ch)), expected);
    const res = await api(server, 'GET', presenceRoute(ch));
    assert.equal(res.status, 200);
    assert.deepEqual(sortedUsers(res.body), expected);
    // The channel name percent-encoded or not, as for the history route.
    assert.deepEqual(sortedUsers((await api(server, 'GET', `/api/channels/${ch}/presence`)).body), expected);
    // A channel nobody holds.
    assert.deepEqual((await api(server, 'GET', presenceRoute('room:empty'))).body, { channel: 'room:empty', users: [], count: 0 });

    // One user gone: one left, by both ways of asking.
    await closeAll([a1, a2]);
    for (const b of [b1, b2]) await expectLive(b, LEAVE(ch, 'alice'));
    assert.deepEqual(await presenceGet(b2, ch), { channel: ch, users: ['bob'], count: 1 });
    assert.deepEqual((await api(server, 'GET', presenceRoute(ch))).body, { channel: ch, users: ['bob'], count: 1 });
    await assertQuiet(server, { bob: [b1, b2] }, 'presence.get answers only the asker');
    await closeAll([b1, b2]);
  });

  test('ChannelPresence.GetForAChannelNotHeld_IsNotSubscribed', async () => {
    const [a1, a2] = await tabs(server, 'alice');
    const [b1] = await tabs(server, 'bob', 1);
    await join(b1, 'room:other', [JOIN('room:other', 'bob')]);
    await join(a1, 'room:mine', [JOIN('room:mine', 'alice')]);
    // Held by bob, not by alice; and held by alice's other tab, not by this one.
    assert.deepEqual(await presenceGet(a2, 'room:other'), { channel: 'room:other', error: 'not_subscribed' });
    assert.deepEqual(await presenceGet(a2, 'room:mine'), { channel: 'room:mine', error: 'not_subscribed' });
    assert.deepEqual(await presenceGet(a1, 'room:nobody'), { channel: 'room:nobody', error: 'not_subscribed' });
    await assertQuiet(server, { alice: [a1, a2], bob: [b1] }, 'after the refusals');
    await closeAll([a1, a2, b1]);
  });

  test('ChannelPresence.NamespaceWithPresenceOff_NoJoinOrLeave_GetIsPresenceOff', async () => {
    const ch = 'quiet:1';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    for (const c of [a1, a2, b1, b2]) await join(c, ch); // no join, to anyone
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'subscribes with presence off');
    assert.deepEqual(await presenceGet(b1, ch), { channel: ch, error: 'presence_off' });
    await leave(a1, ch);
    await a2.close();
    await leave(b2, ch);
    await assertQuiet(server, { alice: [a1], bob: [b1, b2] }, 'leaves with presence off');
    // Events still flow on it: presence off is only presence.
    const res = await api(server, 'POST', '/api/publish', { channel: ch, ...NEW('q') });
    assert.equal(res.body.delivered, 1);
    assert.deepEqual(view(await b1.next()), NEW('q'));
    await closeAll([a1, b1, b2]);
  });
});

describe('channel presence: tabs switching at once', () => {
  let server;
  before(async () => {
    server = await startServer({
      // Four socket threads: alice's two tabs and bob's on three different ones.
      env: { ZENA_THREADS: '4', ZENA_CHANNELS_SUBSCRIBES_PER_SECOND: '100000', ZENA_CHANNELS_SUBSCRIBES_BURST: '100000' },
    });
  });
  after(async () => { await server.stop(); });

  test('ChannelPresence.TwoTabsHandingTheChannelOver_JoinAndLeaveAlternate_TheLastOneIsTheTruth', async () => {
    // alice's two tabs (on different socket threads) hand two channels back and forth: in each
    // round one tab unsubscribes while the other subscribes. Whatever order the server takes
    // them in, alice's membership goes in and out, so bob must see join, leave, join, ... strictly
    // alternating, and the last one he sees must be what presence.get answers.
    const channels = ['room:h1', 'room:h2'];
    const tabsOfAlice = await tabs(server, 'alice');
    const [b1] = await tabs(server, 'bob', 1);
    for (const ch of channels) await join(b1, ch, [JOIN(ch, 'bob')]);
    for (const ch of channels) await join(tabsOfAlice[0], ch, [JOIN(ch, 'alice')]);
    for (const ch of channels) await expectLive(b1, JOIN(ch, 'alice'));
    const ROUNDS = 300;
    for (let r = 0; r < ROUNDS; r += 1) {
      const from = tabsOfAlice[r % 2];
      const to = tabsOfAlice[(r + 1) % 2];
      for (const ch of channels) {
        from.send({ type: 'unsubscribe', payload: { channel: ch } });
        to.send({ type: 'subscribe', payload: { channel: ch } });
      }
      await sleep(1);
    }
    // Every subscribe and unsubscribe answered (alice's tabs also see her own joins and leaves).
    const seenBy = await untilMarker(server, { alice: tabsOfAlice, bob: [b1] }, 10 * ROUNDS * channels.length);
    for (const [i, list] of seenBy.alice.entries()) {
      const answers = list.filter((m) => m.type === 'subscribed' || m.type === 'unsubscribed');
      assert.equal(answers.length, ROUNDS * channels.length, `tab ${i + 1}: every message answered`);
      assert.ok(!answers.some((m) => m.payload.reason), 'no refusal');
    }
    const seen = seenBy.bob[0];
    const problems = [];
    for (const ch of channels) {
      const types = seen.filter((m) => m.payload.channel === ch).map((m) => m.type);
      const repeats = types.map((t, i) => (t === (i === 0 ? 'presence.join' : types[i - 1]) ? i : -1)).filter((i) => i >= 0);
      if (repeats.length) problems.push(`${ch}: of ${types.length} events, #${repeats.join(', #')} repeat the one before (${repeats.map((i) => types[i]).join(', ')})`);
      const state = await presenceGet(b1, ch);
      const last = types.at(-1) ?? 'presence.join';
      if (state.users?.includes('alice') !== (last === 'presence.join')) problems.push(`${ch}: the last event bob saw is ${last}, presence.get says ${JSON.stringify(state)}`);
      assert.deepEqual(sortedUsers(state), { channel: ch, users: ['alice', 'bob'], count: 2 }, 'the last subscribe holds it');
    }
    assert.deepEqual(problems, [], 'bob\'s view of alice follows her membership');
    await closeAll([...tabsOfAlice, b1]);
  });
});

describe('channel presence: max_list', () => {
  let server;
  before(async () => { server = await startServer({ env: { [ENV_MAX_LIST]: '1' } }); });
  after(async () => { await server.stop(); });

  test('ChannelPresence.OverMaxList_OnlyTheCount', async () => {
    const ch = 'room:big';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(a1, ch, [JOIN(ch, 'alice')]);
    await join(a2, ch);
    // One user (two tabs): at max_list, still listed.
    assert.deepEqual(await presenceGet(a2, ch), { channel: ch, users: ['alice'], count: 1 });
    assert.deepEqual((await api(server, 'GET', presenceRoute(ch))).body, { channel: ch, users: ['alice'], count: 1 });
    // Bob makes two users, past max_list: his join is not announced (each announcement goes to
    // every member: docs/presence.md), and presence.get answers only the count.
    await join(b1, ch);
    await join(b2, ch);
    // Two users: past max_list, only the count.
    for (const c of [a1, b2]) assert.deepEqual(await presenceGet(c, ch), { channel: ch, count: 2 });
    assert.deepEqual((await api(server, 'GET', presenceRoute(ch))).body, { channel: ch, count: 2 });
    await closeAll([a1, a2, b1, b2]);
  });
});

// ---- Typing indicators

describe('typing', () => {
  let server;
  let hook;
  before(async () => {
    hook = await httpReceiver();
    server = await startServer({
      args: ['--config', namespacesConfig],
      env: { [ENV_TYPING_TIMEOUT]: String(TYPING_TIMEOUT_MS), ZENA_WEBHOOK_URL: hook.url('/zena/events') },
    });
  });
  after(async () => {
    await server.stop();
    await hook.close();
  });

  /** alice and bob, two tabs each, all on `ch` (the joins consumed). */
  async function fourOn(ch) {
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(a1, ch, [JOIN(ch, 'alice')]);
    await join(a2, ch);
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    for (const a of [a1, a2]) await expectLive(a, JOIN(ch, 'bob'));
    return { a1, a2, b1, b2, all: [a1, a2, b1, b2] };
  }
  const start = (client, channel) => client.send({ type: 'typing.start', payload: { channel } });
  const stop = (client, channel) => client.send({ type: 'typing.stop', payload: { channel } });

  test('Typing.Start_RelayedToEveryTabOfTheOtherUser_NoneToTheSendersTabs', async () => {
    const ch = 'room:t1';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    start(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    stop(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', false));
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'one relay per tab of bob, none to alice');
    // And the other way round, from bob's second tab.
    start(b2, ch);
    for (const a of [a1, a2]) await expectLive(a, TYPING(ch, 'bob', true));
    stop(b2, ch);
    for (const a of [a1, a2]) await expectLive(a, TYPING(ch, 'bob', false));
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'bob typing');
    await closeAll(all);
  });

  test('Typing.Stop_SendsActiveFalseAtOnce', async () => {
    const ch = 'room:t2';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    const t0 = Date.now();
    start(a2, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    stop(a2, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', false));
    assert.ok(Date.now() - t0 < TYPING_TIMEOUT_MS - 100, 'the stop, not the timeout');
    // Not followed by a second false when the timeout would have passed.
    await sleep(TYPING_TIMEOUT_MS);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'after typing.stop');
    await closeAll(all);
  });

  test('Typing.Silence_SendsActiveFalseAfterTheTimeout_NotBefore', async () => {
    const ch = 'room:t3';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    const t0 = Date.now();
    start(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    await sleep(TYPING_TIMEOUT_MS * 0.6 - (Date.now() - t0));
    assert.deepEqual([b1.messages, b2.messages], [[], []], 'no active:false before the timeout');
    const falses = await Promise.all([b1, b2].map(async (b) => {
      const m = await expectLive(b, TYPING(ch, 'alice', false));
      return { m, elapsed: Date.now() - t0 };
    }));
    for (const { elapsed } of falses) {
      assert.ok(elapsed >= TYPING_TIMEOUT_MS - 5, `active:false ${elapsed} ms after the start, not before ${TYPING_TIMEOUT_MS}`);
      assert.ok(elapsed <= TYPING_TIMEOUT_MS + 1500, `active:false ${elapsed} ms after the start`);
    }
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'one false per tab, none to alice');
    await closeAll(all);
  });

  test('Typing.TenStartsIn300ms_BobGetsExactlyOneActiveTrue', async () => {
    const ch = 'room:t4';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    const t0 = Date.now();
    for (let i = 0; i < 10; i += 1) {
      start(a1, ch);
      await sleep(30);
    }
    assert.ok(Date.now() - t0 < 1000, 'all ten inside the second');
    // One true; then, TYPING_TIMEOUT_MS after the last start, one false.
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', false));
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'throttled');
    await closeAll(all);
  });

  test('Typing.StartsFromBothTabs_ThrottledPerUserNotPerTab', async () => {
    const ch = 'room:t5';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    for (let i = 0; i < 10; i += 1) {
      start(i % 2 ? a2 : a1, ch);
      await sleep(30);
    }
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', false));
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'throttled per user');
    await closeAll(all);
  });

  test('Typing.StopFromTheUsersOtherTab_EndsTheirTyping', async () => {
    const ch = 'room:t5b';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    const t0 = Date.now();
    start(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    stop(a2, ch); // the indicator is the user's: a stop from any of her tabs sends active:false
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', false));
    assert.ok(Date.now() - t0 < TYPING_TIMEOUT_MS - 100, `the stop, not the timeout (${Date.now() - t0} ms)`);
    await sleep(TYPING_TIMEOUT_MS);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'no second false');
    await closeAll(all);
  });

  test('Typing.TypingOnPastTheSecond_RefreshedOnce_TimeoutRestartsWithEveryStart', async () => {
    const ch = 'room:t6';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    // A start every 200 ms for 1.4 s (8 starts): relays at 0 and at the first start past 1 s; the
    // 400 ms timeout never runs out between starts.
    for (let i = 0; i < 8; i += 1) {
      start(a1, ch);
      await sleep(200);
    }
    for (const b of [b1, b2]) {
      assert.deepEqual((await nextN(b, 3, 3000)).map(view), [TYPING(ch, 'alice', true), TYPING(ch, 'alice', true), TYPING(ch, 'alice', false)]);
    }
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'refresh');
    await closeAll(all);
  });

  test('Typing.ConnectionEndsWhileTyping_SendsActiveFalse', async () => {
    const ch = 'room:t7';
    const { a1, a2, b1, b2 } = await fourOn(ch);
    const t0 = Date.now();
    start(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    await a1.close();
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', false));
    assert.ok(Date.now() - t0 < TYPING_TIMEOUT_MS - 50, `at the connection's end, not the timeout (${Date.now() - t0} ms)`);
    await assertQuiet(server, { alice: [a2], bob: [b1, b2] }, 'one false, no leave (alice still holds it)');
    await closeAll([a2, b1, b2]);
  });

  test('Typing.ChannelNotHeld_NothingRelayed_CountedInvalid', async () => {
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    const ch = 'room:t8';
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    const invalidBefore = await metric(server, 'zena_client_messages_invalid_total');
    start(a1, ch);
    start(a2, ch);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'typing for a channel alice does not hold');
    assert.equal(await metric(server, 'zena_client_messages_invalid_total'), invalidBefore + 2, 'counted as invalid');
    await closeAll([a1, a2, b1, b2]);
  });

  test('Typing.NamespaceWithTypingOff_NothingRelayed', async () => {
    const ch = 'mute:1';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    const invalidBefore = await metric(server, 'zena_client_messages_invalid_total');
    const already = bodies(hook).filter((b) => b.userId === 'alice' && 'connectionId' in b).length;
    start(a1, ch);
    stop(a1, ch);
    start(b1, ch);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'typing off');
    const invalid = (await metric(server, 'zena_client_messages_invalid_total')) - invalidBefore;
    assert.ok(invalid >= 2 && invalid <= 3, `the two starts counted as invalid (and perhaps the stop): ${invalid}`);
    // Ignored means not upstream either: the webhook gets the next client event and nothing before it.
    a1.send({ type: 'sync.request', payload: {} });
    await waitFor(() => bodies(hook).some((b) => b.type === 'sync.request' && b.userId === 'alice' && b.connectionId === a1.welcome.payload.connectionId), 5000, 'the marker');
    assert.deepEqual(bodies(hook).filter((b) => b.userId === 'alice' && 'connectionId' in b).slice(already).map((b) => b.type), ['sync.request']);
    await closeAll(all);
  });

  test('Typing.SeedTypingStartWithoutChannel_GoesUpstream_OneWithAChannelDoesNot', async () => {
    const ch = 'room:t9';
    const { a1, a2, b1, b2, all } = await fourOn(ch);
    const clientEvents = () => bodies(hook).filter((b) => b.userId === 'alice' && 'connectionId' in b);
    const already = clientEvents().length;
    start(a1, ch);
    for (const b of [b1, b2]) await expectLive(b, TYPING(ch, 'alice', true));
    start(a1, 'room:not-held'); // ignored: not upstream either
    a1.send({ type: 'typing.start', payload: {} }); // Ask Zena: upstream, relayed to no one
    a1.send({ type: 'sync.request', payload: {} }); // the marker: the webhook sends in order
    await waitFor(() => clientEvents().slice(already).some((b) => b.type === 'sync.request'), 5000, 'the marker');
    const got = clientEvents().slice(already);
    assert.deepEqual(got.map((b) => [b.type, b.payload]), [['typing.start', {}], ['sync.request', {}]]);
    assert.equal(got[0].connectionId, a1.welcome.payload.connectionId);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'typing.start {} is relayed to no one');
    await closeAll(all);
  });
});

// ---- Read receipts

const VIEW = (threadId) => ({ type: 'thread.view', payload: { threadId } });

/** The next message of `client` is alice's thread.read of `threadId`, `readAt` within [from, to];
 * `personal`: on her personal channel, stored (epoch/seq); otherwise on thread:<id>, live. */
async function expectRead(client, threadId, userId, from, personal) {
  const m = await client.next();
  assert.equal(m.type, 'thread.read', JSON.stringify(m));
  assert.deepEqual(Object.keys(m.payload).sort(), ['readAt', 'threadId', 'userId']);
  assert.equal(m.payload.threadId, threadId);
  assert.equal(m.payload.userId, userId);
  assert.equal(typeof m.payload.readAt, 'number');
  const to = Date.now();
  assert.ok(m.payload.readAt >= from - 5 && m.payload.readAt <= to + 5, `readAt ${m.payload.readAt} within [${from}, ${to}]`);
  if (personal) {
    assert.equal(m.channel, `user:${userId}`, JSON.stringify(m));
    assert.equal(typeof m.seq, 'number', `stored on the personal channel: ${JSON.stringify(m)}`);
  } else {
    assertLive(m, 'thread.read to the thread\'s subscribers');
    if ('channel' in m) assert.equal(m.channel, `thread:${threadId}`);
  }
  return m;
}

describe('read receipts', () => {
  let server;
  let hook;
  before(async () => {
    hook = await httpReceiver();
    server = await startServer({ env: { ZENA_WEBHOOK_URL: hook.url('/zena/events'), ZENA_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  });
  after(async () => {
    await server.stop();
    await hook.close();
  });

  test('Receipts.ThreadView_TheOtherTabGetsThreadRead_TheSenderNone_TheWebhookStillGetsTheView', async () => {
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    const t0 = Date.now();
    a1.send(VIEW('t9'));
    await expectRead(a2, 't9', 'alice', t0, true);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'the sending tab and bob get none');
    await waitFor(() => bodies(hook).some((b) => b.type === 'thread.view' && b.userId === 'alice'), 5000, 'thread.view upstream');
    const views = bodies(hook).filter((b) => b.type === 'thread.view' && b.userId === 'alice');
    assert.equal(views.length, 1);
    assert.deepEqual(views[0].payload, { threadId: 't9' });
    assert.equal(views[0].connectionId, a1.welcome.payload.connectionId);
    assert.ok(views[0].signed);
    // A thread id that is no channel name (a space; 300 bytes): still the personal receipt.
    for (const id of ['x y', 't'.repeat(300)]) {
      const t1 = Date.now();
      a1.send(VIEW(id));
      await expectRead(a2, id, 'alice', t1, true);
    }
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'odd thread ids');
    await closeAll([a1, a2, b1, b2]);
  });

  test('Receipts.ReaderAndBobHoldTheThread_BobsTabsGetIt_CarolOutsideNever', async () => {
    const ch = 'thread:t10';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    const [c1] = await tabs(server, 'carol', 1); // granted thread:*, holds thread:t11 only
    await join(a1, ch, [JOIN(ch, 'alice')]);
    await join(a2, ch);
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    for (const a of [a1, a2]) await expectLive(a, JOIN(ch, 'bob'));
    await join(c1, 'thread:t11', [JOIN('thread:t11', 'carol')]);

    const t0 = Date.now();
    a1.send(VIEW('t10'));
    // alice's other tab: the personal copy only (it holds the thread too, but is the reader's).
    await expectRead(a2, 't10', 'alice', t0, true);
    for (const b of [b1, b2]) await expectRead(b, 't10', 'alice', t0, false);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2], carol: [c1] }, 'one receipt per tab; none to a1 or carol');

    // bob reads from his second tab: his first gets the personal copy, alice's two the channel one.
    const t2 = Date.now();
    b2.send(VIEW('t10'));
    await expectRead(b1, 't10', 'bob', t2, true);
    for (const a of [a1, a2]) await expectRead(a, 't10', 'bob', t2, false);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2], carol: [c1] }, 'bob\'s receipt');
    await closeAll([a1, a2, b1, b2, c1]);
  });

  test('Receipts.ReaderNotHoldingTheThread_TellsOnlyTheirOwnTabs', async () => {
    const ch = 'thread:t12';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    const t0 = Date.now();
    a1.send(VIEW('t12'));
    await expectRead(a2, 't12', 'alice', t0, true);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'bob holds thread:t12 but alice does not');
    await closeAll([a1, a2, b1, b2]);
  });

  test('Receipts.ResumingTab_GetsTheStoredThreadRead_LatestPerThread', async () => {
    const [a1, a2, a3] = await tabs(server, 'dana', 3);
    const [b1] = await tabs(server, 'erin', 1);
    const since = position(a2.welcome.payload);
    await a2.close(); // a device goes away
    a1.send(VIEW('r1'));
    const first = await expectRead(a3, 'r1', 'dana', 0, true);
    a1.send(VIEW('r2'));
    const second = await expectRead(a3, 'r2', 'dana', 0, true);
    await sleep(5);
    a1.send(VIEW('r1'));
    const third = await expectRead(a3, 'r1', 'dana', first.payload.readAt, true);
    assert.ok(third.seq > second.seq && second.seq > first.seq);

    // The device comes back with its position: the newest receipt of each thread, in seq order.
    const back = await connectChannels(server, 'dana', { claims: CLAIMS, since });
    assert.equal(back.welcome.payload.recovered, true, JSON.stringify(back.welcome));
    assert.equal(back.welcome.payload.missed, 2, JSON.stringify(back.welcome));
    assert.deepEqual(await nextN(back, 2), [second, third], 'r1 replaced by its newer receipt');
    await assertQuiet(server, { dana: [a1, a3, back], erin: [b1] }, 'after the replay');
    await closeAll([a1, a3, back, b1]);
  });
});

describe('read receipts: off for the namespace', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--config', receiptsOffConfig] }); });
  after(async () => { await server.stop(); });

  test('Receipts.NamespaceWithReceiptsOff_BobGetsNothing_TheReadersOtherTabStillDoes', async () => {
    const ch = 'thread:t9';
    const [a1, a2] = await tabs(server, 'alice');
    const [b1, b2] = await tabs(server, 'bob');
    await join(a1, ch, [JOIN(ch, 'alice')]);
    await join(a2, ch);
    await join(b1, ch, [JOIN(ch, 'bob')]);
    await join(b2, ch);
    for (const a of [a1, a2]) await expectLive(a, JOIN(ch, 'bob'));
    const t0 = Date.now();
    a1.send(VIEW('t9'));
    await expectRead(a2, 't9', 'alice', t0, true);
    await assertQuiet(server, { alice: [a1, a2], bob: [b1, b2] }, 'receipts off: nothing to bob');
    await closeAll([a1, a2, b1, b2]);
  });
});
