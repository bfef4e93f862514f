// Recovery (docs/channels.md): a connection that presents its position (?since=, in-band auth,
// subscribe since) gets exactly what it missed, in order, then live events, with no gap and no
// duplicate even while events are being published; `latest` events compacted to the newest per
// key; recovered:false (never silence) past the history, from another epoch or a restarted
// engine; the offline queue; and the upstream notice of a notifyOffline event to an offline user.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client, api, connectChannels, historyRoute, httpReceiver, keepAlivePublisher, mintToken, nextN,
  position, signature, sleep, startServer, subscribe, waitFor, withTimeout, wsUrlSince,
} from './harness.mjs';

// Channel presence (docs/presence.md, tested in presence.test.mjs) is off here: its join and leave
// messages would interleave with the exact sequences these tests check.
const QUIET = { ZENA_CHANNELS_PRESENCE: 'false' };

const NEW = (threadId, accountId = 'acc') => ({ type: 'thread.new', payload: { threadId, accountId } });
const PROGRESS = (accountId, processedThreads) => ({ type: 'sync.progress', payload: { accountId, totalThreads: 1000, processedThreads } });
const RISK = (dealId) => ({ type: 'deal.risk', payload: { dealId, riskLevel: 'high', riskFlags: ['silent-buyer'], riskReason: 'No reply' } });
const WEBHOOK_SECRET = 'offline-secret-0123456789abcdef';

const publish = async (server, channel, event) => {
  const res = await api(server, 'POST', '/api/publish', { channel, ...event });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
};
const strip = ({ type, payload, channel, epoch, seq }) => ({ type, payload, channel, epoch, seq });

