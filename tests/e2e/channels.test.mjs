// Channels on the wire (docs/channels.md): the welcome's personal channel and position, events
// that carry channel/epoch/seq (ephemeral ones channel only), /api/publish to a channel,
// subscribe / unsubscribe and each subscribe.error reason, the history API and its paging,
// server-side subscriptions on every thread, channels in batches and in Redis publishes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import {
  api, connectChannels, connectUser, historyRoute, keepAlivePublisher, nextN, sleep, startRedis, startServer,
  subscribe, waitFor, writeCatalog, writeConfig,
} from './harness.mjs';

// Channel presence (docs/presence.md, tested in presence.test.mjs) is off here: its join and leave
// messages would interleave with the exact sequences these tests check.
const QUIET = { ZENA_CHANNELS_PRESENCE: 'false' };

const NEW = (threadId, accountId = 'acc') => ({ type: 'thread.new', payload: { threadId, accountId } });
const PING = (who) => ({ type: 'presence.ping', payload: { who } });
const EPOCH = /^[0-9a-z]+$/;

// The shipped catalog plus one ephemeral server event (the shipped one has none but protocol's).
const catalog = writeCatalog((c) => {
  c.server['presence.ping'] = { delivery: 'ephemeral', payload: { who: 'string' } };
});
// Per-namespace history (TOML only): typing:* stores nothing, tiny:* keeps 3 events.
const config = writeConfig(`
[channels.namespaces.typing]
history_size = 0

[channels.namespaces.tiny]
history_size = 3
`);

// Nothing more arrives for `client` before a marker published to its own channel: the marker
// is the next message. Proves that what the test expects not to arrive did not arrive first.
async function assertNothingBefore(server, client, user) {
  const marker = NEW(`marker-${Math.random()}`);
  const res = await api(server, 'POST', '/api/broadcast', { userId: user, ...marker });
  assert.equal(res.status, 200);
  const next = await client.next();
  assert.deepEqual({ type: next.type, payload: next.payload }, marker, `nothing arrived before the marker: ${JSON.stringify(next)}`);
}

describe('channels: the wire protocol', () => {
  let server;
  before(async () => {
    server = await startServer({
      args: ['--config', config],
      env: { ...QUIET, ZENA_CATALOG: catalog, ZENA_CHANNELS_MAX_PER_CONNECTION: '3' },
    });
  });
  after(async () => { await server.stop(); });

  test('Channels.Welcome_CarriesThePersonalChannelAndItsPosition', async () => {
    const first = await connectUser(server, 'w1');
    const w = first.welcome.payload;
    assert.equal(first.welcome.type, 'connected');
    assert.equal(w.channel, 'user:w1');
    assert.match(w.epoch, EPOCH);
    assert.equal(w.seq, 0);
    assert.ok(!('recovered' in w) && !('missed' in w), 'recovered/missed only with a position');

    const answers = [];
    for (const id of ['a', 'b']) {
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'w1', ...NEW(id) });
      assert.equal(res.status, 200);
      answers.push(res.body);
    }
    assert.deepEqual(answers, [
      { delivered: 1, channel: 'user:w1', epoch: w.epoch, seq: 1 },
      { delivered: 1, channel: 'user:w1', epoch: w.epoch, seq: 2 },
    ]);
    assert.deepEqual(await nextN(first, 2), [
      { ...NEW('a'), channel: 'user:w1', epoch: w.epoch, seq: 1 },
      { ...NEW('b'), channel: 'user:w1', epoch: w.epoch, seq: 2 },
    ]);
    const second = await connectUser(server, 'w1');
    assert.deepEqual(
      { channel: second.welcome.payload.channel, epoch: second.welcome.payload.epoch, seq: second.welcome.payload.seq },
      { channel: 'user:w1', epoch: w.epoch, seq: 2 }, 'a later welcome is at the position now');
    await Promise.all([first.close(), second.close()]);
  });

  test('Channels.PublishToChannel_AnswersPosition_EverySubscriberGetsItOnce', async () => {
    const [a, b, outsider] = await Promise.all([
      connectChannels(server, 'pa', { claims: { channels: ['deal:*'] } }),
      connectChannels(server, 'pb', { claims: { channels: ['deal:p1'] } }),
      connectChannels(server, 'pc', { claims: { channels: ['deal:*'] } }),
    ]);
    const subA = await subscribe(a, 'deal:p1');
    assert.equal(subA.type, 'subscribed');
    assert.deepEqual(Object.keys(subA.payload).sort(), ['channel', 'epoch', 'seq']);
    assert.equal(subA.payload.channel, 'deal:p1');
    assert.match(subA.payload.epoch, EPOCH);
    assert.equal(subA.payload.seq, 0);
    assert.notEqual(subA.payload.epoch, a.welcome.payload.epoch, 'each channel has its own epoch');
    assert.deepEqual(await subscribe(b, 'deal:p1'), subA);
    assert.equal((await subscribe(outsider, 'deal:p2')).type, 'subscribed', 'another deal channel');

    const { epoch } = subA.payload;
    for (let i = 1; i <= 3; i += 1) {
      const res = await api(server, 'POST', '/api/publish', { channel: 'deal:p1', ...NEW(`t${i}`) });
      assert.deepEqual([res.status, res.body], [200, { delivered: 2, channel: 'deal:p1', epoch, seq: i }]);
    }
    for (const client of [a, b]) {
      assert.deepEqual(await nextN(client, 3), [1, 2, 3].map((i) => ({ ...NEW(`t${i}`), channel: 'deal:p1', epoch, seq: i })));
    }
    await assertNothingBefore(server, outsider, 'pc');
    await assertNothingBefore(server, a, 'pa');
    await Promise.all([a.close(), b.close(), outsider.close()]);
  });

  test('Channels.EphemeralEvent_CarriesChannelButNoPosition_AndIsNotStored', async () => {
    const client = await connectChannels(server, 'eph', { claims: { channels: ['deal:*'] } });
    const sub = await subscribe(client, 'deal:e1');
    const res = await api(server, 'POST', '/api/publish', { channel: 'deal:e1', ...PING('x') });
    assert.deepEqual([res.status, res.body], [200, { delivered: 1, channel: 'deal:e1' }]);
    assert.deepEqual(await client.next(), { ...PING('x'), channel: 'deal:e1' });
    // On the personal channel too.
    const own = await api(server, 'POST', '/api/broadcast', { userId: 'eph', ...PING('y') });
    assert.deepEqual(own.body, { delivered: 1, channel: 'user:eph' });
    assert.deepEqual(await client.next(), { ...PING('y'), channel: 'user:eph' });
    // Not stored, and the next stored event takes the next seq.
    const history = await api(server, 'GET', historyRoute('deal:e1'));
    assert.deepEqual([history.status, history.body.seq, history.body.events], [200, 0, []]);
    const stored = await api(server, 'POST', '/api/publish', { channel: 'deal:e1', ...NEW('after') });
    assert.equal(stored.body.seq, 1);
    assert.deepEqual(await client.next(), { ...NEW('after'), channel: 'deal:e1', epoch: sub.payload.epoch, seq: 1 });
    await client.close();
  });

  test('Channels.NamespaceWithoutHistory_EventsCarryNoPosition', async () => {
    const client = await connectChannels(server, 'ns', { claims: { channels: ['typing:*', 'tiny:*'] } });
    const sub = await subscribe(client, 'typing:1');
    assert.equal(sub.type, 'subscribed');
    const res = await api(server, 'POST', '/api/publish', { channel: 'typing:1', ...NEW('n1') });
    assert.deepEqual(res.body, { delivered: 1, channel: 'typing:1' });
    assert.deepEqual(await client.next(), { ...NEW('n1'), channel: 'typing:1' });
    assert.deepEqual((await api(server, 'GET', historyRoute('typing:1'))).body.events ?? [], []);

    // tiny:* keeps 3: of 5, the history holds 3..5.
    assert.equal((await subscribe(client, 'tiny:1')).type, 'subscribed');
    for (let i = 1; i <= 5; i += 1) await api(server, 'POST', '/api/publish', { channel: 'tiny:1', ...NEW(`k${i}`) });
    const got = await nextN(client, 5);
    assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 4, 5], 'live delivery is not bounded by the history');
    const history = await api(server, 'GET', historyRoute('tiny:1'));
    assert.deepEqual(history.body.events.map((e) => [e.seq, e.payload.threadId]), [[3, 'k3'], [4, 'k4'], [5, 'k5']]);
    await client.close();
  });

  test('Channels.SubscribeAgain_AnswersSubscribedAndChangesNothing', async () => {
    const client = await connectChannels(server, 'again', { claims: { channels: ['deal:*'] } });
    const first = await subscribe(client, 'deal:a1');
    for (let i = 1; i <= 3; i += 1) await api(server, 'POST', '/api/publish', { channel: 'deal:a1', ...NEW(`a${i}`) });
    await nextN(client, 3);
    const again = await subscribe(client, 'deal:a1');
    assert.deepEqual(again, { type: 'subscribed', payload: { channel: 'deal:a1', epoch: first.payload.epoch, seq: 3 } });
    // With since: the replay asked for, then live events once each.
    const replay = await subscribe(client, 'deal:a1', { since: `${first.payload.epoch}:1` });
    assert.deepEqual(replay, {
      type: 'subscribed', payload: { channel: 'deal:a1', epoch: first.payload.epoch, seq: 3, recovered: true, missed: 2 },
    });
    assert.deepEqual((await nextN(client, 2)).map((e) => [e.seq, e.payload.threadId]), [[2, 'a2'], [3, 'a3']]);
    const res = await api(server, 'POST', '/api/publish', { channel: 'deal:a1', ...NEW('a4') });
    assert.equal(res.body.delivered, 1, 'the connection is subscribed once');
    assert.equal((await client.next()).seq, 4);
    await assertNothingBefore(server, client, 'again');
    await client.close();
  });

  test('Channels.Unsubscribe_StopsEvents_AndAnswersEvenWhenNotHeld', async () => {
    const client = await connectChannels(server, 'unsub', { claims: { channels: ['deal:*'] } });
    await subscribe(client, 'deal:u1');
    client.send({ type: 'unsubscribe', payload: { channel: 'deal:u1' } });
    assert.deepEqual(await client.next(), { type: 'unsubscribed', payload: { channel: 'deal:u1' } });
    const res = await api(server, 'POST', '/api/publish', { channel: 'deal:u1', ...NEW('gone') });
    assert.equal(res.body.delivered, 0);
    await assertNothingBefore(server, client, 'unsub');
    client.send({ type: 'unsubscribe', payload: { channel: 'deal:never-held' } });
    assert.deepEqual(await client.next(), { type: 'unsubscribed', payload: { channel: 'deal:never-held' } });
    // The personal channel cannot be left.
    client.send({ type: 'unsubscribe', payload: { channel: 'user:unsub' } });
    await client.next();
    const own = await api(server, 'POST', '/api/broadcast', { userId: 'unsub', ...NEW('still') });
    assert.equal(own.body.delivered, 1, 'the personal channel is held to the end');
    await client.close();
  });

  const invalid = [
    ['Empty', ''],
    ['256Bytes', 'd'.repeat(256)],
    ['Space', 'deal 1'],
    ['Unicode', 'déal:1'],
    ['Emoji', 'deal:🏠'],
    ['Slash', 'deal/1'],
    ['Star', 'deal:*'],
    ['OwnUserChannel', 'user:inv'],
    ['OtherUserChannel', 'user:bob'],
  ];
  for (const [name, channel] of invalid) {
    test(`Channels.Subscribe${name}_IsInvalidChannel`, async () => {
      // '*' grants every channel but user: ones: only the name can refuse.
      const client = await connectChannels(server, 'inv', { claims: { channels: ['*'] } });
      // The answer names the channel (an over-long name cut to its first 255 bytes).
      const shown = Buffer.from(channel).subarray(0, 255).toString();
      assert.deepEqual(await subscribe(client, channel), { type: 'subscribe.error', payload: { channel: shown, reason: 'invalid_channel' } });
      await client.close();
    });
  }

  test('Channels.Longest255ByteNameWithEveryAllowedCharacter_IsSubscribed', async () => {
    const client = await connectChannels(server, 'long', { claims: { channels: ['*'] } });
    const channel = `AZaz09_-:.@=${'x'.repeat(243)}`;
    assert.equal(Buffer.byteLength(channel), 255);
    const sub = await subscribe(client, channel);
    assert.equal(sub.type, 'subscribed');
    assert.equal(sub.payload.channel, channel);
    const res = await api(server, 'POST', '/api/publish', { channel, ...NEW('long') });
    assert.equal(res.body.delivered, 1);
    assert.equal((await client.next()).channel, channel);
    await client.close();
  });

  test('Channels.PastMaxPerConnection_IsTooManyChannels_PersonalNotCounted', async () => {
    const client = await connectChannels(server, 'many', { claims: { channels: ['deal:*'] } });
    for (const c of ['deal:m1', 'deal:m2', 'deal:m3']) assert.equal((await subscribe(client, c)).type, 'subscribed', c);
    assert.deepEqual(await subscribe(client, 'deal:m4'), { type: 'subscribe.error', payload: { channel: 'deal:m4', reason: 'too_many_channels' } });
    assert.equal((await subscribe(client, 'deal:m2')).type, 'subscribed', 'one already held is answered');
    const res = await api(server, 'POST', '/api/publish', { channel: 'deal:m4', ...NEW('x') });
    assert.equal(res.body.delivered, 0, 'the refused channel delivers nothing');
    client.send({ type: 'unsubscribe', payload: { channel: 'deal:m1' } });
    assert.equal((await client.next()).type, 'unsubscribed');
    assert.equal((await subscribe(client, 'deal:m4')).type, 'subscribed', 'a place freed by unsubscribe');
    await client.close();
  });

  test('Channels.History_PagesByLimitAndSince', async () => {
    const channel = 'deal:h1';
    const answers = [];
    for (let i = 1; i <= 7; i += 1) answers.push((await api(server, 'POST', '/api/publish', { channel, ...NEW(`h${i}`) })).body);
    const { epoch } = answers[0];
    assert.deepEqual(answers.map((a) => a.seq), [1, 2, 3, 4, 5, 6, 7]);
    const all = await api(server, 'GET', historyRoute(channel));
    assert.equal(all.status, 200);
    assert.equal(all.body.channel, channel);
    assert.equal(all.body.epoch, epoch);
    assert.equal(all.body.seq, 7);
    assert.equal(all.body.recovered, true);
    assert.deepEqual(all.body.events.map(({ type, payload, seq }) => ({ type, payload, seq })),
      [1, 2, 3, 4, 5, 6, 7].map((i) => ({ ...NEW(`h${i}`), seq: i })));

    // Pages of 3, each from the last seq of the one before.
    const pages = [];
    let since = `${epoch}:0`;
    for (let guard = 0; guard < 10; guard += 1) {
      const page = await api(server, 'GET', historyRoute(channel, { since, limit: 3 }));
      assert.equal(page.status, 200);
      assert.equal(page.body.recovered, true);
      if (page.body.events.length === 0) break;
      pages.push(page.body.events.map((e) => e.seq));
      since = `${epoch}:${page.body.events.at(-1).seq}`;
    }
    assert.deepEqual(pages, [[1, 2, 3], [4, 5, 6], [7]]);
    const firstTwo = await api(server, 'GET', historyRoute(channel, { limit: 2 }));
    assert.deepEqual(firstTwo.body.events.map((e) => e.seq), [1, 2], 'without since: the oldest kept');
    const limit1000 = await api(server, 'GET', historyRoute(channel, { limit: 1000 }));
    assert.equal(limit1000.body.events.length, 7);

    // Positions the history cannot continue from.
    for (const bad of ['zz9:1', `${epoch}:8`]) {
      const res = await api(server, 'GET', historyRoute(channel, { since: bad }));
      assert.deepEqual([res.status, res.body.recovered], [200, false], bad);
    }
  });

  const badQueries = [
    ['SinceGarbage', { since: 'garbage' }, 'since'],
    ['SinceEmpty', { since: '' }, 'since'],
    ['SinceNegative', { since: 'abc:-1' }, 'since'],
    ['SinceNotANumber', { since: 'abc:x' }, 'since'],
    ['Limit0', { limit: 0 }, 'limit'],
    ['Limit1001', { limit: 1001 }, 'limit'],
    ['LimitNotANumber', { limit: 'ten' }, 'limit'],
  ];
  for (const [name, query, field] of badQueries) {
    test(`Channels.History${name}_Is400`, async () => {
      const res = await api(server, 'GET', historyRoute('deal:h1', query));
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.field, field);
    });
  }

  test('Channels.HistoryOfAnInvalidChannel_Is400_UnknownIsEmpty', async () => {
    const bad = await api(server, 'GET', historyRoute('deal 1'));
    assert.equal(bad.status, 400);
    const empty = await api(server, 'GET', historyRoute('deal:nothing-yet'));
    assert.equal(empty.status, 200);
    assert.deepEqual([empty.body.channel, empty.body.seq, empty.body.events], ['deal:nothing-yet', 0, []]);
    // Its epoch is kept by the first publish: a position taken before then stays valid.
    const res = await api(server, 'POST', '/api/publish', { channel: 'deal:nothing-yet', ...NEW('first') });
    assert.deepEqual([res.body.epoch, res.body.seq], [empty.body.epoch, 1]);
    const unauthorized = await api(server, 'GET', historyRoute('deal:h1'), undefined, { key: null });
    assert.equal(unauthorized.status, 401);
  });

  test('Channels.ServerSideSubscription_ReachesEveryConnectionOnEveryThread', async () => {
    // Five connections over the server's two threads; none has a grant of its own.
    const mine = await Promise.all([1, 2, 3, 4, 5].map(() => connectUser(server, 'ss1')));
    const other = await connectUser(server, 'ss2');
    const threads = new Set([...server.output().matchAll(/connection opened conn=\d+ user=ss1 thread=(\d+)/g)].map((m) => m[1]));
    assert.equal(threads.size, 2, 'the connections are on both threads');
    const channel = 'deal:ss';
    const add = await api(server, 'POST', `/api/users/ss1/subscriptions`, { channel });
    assert.deepEqual([add.status, add.body], [200, { userId: 'ss1', channel, connections: 5 }]);
    const answers = await Promise.all(mine.map((c) => c.next()));
    for (const a of answers) {
      assert.equal(a.type, 'subscribed');
      assert.equal(a.payload.channel, channel);
      assert.match(a.payload.epoch, EPOCH);
      assert.equal(a.payload.seq, 0);
    }
    const published = await api(server, 'POST', '/api/publish', { channel, ...NEW('s1') });
    assert.equal(published.body.delivered, 5);
    for (const c of mine) {
      assert.deepEqual(await c.next(), { ...NEW('s1'), channel, epoch: published.body.epoch, seq: 1 });
    }
    await assertNothingBefore(server, other, 'ss2');

    const removed = await api(server, 'DELETE', `/api/users/ss1/subscriptions/${encodeURIComponent(channel)}`);
    assert.deepEqual([removed.status, removed.body], [200, { userId: 'ss1', channel, connections: 5 }]);
    for (const c of mine) assert.deepEqual(await c.next(), { type: 'unsubscribed', payload: { channel, reason: 'server' } });
    const after = await api(server, 'POST', '/api/publish', { channel, ...NEW('s2') });
    assert.equal(after.body.delivered, 0);
    const marker = NEW('ss1-marker');
    await api(server, 'POST', '/api/broadcast', { userId: 'ss1', ...marker });
    for (const c of mine) assert.equal((await c.next()).payload.threadId, 'ss1-marker', 'nothing before the marker');

    // A user with no connection: nothing to subscribe. A bad channel: 400.
    assert.deepEqual((await api(server, 'POST', '/api/users/nobody/subscriptions', { channel })).body,
      { userId: 'nobody', channel, connections: 0 });
    for (const badChannel of ['deal 1', 'user:ss2', '']) {
      const res = await api(server, 'POST', '/api/users/ss1/subscriptions', { channel: badChannel });
      assert.deepEqual([res.status, res.body.field], [400, 'channel'], badChannel);
    }
    await Promise.all([...mine, other].map((c) => c.close()));
  });

  test('Channels.ServerSideSubscription_LeavesOtherUsersAndOwnChannelsAlone', async () => {
    const a = await connectChannels(server, 'ssa', { claims: { channels: ['deal:*'] } });
    const b = await connectChannels(server, 'ssb', { claims: { channels: ['deal:*'] } });
    await subscribe(a, 'deal:sx');
    await subscribe(b, 'deal:sx');
    // A DELETE for ssa removes ssa's subscription only.
    const res = await api(server, 'DELETE', `/api/users/ssa/subscriptions/${encodeURIComponent('deal:sx')}`);
    assert.equal(res.body.connections, 1);
    assert.deepEqual(await a.next(), { type: 'unsubscribed', payload: { channel: 'deal:sx', reason: 'server' } });
    const pub = await api(server, 'POST', '/api/publish', { channel: 'deal:sx', ...NEW('only-b') });
    assert.equal(pub.body.delivered, 1);
    assert.equal((await b.next()).payload.threadId, 'only-b');
    await assertNothingBefore(server, a, 'ssa');
    await Promise.all([a.close(), b.close()]);
  });

  const bothTargets = [
    ['UserIdAndChannel', { userId: 'x', channel: 'deal:1' }],
    ['UserIdsAndChannel', { userIds: ['x'], channel: 'deal:1' }],
  ];
  for (const [name, target] of bothTargets) {
    for (const route of ['/api/publish', '/api/broadcast']) {
      test(`Channels.Publish${name}_Is400NamingTheField ${route}`, async () => {
        const res = await api(server, 'POST', route, { ...target, ...NEW('both') });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.ok(['channel', 'userId', 'userIds'].includes(res.body.field), JSON.stringify(res.body));
        assert.match(res.body.error, /channel/);
      });
    }
  }

  test('Channels.PublishBadChannel_Is400NamingChannel', async () => {
    for (const channel of ['', 'deal 1', 'd'.repeat(256), 5]) {
      const res = await api(server, 'POST', '/api/publish', { channel, ...NEW('bad') });
      assert.deepEqual([res.status, res.body.field], [400, 'channel'], JSON.stringify(channel));
    }
    const none = await api(server, 'POST', '/api/publish', { ...NEW('none') });
    assert.equal(none.status, 400);
  });

  test('Channels.BatchItemsWithChannel_EachAnswersItsPosition_InOrder', async () => {
    const client = await connectChannels(server, 'batch', { claims: { channels: ['deal:*'] } });
    const sub = await subscribe(client, 'deal:b1');
    // The ephemeral item first, so it goes however the socket keeps up.
    const res = await api(server, 'POST', '/api/batch', { items: [
      { channel: 'deal:b1', ...PING('b0') },
      { channel: 'deal:b1', ...NEW('b1') },
      { userId: 'batch', ...NEW('b2') },
      { channel: 'deal:b1', ...NEW('b3') },
    ] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.results, [
      { delivered: 1, channel: 'deal:b1' },
      { delivered: 1, channel: 'deal:b1', epoch: sub.payload.epoch, seq: 1 },
      { delivered: 1, channel: 'user:batch', epoch: client.welcome.payload.epoch, seq: 1 },
      { delivered: 1, channel: 'deal:b1', epoch: sub.payload.epoch, seq: 2 },
    ]);
    assert.deepEqual(await nextN(client, 4), [
      { ...PING('b0'), channel: 'deal:b1' },
      { ...NEW('b1'), channel: 'deal:b1', epoch: sub.payload.epoch, seq: 1 },
      { ...NEW('b2'), channel: 'user:batch', epoch: client.welcome.payload.epoch, seq: 1 },
      { ...NEW('b3'), channel: 'deal:b1', epoch: sub.payload.epoch, seq: 2 },
    ]);
    // An item naming both is refused on its own (naming the field) and delivers nothing.
    const bad = await api(server, 'POST', '/api/batch', { items: [{ channel: 'deal:b1', userId: 'batch', ...NEW('x') }, { channel: 'deal bad', ...NEW('y') }] });
    assert.equal(bad.status, 200);
    assert.deepEqual(bad.body.results.map((r) => [r.status, r.field]), [[400, 'channel'], [400, 'channel']]);
    await assertNothingBefore(server, client, 'batch');
    await client.close();
  });

  test('Channels.BroadcastAll_TravelsOnNoChannelAndIsNotStored', async () => {
    const client = await connectUser(server, 'everyone');
    const res = await api(server, 'POST', '/api/broadcast-all', NEW('all'));
    assert.equal(res.status, 200);
    assert.deepEqual(await client.next(), NEW('all'));
    const history = await api(server, 'GET', historyRoute('user:everyone'));
    assert.deepEqual([history.body.seq, history.body.events], [0, []]);
    await client.close();
  });
});