describe('recovery', () => {
  let server;
  before(async () => { server = await startServer({ env: QUIET }); });
  after(async () => { await server.stop(); });

  test('Recovery.PersonalChannel_SinceGetsExactlyTheMissedThenLive', async () => {
    const first = await connectChannels(server, 'r1');
    const { epoch } = first.welcome.payload;
    for (let i = 1; i <= 3; i += 1) await publish(server, 'user:r1', NEW(`seen${i}`));
    const seen = await nextN(first, 3);
    const last = seen.at(-1);
    assert.equal(last.seq, 3);
    await first.close();

    const N = 5;
    for (let i = 1; i <= N; i += 1) assert.equal((await publish(server, 'user:r1', NEW(`away${i}`))).delivered, 0);
    const back = await connectChannels(server, 'r1', { since: position(last) });
    assert.deepEqual(back.welcome.payload.recovered, true);
    assert.equal(back.welcome.payload.missed, N);
    assert.equal(back.welcome.payload.epoch, epoch);
    assert.equal(back.welcome.payload.seq, 3 + N, 'the position the replay reaches');
    assert.deepEqual(await nextN(back, N), [1, 2, 3, 4, 5].map((i) => ({ ...NEW(`away${i}`), channel: 'user:r1', epoch, seq: 3 + i })));
    const live = await publish(server, 'user:r1', NEW('live'));
    assert.deepEqual(await back.next(), { ...NEW('live'), channel: 'user:r1', epoch, seq: live.seq });
    await sleep(50);
    assert.deepEqual(back.messages, [], 'nothing twice');
    await back.close();
  });

  test('Recovery.NothingMissed_RecoveredWithZero', async () => {
    const first = await connectChannels(server, 'r0');
    await publish(server, 'user:r0', NEW('one'));
    const got = await first.next();
    await first.close();
    const back = await connectChannels(server, 'r0', { since: position(got) });
    assert.deepEqual([back.welcome.payload.recovered, back.welcome.payload.missed, back.welcome.payload.seq], [true, 0, 1]);
    const live = await publish(server, 'user:r0', NEW('two'));
    assert.equal((await back.next()).seq, live.seq);
    await back.close();
  });

  test('Recovery.SubscribedChannel_SubscribeSinceGetsExactlyTheMissed', async () => {
    const claims = { channels: ['deal:*'] };
    const first = await connectChannels(server, 'rc', { claims });
    const sub = await subscribe(first, 'deal:rc');
    const { epoch } = sub.payload;
    for (let i = 1; i <= 2; i += 1) await publish(server, 'deal:rc', NEW(`seen${i}`));
    const last = (await nextN(first, 2)).at(-1);
    await first.close();
    for (let i = 1; i <= 4; i += 1) await publish(server, 'deal:rc', NEW(`away${i}`));

    const back = await connectChannels(server, 'rc', { claims });
    const answer = await subscribe(back, 'deal:rc', { since: position(last) });
    assert.deepEqual(answer, { type: 'subscribed', payload: { channel: 'deal:rc', epoch, seq: 6, recovered: true, missed: 4 } });
    assert.deepEqual(await nextN(back, 4), [1, 2, 3, 4].map((i) => ({ ...NEW(`away${i}`), channel: 'deal:rc', epoch, seq: 2 + i })));
    await publish(server, 'deal:rc', NEW('live'));
    assert.deepEqual((await back.next()).seq, 7);
    await sleep(50);
    assert.deepEqual(back.messages, []);
    await back.close();
  });

  // A client that follows the spec: it connects with its positions, takes every event once,
  // and records what it got. `channels`: other channels to subscribe (with since once known).
  async function resumingClient(user, channels, positions, received, resumes = []) {
    const claims = { channels: channels.length ? ['*'] : [] };
    const own = `user:${user}`;
    const client = new Client(wsUrlSince(server, mintToken({ sub: user, claims }), positions[own] && position(positions[own])));
    const welcome = await client.next(5000);
    assert.equal(welcome.type, 'connected');
    if (positions[own]) {
      assert.equal(welcome.payload.recovered, true, `${own} recovered: ${JSON.stringify(welcome.payload)}`);
      resumes.push([own, welcome.payload.missed]);
    } else positions[own] = { epoch: welcome.payload.epoch, seq: welcome.payload.seq };
    const record = (m) => {
      if (m.type === 'subscribed') {
        if (m.payload.recovered === false) received.push({ lost: m.payload.channel });
        if (m.payload.recovered) resumes.push([m.payload.channel, m.payload.missed]);
        if (!positions[m.payload.channel]) positions[m.payload.channel] = { epoch: m.payload.epoch, seq: m.payload.seq };
        return;
      }
      received.push(m);
      positions[m.channel] = { epoch: m.epoch, seq: m.seq };
    };
    // Everything from here on is read as it comes.
    for (const text of client.messages.splice(0)) record(JSON.parse(text));
    client.ws.on('message', (data) => record(JSON.parse(data.toString())));
    client.next = () => { throw new Error('read by the recorder'); };
    for (const channel of channels) {
      client.send({ type: 'subscribe', payload: { channel, ...(positions[channel] ? { since: position(positions[channel]) } : {}) } });
    }
    await waitFor(() => channels.every((c) => positions[c]), 3000, 'subscribed');
    return client;
  }

  test('Recovery.WhilePublishing_TheUnionOfConnectionsIsExactlyEveryEventOnce', async () => {
    const K = 1500;
    const channels = ['user:cont', 'deal:cont'];
    const positions = {};
    const received = [];
    const publisher = keepAlivePublisher(server, { sockets: 1 });
    const answers = { 'user:cont': [], 'deal:cont': [] };
    let client = await resumingClient('cont', ['deal:cont'], positions, received);
    const sent = (async () => {
      for (let i = 1; i <= K; i += 1) {
        const channel = channels[i % 2];
        const res = await publisher.post('/api/publish', { channel, ...NEW(`c${i}`) });
        assert.equal(res.status, 200);
        answers[channel].push(res.body.seq);
      }
    })();
    // Reconnect four times while the publisher runs: twice closing, twice cutting the socket.
    let reconnects = 0;
    const resumes = [];
    for (let round = 0; round < 4; round += 1) {
      const target = Math.floor(((round + 1) * K) / 6);
      await withTimeout(waitFor(() => received.length >= target, 20000, `${target} events`), 25000, 'progress');
      if (round % 2) client.ws.terminate(); else client.ws.close();
      await client.waitClosed(3000).catch(() => {});
      await sleep(20 * round); // sometimes away a little while
      client = await resumingClient('cont', ['deal:cont'], positions, received, resumes);
      reconnects += 1;
    }
    await withTimeout(sent, 60000, 'the publisher');
    await waitFor(() => received.length >= K, 20000, `all ${K} events (got ${received.length})`);
    await sleep(200);
    publisher.close();
    assert.ok(!received.some((m) => m.lost), 'never recovered:false');
    for (const channel of channels) {
      const mine = received.filter((m) => m.channel === channel);
      assert.deepEqual(mine.map((m) => m.seq), answers[channel].slice().sort((a, b) => a - b),
        `${channel}: every event once, in order, across ${reconnects + 1} connections`);
      assert.deepEqual(mine.map((m) => m.seq), Array.from({ length: K / 2 }, (_, i) => i + 1));
    }
    assert.equal(received.length, K);
    // The replays were exercised: some resumes had events to replay.
    assert.equal(resumes.length, 2 * reconnects);
    assert.ok(resumes.some(([, missed]) => missed > 0), `resumes: ${JSON.stringify(resumes)}`);
    await client.close();
  });

  test('Recovery.LatestEvents_CompactedToTheNewestPerKey_InSeqOrder', async () => {
    const first = await connectChannels(server, 'lat');
    const since = { epoch: first.welcome.payload.epoch, seq: first.welcome.payload.seq };
    await first.close();
    // While away: 50 progress for a1 and 50 for a2, interleaved with ordered events.
    const published = [];
    for (let i = 0; i < 50; i += 1) {
      for (const account of ['a1', 'a2']) {
        const event = PROGRESS(account, i);
        published.push({ event, seq: (await publish(server, 'user:lat', event)).seq, latest: account });
      }
      if (i % 10 === 3) {
        const event = NEW(`between-${i}`);
        published.push({ event, seq: (await publish(server, 'user:lat', event)).seq });
      }
    }
    const newest = new Map();
    for (const p of published) if (p.latest) newest.set(p.latest, p);
    const expected = published.filter((p) => !p.latest || newest.get(p.latest) === p).sort((a, b) => a.seq - b.seq);
    assert.equal(expected.length, 2 + 5);

    const back = await connectChannels(server, 'lat', { since: position(since) });
    assert.deepEqual([back.welcome.payload.recovered, back.welcome.payload.missed], [true, expected.length]);
    const got = await nextN(back, expected.length);
    assert.deepEqual(got.map(strip), expected.map((p) => ({ ...p.event, channel: 'user:lat', epoch: since.epoch, seq: p.seq })));
    assert.deepEqual(got.filter((m) => m.type === 'sync.progress').map((m) => [m.payload.accountId, m.payload.processedThreads]).sort(),
      [['a1', 49], ['a2', 49]]);
    await sleep(50);
    assert.deepEqual(back.messages, []);

    // The history API shows the same compaction.
    const history = await api(server, 'GET', historyRoute('user:lat', { since: position(since) }));
    assert.deepEqual(history.body.events.map((e) => e.seq), expected.map((p) => p.seq));
    await back.close();
  });

  test('Recovery.PositionOnACompactedEvent_StillRecovers', async () => {
    // The client's last event is a progress that a newer one has since replaced: a hole in the
    // seq, not a loss.
    const first = await connectChannels(server, 'hole');
    await publish(server, 'user:hole', PROGRESS('a1', 1));
    const last = await first.next();
    await first.close();
    await publish(server, 'user:hole', NEW('n1'));
    const newer = await publish(server, 'user:hole', PROGRESS('a1', 2));
    const back = await connectChannels(server, 'hole', { since: position(last) });
    assert.deepEqual([back.welcome.payload.recovered, back.welcome.payload.missed], [true, 2]);
    assert.deepEqual((await nextN(back, 2)).map((m) => [m.type, m.seq]), [['thread.new', 2], ['sync.progress', newer.seq]]);
    await back.close();
  });

  const unrecoverable = [
    ['OtherEpoch', (p) => `zzzzzz9:${p.seq}`],
    ['AheadOfTheChannel', (p) => `${p.epoch}:${p.seq + 5}`],
    ['Garbage', () => 'garbage'],
    ['NoSeq', (p) => `${p.epoch}:`],
    ['NegativeSeq', (p) => `${p.epoch}:-1`],
    ['SeqNotANumber', (p) => `${p.epoch}:1x`],
    ['EpochWithUppercase', (p) => `${p.epoch.toUpperCase()}X:${p.seq}`],
    ['Huge', (p) => `${p.epoch}:99999999999999999999999`],
  ];
  for (const [name, make] of unrecoverable) {
    test(`Recovery.Since${name}_IsRecoveredFalse_NothingReplayed`, async () => {
      const user = `bad-${name}`;
      const first = await connectChannels(server, user);
      for (let i = 1; i <= 3; i += 1) await publish(server, `user:${user}`, NEW(`e${i}`));
      const last = (await nextN(first, 3)).at(-1);
      await first.close();
      await publish(server, `user:${user}`, NEW('away'));
      const back = await connectChannels(server, user, { since: make(last) });
      const w = back.welcome.payload;
      assert.deepEqual([w.recovered, w.missed, w.epoch, w.seq], [false, 0, last.epoch, 4]);
      const live = await publish(server, `user:${user}`, NEW('live'));
      assert.deepEqual(await back.next(), { ...NEW('live'), channel: `user:${user}`, epoch: last.epoch, seq: live.seq }, 'no replay: the live event is next');
      // The same position in a subscribe.
      const sub = await connectChannels(server, `${user}-s`, { claims: { channels: ['deal:*'] } });
      await publish(server, `deal:${user}`, NEW('d1'));
      const d = await publish(server, `deal:${user}`, NEW('d2'));
      const answer = await subscribe(sub, `deal:${user}`, { since: make({ epoch: d.epoch, seq: 1 }) });
      assert.deepEqual(answer.payload, { channel: `deal:${user}`, epoch: d.epoch, seq: 2, recovered: false, missed: 0 });
      const next = await publish(server, `deal:${user}`, NEW('d3'));
      assert.equal((await sub.next()).seq, next.seq, 'no replay: the live event is next');
      await Promise.all([back.close(), sub.close()]);
    });
  }

  test('Recovery.InbandAuthWithSince_Recovers', async () => {
    const inband = await startServer({ env: { ...QUIET, ZENA_INBAND_AUTH: 'true' } });
    try {
      const first = await connectChannels(inband, 'ib');
      await publish(inband, 'user:ib', NEW('seen'));
      const last = await first.next();
      await first.close();
      for (let i = 1; i <= 3; i += 1) await publish(inband, 'user:ib', NEW(`away${i}`));
      const client = new Client(inband.wsUrl());
      await client.opened;
      client.send({ type: 'auth', payload: { token: mintToken({ sub: 'ib' }), since: position(last) } });
      const welcome = await client.next();
      assert.equal(welcome.type, 'connected');
      assert.deepEqual([welcome.payload.recovered, welcome.payload.missed, welcome.payload.seq], [true, 3, 4]);
      assert.deepEqual((await nextN(client, 3)).map((m) => [m.seq, m.payload.threadId]), [[2, 'away1'], [3, 'away2'], [4, 'away3']]);
      // An unreadable since in-band: recovered false, not a refused connection.
      const other = new Client(inband.wsUrl());
      await other.opened;
      other.send({ type: 'auth', payload: { token: mintToken({ sub: 'ib' }), since: 'nope' } });
      const w2 = await other.next();
      assert.deepEqual([w2.type, w2.payload.recovered, w2.payload.missed], ['connected', false, 0]);
      await Promise.all([client.close(), other.close()]);
    } finally {
      await inband.stop();
    }
  });

  test('Recovery.OfflineQueue_AUserWhoNeverConnectedGetsEverythingOnFirstConnect', async () => {
    // The backend renders the page with the channel's position (the history API) before the
    // user ever connects; everything published after that is waiting at the first connect.
    const start = await api(server, 'GET', historyRoute('user:never'));
    assert.deepEqual([start.status, start.body.seq], [200, 0]);
    const events = [NEW('q1'), RISK('d1'), PROGRESS('a1', 5), NEW('q2'), { type: 'task.created', payload: { taskId: 't', label: 'l', source: 'ai' } }];
    const answers = [];
    for (const e of events) answers.push(await publish(server, 'user:never', e));
    assert.deepEqual(answers.map((a) => [a.delivered, a.epoch, a.seq]), events.map((_, i) => [0, start.body.epoch, i + 1]));
    assert.deepEqual((await api(server, 'GET', '/api/users/never/connections')).body.connections, 0);
    const client = await connectChannels(server, 'never', { since: position(start.body) });
    assert.deepEqual([client.welcome.payload.recovered, client.welcome.payload.missed], [true, events.length]);
    assert.deepEqual((await nextN(client, events.length)).map(strip),
      events.map((e, i) => ({ ...e, channel: 'user:never', epoch: start.body.epoch, seq: i + 1 })));
    await client.close();
  });

  test('Recovery.OfflineQueue_FromAPositionTakenAtThePreviousConnection', async () => {
    const first = await connectChannels(server, 'offq');
    const at = first.welcome.payload;
    await first.close();
    await waitFor(async () => (await api(server, 'GET', '/api/users/offq/connections')).body.connections === 0, 3000, 'gone');
    const N = 40;
    for (let i = 1; i <= N; i += 1) await publish(server, 'user:offq', NEW(`q${i}`));
    const client = await connectChannels(server, 'offq', { since: position(at) });
    assert.deepEqual([client.welcome.payload.recovered, client.welcome.payload.missed], [true, N]);
    assert.deepEqual((await nextN(client, N)).map((m) => m.payload.threadId), Array.from({ length: N }, (_, i) => `q${i + 1}`));
    await client.close();
  });
});