describe('channels: the subscribe rate', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { ...QUIET, ZENA_CHANNELS_SUBSCRIBES_PER_SECOND: '2', ZENA_CHANNELS_SUBSCRIBES_BURST: '3' } });
  });
  after(async () => { await server.stop(); });

  test('Channels.SubscribesPastTheBurst_AreRateLimited_ThenAllowedAgain', async () => {
    const client = await connectChannels(server, 'rate', { claims: { channels: ['deal:*'] } });
    for (let i = 1; i <= 6; i += 1) client.send({ type: 'subscribe', payload: { channel: `deal:r${i}` } });
    const answers = await nextN(client, 6);
    assert.deepEqual(answers.map((a) => [a.type, a.payload.channel, a.payload.reason]), [
      ['subscribed', 'deal:r1', undefined], ['subscribed', 'deal:r2', undefined], ['subscribed', 'deal:r3', undefined],
      ['subscribe.error', 'deal:r4', 'rate_limited'], ['subscribe.error', 'deal:r5', 'rate_limited'],
      ['subscribe.error', 'deal:r6', 'rate_limited'],
    ]);
    const res = await api(server, 'POST', '/api/publish', { channel: 'deal:r4', ...NEW('x') });
    assert.equal(res.body.delivered, 0, 'a rate-limited subscribe subscribed nothing');
    await sleep(1100); // two tokens back at 2/s
    assert.equal((await subscribe(client, 'deal:r4')).type, 'subscribed');
    assert.equal((await subscribe(client, 'deal:r5')).type, 'subscribed');
    await client.close();
  });
});

describe('channels: publishing through Redis', () => {
  let redis;
  let rc;
  let server;
  before(async () => {
    redis = await startRedis();
    rc = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
    rc.on('error', () => {});
    await rc.connect();
    server = await startServer({ env: { ...QUIET, ZENA_REDIS_URL: redis.url, ZENA_REDIS_CLIENT_EVENTS_STREAM: '' } });
    await waitFor(async () => (await rc.pubSubNumSub('zena:publish'))['zena:publish'] === 1, 5000, 'the subscription');
  });
  after(async () => {
    await server.stop();
    await rc.quit();
    await redis.stop();
  });

  test('Channels.RedisPublishWithChannel_ReachesSubscribersWithPosition', async () => {
    const client = await connectChannels(server, 'redis', { claims: { channels: ['deal:*'] } });
    const sub = await subscribe(client, 'deal:redis');
    await rc.publish('zena:publish', JSON.stringify({ channel: 'deal:redis', ...NEW('r1') }));
    await rc.publish('zena:publish', JSON.stringify({ items: [{ channel: 'deal:redis', ...NEW('r2') }, { userId: 'redis', ...NEW('r3') }] }));
    assert.deepEqual(await nextN(client, 3), [
      { ...NEW('r1'), channel: 'deal:redis', epoch: sub.payload.epoch, seq: 1 },
      { ...NEW('r2'), channel: 'deal:redis', epoch: sub.payload.epoch, seq: 2 },
      { ...NEW('r3'), channel: 'user:redis', epoch: client.welcome.payload.epoch, seq: 1 },
    ]);
    const history = await api(server, 'GET', historyRoute('deal:redis'));
    assert.deepEqual(history.body.events.map((e) => e.payload.threadId), ['r1', 'r2']);
    await client.close();
  });
});