describe('recovery: bounded history', () => {
  let server;
  before(async () => { server = await startServer({ env: { ...QUIET, ZENA_CHANNELS_HISTORY_SIZE: '5' } }); });
  after(async () => { await server.stop(); });

  async function awayThenBack(user, away) {
    const first = await connectChannels(server, user);
    await publish(server, `user:${user}`, NEW('seen1'));
    await publish(server, `user:${user}`, NEW('seen2'));
    const last = (await nextN(first, 2)).at(-1);
    await first.close();
    for (let i = 1; i <= away; i += 1) await publish(server, `user:${user}`, NEW(`away${i}`));
    return { back: await connectChannels(server, user, { since: position(last) }), last };
  }

  test('Recovery.MissedExactlyTheHistorySize_Recovers', async () => {
    const { back } = await awayThenBack('fits', 5);
    assert.deepEqual([back.welcome.payload.recovered, back.welcome.payload.missed, back.welcome.payload.seq], [true, 5, 7]);
    assert.deepEqual((await nextN(back, 5)).map((m) => m.seq), [3, 4, 5, 6, 7]);
    await back.close();
  });

  test('Recovery.MissedMoreThanTheHistory_IsRecoveredFalse_NothingReplayed', async () => {
    for (const away of [6, 10]) {
      const { back, last } = await awayThenBack(`over${away}`, away);
      const w = back.welcome.payload;
      assert.deepEqual([w.recovered, w.missed, w.epoch, w.seq], [false, 0, last.epoch, 2 + away]);
      const live = await publish(server, `user:over${away}`, NEW('live'));
      assert.equal((await back.next()).seq, live.seq, 'nothing replayed: the live event is next');
      await back.close();
    }
  });

  test('Recovery.SubscribePastTheHistory_IsRecoveredFalse', async () => {
    const client = await connectChannels(server, 'subover', { claims: { channels: ['deal:*'] } });
    const first = await subscribe(client, 'deal:over');
    for (let i = 1; i <= 10; i += 1) await publish(server, 'deal:over', NEW(`x${i}`));
    await nextN(client, 10);
    const again = await subscribe(client, 'deal:over', { since: `${first.payload.epoch}:2` });
    assert.deepEqual(again.payload, { channel: 'deal:over', epoch: first.payload.epoch, seq: 10, recovered: false, missed: 0 });
    const history = await api(server, 'GET', historyRoute('deal:over'));
    assert.deepEqual(history.body.events.map((e) => e.seq), [6, 7, 8, 9, 10]);
    await client.close();
  });
});