// A connection behind: its waiting frames are coalesced (a latest event replaces the waiting one
// of its key). Coalescing must stay within a channel and must not reorder a channel's seq, or a
// subscriber loses an event without ever being told (no recovered:false on a live connection).
describe('channels: coalescing while a connection is behind', () => {
  let server;
  // A queue large enough that the stalled reader is never closed: its frames wait instead.
  before(async () => { server = await startServer({ env: { ...QUIET, ZENA_SEND_QUEUE_MAX_BYTES: String(64 << 20) } }); });
  after(async () => { await server.stop(); });

  const PROGRESS = (accountId, processedThreads) => ({ type: 'sync.progress', payload: { accountId, totalThreads: 100, processedThreads } });
  const FILLER = { type: 'ask.response', payload: { chunk: 'f'.repeat(32 * 1024), isComplete: false } };

  // Stalls `client`, publishes ~6.5 MB to its personal channel (past what the kernel buffers on
  // loopback, ~4 MB), so that what follows waits in the server's queue; returns the filler count.
  async function stall(client, user) {
    client.ws._socket.pause();
    const count = 200;
    for (let i = 0; i < count; i += 1) {
      const res = await api(server, 'POST', '/api/publish', { channel: `user:${user}`, ...FILLER });
      assert.equal(res.body.delivered, 1, 'still connected');
    }
    return count;
  }

  // Resumes reading and resolves every message up to (and including) `count` of them.
  async function drain(client, count) {
    client.ws._socket.resume();
    await waitFor(() => client.messages.length >= count, 15000, `${count} messages`);
    await sleep(200);
    return client.messages.splice(0).map((t) => JSON.parse(t));
  }

  // The same without any stall: the events of one batch are queued in one event-loop turn, so
  // they wait together for the turn's flush (an idle connection, nothing behind).
  test('Channels.OneBatch_LatestEventsOfTwoChannelsWithTheSameKey_BothArrive', async () => {
    const client = await connectChannels(server, 'batch-cross', { claims: { channels: ['room:*'] } });
    await subscribe(client, 'room:a');
    await subscribe(client, 'room:b');
    const res = await api(server, 'POST', '/api/batch', { items: [
      { channel: 'room:b', ...PROGRESS('z', 1) },
      { channel: 'room:a', ...PROGRESS('z', 2) },
    ] });
    assert.deepEqual(res.body.results.map((r) => [r.channel, r.seq, r.delivered]), [['room:b', 1, 1], ['room:a', 1, 1]]);
    await waitFor(() => client.messages.length >= 1, 3000, 'an event');
    await sleep(200);
    const got = client.messages.splice(0).map((t) => JSON.parse(t));
    assert.deepEqual(got.map((m) => [m.channel, m.seq, m.payload.processedThreads]), [['room:b', 1, 1], ['room:a', 1, 2]],
      'room:b\'s sync.progress was replaced by room:a\'s (same type and accountId, another channel)');
    await client.close();
  });

  test('Channels.OneBatch_LatestReplacement_KeepsTheChannelsSeqOrder', async () => {
    const client = await connectChannels(server, 'batch-order', { claims: { channels: ['room:*'] } });
    await subscribe(client, 'room:o');
    const res = await api(server, 'POST', '/api/batch', { items: [
      { channel: 'room:o', ...PROGRESS('k', 1) },
      { channel: 'room:o', ...NEW('between') },
      { channel: 'room:o', ...PROGRESS('k', 3) },
    ] });
    assert.deepEqual(res.body.results.map((r) => r.seq), [1, 2, 3]);
    await waitFor(() => client.messages.length >= 2, 3000, 'the events');
    await sleep(200);
    const got = client.messages.splice(0).map((t) => JSON.parse(t));
    // Coalescing may leave seq 1 out; what arrives must be in seq order: [2, 3] (or [1, 2, 3]).
    const seqs = got.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `seq order broken: ${JSON.stringify(got.map((m) => [m.seq, m.type]))}`);
    assert.deepEqual(got.filter((m) => m.type === 'thread.new').map((m) => m.seq), [2]);
    assert.equal(got.at(-1).payload.processedThreads, 3);
    await client.close();
  });

  test('Channels.BehindLatestEventsOfTwoChannels_WithTheSameKey_BothArrive', async () => {
    const client = await connectChannels(server, 'cross', { claims: { channels: ['deal:*'] } });
    await subscribe(client, 'deal:x1');
    await subscribe(client, 'deal:x2');
    const filler = await stall(client, 'cross');
    const one = await api(server, 'POST', '/api/publish', { channel: 'deal:x1', ...PROGRESS('a1', 10) });
    const two = await api(server, 'POST', '/api/publish', { channel: 'deal:x2', ...PROGRESS('a1', 20) });
    assert.deepEqual([one.body.delivered, two.body.delivered], [1, 1]);
    const got = (await drain(client, filler + 1)).filter((m) => m.type === 'sync.progress');
    // Each channel's newest sync.progress for a1: deal:x1's must not be replaced by deal:x2's.
    assert.deepEqual(got.map((m) => [m.channel, m.seq, m.payload.processedThreads]),
      [['deal:x1', 1, 10], ['deal:x2', 1, 20]],
      'a latest event of one channel replaced the waiting one of another channel with the same key');
    await client.close();
  });

  test('Channels.BehindLatestReplacement_KeepsTheChannelsSeqOrder', async () => {
    const client = await connectChannels(server, 'order');
    const filler = await stall(client, 'order');
    const seqs = [];
    for (const event of [PROGRESS('a9', 1), NEW('between'), PROGRESS('a9', 2)]) {
      seqs.push((await api(server, 'POST', '/api/publish', { channel: 'user:order', ...event })).body.seq);
    }
    const got = (await drain(client, filler + 2)).slice(filler);
    // Whatever is coalesced, a channel's events arrive in increasing seq: a client takes the last
    // seq it got as its position (docs/channels.md), and the SDK drops an event whose seq is not
    // above it as a replay, so an ordered event after a higher seq is lost.
    const received = got.map((m) => m.seq);
    assert.deepEqual(received, [...received].sort((a, b) => a - b), `seq order broken: ${JSON.stringify(got.map((m) => [m.seq, m.type]))}`);
    assert.ok(got.some((m) => m.seq === seqs[1] && m.type === 'thread.new'), 'the ordered event arrived');
    assert.equal(got.filter((m) => m.type === 'sync.progress').at(-1).payload.processedThreads, 2, 'the newest progress');
    await client.close();
  });
});