describe('recovery: a restarted memory engine', () => {
  test('Recovery.OldPositionAfterRestart_IsRecoveredFalseWithANewEpoch', async () => {
    const first = await startServer({ env: QUIET });
    let old;
    let oldChannel;
    try {
      const client = await connectChannels(first, 'rs', { claims: { channels: ['deal:*'] } });
      const sub = await subscribe(client, 'deal:rs');
      for (let i = 1; i <= 3; i += 1) {
        await publish(first, 'user:rs', NEW(`before${i}`));
        await publish(first, 'deal:rs', NEW(`before${i}`));
      }
      const got = await nextN(client, 6);
      old = got.filter((m) => m.channel === 'user:rs').at(-1);
      oldChannel = got.filter((m) => m.channel === 'deal:rs').at(-1);
      assert.equal(oldChannel.epoch, sub.payload.epoch);
      await client.close();
    } finally {
      await first.stop();
    }
    const second = await startServer({ env: QUIET });
    try {
      // The new engine numbers from 1 again: the old position's seq exists, in another epoch.
      for (let i = 1; i <= 4; i += 1) {
        await publish(second, 'user:rs', NEW(`after${i}`));
        await publish(second, 'deal:rs', NEW(`after${i}`));
      }
      const back = await connectChannels(second, 'rs', { since: position(old), claims: { channels: ['deal:*'] } });
      const w = back.welcome.payload;
      assert.equal(w.recovered, false);
      assert.equal(w.missed, 0);
      assert.notEqual(w.epoch, old.epoch, 'a new epoch');
      assert.equal(w.seq, 4);
      const answer = await subscribe(back, 'deal:rs', { since: position(oldChannel) });
      assert.deepEqual([answer.payload.recovered, answer.payload.missed, answer.payload.seq], [false, 0, 4]);
      assert.notEqual(answer.payload.epoch, oldChannel.epoch);
      await sleep(50);
      assert.deepEqual(back.messages, [], 'nothing replayed');
      await back.close();
    } finally {
      await second.stop();
    }
  });
});

describe('offline notification', () => {
  let server;
  let hook;
  before(async () => {
    hook = await httpReceiver();
    server = await startServer({ env: { ...QUIET, ZENA_WEBHOOK_URL: hook.url('/zena/events'), ZENA_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  });
  after(async () => {
    await server.stop();
    await hook.close();
  });

  const notices = () => hook.received.map((r) => JSON.parse(r.body)).filter((b) => b.type === 'user.offline_event');

  test('Offline.NotifyOfflineEventToAnOfflineUser_IsSentUpstreamSigned', async () => {
    const before = Date.now();
    const risk = RISK('d-off');
    const res = await api(server, 'POST', '/api/broadcast', { userId: 'away', ...risk });
    assert.deepEqual([res.body.delivered, res.body.channel], [0, 'user:away']);
    await waitFor(() => notices().length === 1, 5000, 'the notice');
    const call = hook.received.at(-1);
    assert.equal(call.headers['x-zena-signature'], signature(call.body, WEBHOOK_SECRET));
    assert.equal(call.headers['content-type'], 'application/json');
    const body = JSON.parse(call.body);
    assert.deepEqual(Object.keys(body).sort(), ['at', 'event', 'type', 'userId']);
    assert.equal(body.type, 'user.offline_event');
    assert.equal(body.userId, 'away');
    assert.deepEqual(body.event, { ...risk, channel: 'user:away', epoch: res.body.epoch, seq: res.body.seq });
    assert.equal(typeof body.at, 'number');
    assert.ok(body.at >= before - 1000 && body.at <= Date.now() + 1000, `at ${body.at}`);
    // And the event waits in the history for the user's next connection.
    const history = await api(server, 'GET', historyRoute('user:away'));
    assert.deepEqual(history.body.events.map((e) => [e.type, e.seq]), [['deal.risk', res.body.seq]]);
  });

  test('Offline.OnlyOfflineUsersAndOnlyNotifyOfflineTypes_AreNoticed', async () => {
    const online = await connectChannels(server, 'here');
    const start = notices().length;
    // None of these is noticed: a connected user; a type without notifyOffline.
    await api(server, 'POST', '/api/broadcast', { userId: 'here', ...RISK('d-here') });
    assert.equal((await online.next()).type, 'deal.risk');
    await api(server, 'POST', '/api/broadcast', { userId: 'gone', ...NEW('t-gone') });
    await api(server, 'POST', '/api/broadcast', { userId: 'gone', ...PROGRESS('a1', 1) });
    // A channel that is not personal: no user to notify.
    await api(server, 'POST', '/api/publish', { channel: 'deal:nobody', ...RISK('d-chan') });
    // broadcastToUsers: only the offline one of the two; task.created is notifyOffline too.
    const task = { type: 'task.created', payload: { taskId: 'task-9', label: 'Call', source: 'ai' } };
    await api(server, 'POST', '/api/broadcast', { userIds: ['here', 'gone'], ...task });
    assert.equal((await online.next()).type, 'task.created');
    // The webhook queue is in order: once the task's notice arrived, any earlier one would have.
    await waitFor(() => notices().length > start, 5000, 'a notice');
    await sleep(300);
    const got = notices().slice(start);
    assert.deepEqual(got.map((n) => [n.userId, n.event.type, n.event.channel]), [['gone', 'task.created', 'user:gone']]);
    assert.deepEqual(got[0].event.payload, task.payload);
    await online.close();
  });

  test('Offline.ARetryWithItsIdempotencyKey_IsNoticedAgainWithTheFirstPosition', async () => {
    // The first try may have been stored and answered 503 (Redis slow), which tells no one: a
    // duplicate is noticed again, with the same position, for the backend to dedupe.
    const start = notices().length;
    const body = { userId: 'away-idem', ...RISK('d-idem'), idempotencyKey: 'risk-d-idem' };
    const first = await api(server, 'POST', '/api/broadcast', body);
    const again = await api(server, 'POST', '/api/broadcast', body);
    assert.equal(again.body.duplicate, true);
    await waitFor(() => notices().length >= start + 2, 5000, 'two notices');
    await sleep(200);
    const got = notices().slice(start);
    assert.deepEqual(got.map((n) => [n.userId, n.event.epoch, n.event.seq]),
      [['away-idem', first.body.epoch, first.body.seq], ['away-idem', first.body.epoch, first.body.seq]]);
  });

  test('Offline.AfterTheLastConnectionCloses_TheUserIsOfflineAgain', async () => {
    const a = await connectChannels(server, 'leaving');
    const b = await connectChannels(server, 'leaving');
    const start = notices().length;
    await a.close();
    await api(server, 'POST', '/api/broadcast', { userId: 'leaving', ...RISK('still-one') });
    assert.equal((await b.next()).type, 'deal.risk');
    await b.close();
    await waitFor(async () => (await api(server, 'GET', '/api/users/leaving/connections')).body.connections === 0, 3000, 'gone');
    await api(server, 'POST', '/api/broadcast', { userId: 'leaving', ...RISK('none-left') });
    await waitFor(() => notices().length > start, 5000, 'the notice');
    await sleep(200);
    assert.deepEqual(notices().slice(start).map((n) => n.event.payload.dealId), ['none-left']);
  });
});