// Publishers on several HTTP connections (so on both event-loop threads) to one channel: each
// subscriber must get the channel's events in seq order. A client takes the last seq it got as
// its position, and the SDK drops an event whose seq is not above its position as a replay: an
// event delivered after a higher seq is lost to the app, and a resume from the higher seq skips it.
describe('channels: concurrent publishers to one channel', () => {
  let server;
  before(async () => { server = await startServer({ env: { ...QUIET, ZENA_LOG_LEVEL: 'info', ZENA_THREADS: '2' } }); });
  after(async () => { await server.stop(); });

  test('Channels.ConcurrentPublishers_EachConnectionGetsTheChannelInSeqOrder', async () => {
    const SUBSCRIBERS = 40;
    const EVENTS = 6000;
    const SOCKETS = 16;
    const clients = await Promise.all(Array.from({ length: SUBSCRIBERS }, (_, i) => connectChannels(server, `cc${i}`, { claims: { channels: ['room:*'] } })));
    for (const c of clients) assert.equal((await subscribe(c, 'room:cc')).type, 'subscribed');
    const seen = clients.map(() => ({ last: 0, count: 0, inversions: [] }));
    clients.forEach((c, k) => {
      c.next = () => { throw new Error('read by the recorder'); };
      c.ws.on('message', (data) => {
        const m = JSON.parse(data.toString());
        const s = seen[k];
        if (m.seq <= s.last && s.inversions.length < 3) s.inversions.push(`${m.seq} after ${s.last}`);
        s.last = Math.max(s.last, m.seq);
        s.count += 1;
      });
    });
    const publisher = keepAlivePublisher(server, { sockets: SOCKETS });
    let next = 0;
    await Promise.all(Array.from({ length: SOCKETS }, async () => {
      while (next < EVENTS) {
        const i = next;
        next += 1;
        const res = await publisher.post('/api/publish', { channel: 'room:cc', ...NEW(`c${i}`) });
        assert.equal(res.status, 200);
      }
    }));
    publisher.close();
    await waitFor(() => seen.every((s) => s.count >= EVENTS), 20000, 'every event everywhere');
    const out = seen.map((s, k) => (s.inversions.length ? `cc${k}: ${s.inversions.join(', ')}` : null)).filter(Boolean);
    assert.deepEqual(out.slice(0, 5), [], `${out.length} of ${SUBSCRIBERS} connections got room:cc out of seq order`);
    assert.ok(seen.every((s) => s.count === EVENTS), 'each event once');
    await Promise.all(clients.map((c) => c.close()));
  });
});
