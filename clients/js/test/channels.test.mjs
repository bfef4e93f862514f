// Channels, positions, resync and recovery (docs/channels.md), with fake timers and an in-memory
// socket: subscribe/unsubscribe, re-subscribe after a reconnect with `since`, the position
// stores, resync on `recovered: false` and on a new epoch, dedupe, an Ask stream across a
// reconnect.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import {
  AskStreamInterruptedError,
  ClientClosedError,
  connect,
  localStoragePositions,
  memoryPositions,
  SubscribeError,
} from '../dist/index.js';
import { fakeSocket } from '../test_support/fake_socket.mjs';

const FakeSocket = fakeSocket({ welcome: { heartbeatIntervalMs: 600000, channel: 'user:alice' } });
const last = () => FakeSocket.all.at(-1);
const flush = async () => { for (let i = 0; i < 3; i += 1) await new Promise((r) => setImmediate(r)); };
const jwt = (claims) => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;

// A fake localStorage: a Map behind the Web Storage methods.
class FakeStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
});
afterEach(() => mock.timers.reset());

const open = (options = {}) => connect({ url: 'ws://gateway/ws', token: 't1', WebSocket: FakeSocket, random: () => 0, ...options });

// Drops the socket and lets the backoff's delay pass, until the next socket is opened.
async function reconnect() {
  const before = FakeSocket.all.length;
  last().drop(1006);
  for (let i = 0; i < 60 && FakeSocket.all.length === before; i += 1) {
    mock.timers.tick(1000);
    await flush();
  }
  assert.equal(FakeSocket.all.length, before + 1, 'reconnected');
}

const ev = (type, payload, channel, epoch, seq) => ({ type, payload, channel, epoch, seq });
const thread = (id) => ({ threadId: id, accountId: 'a' });

test('Subscribe.SendsSubscribe_ResolvesOnSubscribed_RejectsOnError', async () => {
  const client = open();
  await flush();
  last().welcome();
  const ok = client.subscribe('deal:123', { token: 'channel-jwt' });
  assert.deepEqual(last().sentOf('subscribe'), [{ type: 'subscribe', payload: { channel: 'deal:123', token: 'channel-jwt' } }], 'no since for a channel never seen');
  last().message({ type: 'subscribed', payload: { channel: 'deal:123', epoch: 'k2', seq: 9 } });
  assert.deepEqual(await ok, { channel: 'deal:123', epoch: 'k2', seq: 9 });
  assert.deepEqual(client.position('deal:123'), { epoch: 'k2', seq: 9 }, 'the first subscribe takes the position');
  assert.deepEqual(client.subscriptions(), ['deal:123']);

  const refused = client.subscribe('deal:999');
  last().message({ type: 'subscribe.error', payload: { channel: 'deal:999', reason: 'forbidden' } });
  await assert.rejects(refused, (e) => e instanceof SubscribeError && e.reason === 'forbidden' && e.channel === 'deal:999');
  assert.deepEqual(client.subscriptions(), ['deal:123'], 'a refused channel is not remembered');
  client.close();
});

test('Unsubscribe.SendsUnsubscribe_ResolvesOnUnsubscribed_AndForgetsTheChannel', async () => {
  const client = open();
  await flush();
  last().welcome();
  const sub = client.subscribe('deal:1');
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'e', seq: 3 } });
  await sub;
  let resolved = false;
  const unsub = client.unsubscribe('deal:1').then(() => { resolved = true; });
  assert.deepEqual(last().sentOf('unsubscribe'), [{ type: 'unsubscribe', payload: { channel: 'deal:1' } }]);
  await flush();
  assert.equal(resolved, false, 'not before the answer');
  last().message({ type: 'unsubscribed', payload: { channel: 'deal:1' } });
  await unsub;
  assert.equal(resolved, true);
  assert.deepEqual(client.subscriptions(), []);
  assert.equal(client.position('deal:1'), undefined, 'its position is forgotten too');
  await reconnect();
  last().welcome();
  await flush();
  assert.deepEqual(last().sentOf('subscribe'), [], 'not subscribed again after a reconnect');
  client.close();
});

test('Subscribe.AfterReconnect_SubscribesAgainWithSinceAndAFreshToken', async () => {
  let tokens = 0;
  const client = open({ token: () => 'conn' });
  await flush();
  last().welcome();
  const seen = [];
  client.on('deal.risk', (p, m) => seen.push(`${m.channel}#${m.seq}`));
  const sub = client.subscribe('deal:1', { token: () => `ct${++tokens}` });
  await flush();
  assert.deepEqual(last().sentOf('subscribe')[0].payload, { channel: 'deal:1', token: 'ct1' });
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'e1', seq: 4 } });
  await sub;
  const risk = { dealId: 'd1', riskLevel: 'high', riskFlags: [], riskReason: 'r' };
  last().message(ev('deal.risk', risk, 'deal:1', 'e1', 5));
  last().message(ev('deal.risk', risk, 'deal:1', 'e1', 6));

  await reconnect();
  last().welcome();
  await flush();
  assert.deepEqual(last().sentOf('subscribe'), [{ type: 'subscribe', payload: { channel: 'deal:1', since: 'e1:6', token: 'ct2' } }],
    'the stored position and a new channel token');
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'e1', seq: 8, recovered: true, missed: 2 } });
  last().message(ev('deal.risk', risk, 'deal:1', 'e1', 6)); // an overlap: dropped
  last().message(ev('deal.risk', risk, 'deal:1', 'e1', 7));
  last().message(ev('deal.risk', risk, 'deal:1', 'e1', 8));
  assert.deepEqual(seen, ['deal:1#5', 'deal:1#6', 'deal:1#7', 'deal:1#8'], 'recovered: the replay is delivered, nothing twice');
  assert.deepEqual(client.position('deal:1'), { epoch: 'e1', seq: 8 });
  client.close();
});

test('Subscribe.WhileDisconnected_GoesOnceWithTheNextWelcome', async () => {
  const client = open();
  await flush();
  const sub = client.subscribe('thread:9');
  assert.equal(last().sent.length, 0);
  last().welcome();
  await flush();
  assert.deepEqual(last().sentOf('subscribe'), [{ type: 'subscribe', payload: { channel: 'thread:9' } }]);
  last().message({ type: 'subscribed', payload: { channel: 'thread:9', epoch: 'e', seq: 0 } });
  assert.equal((await sub).channel, 'thread:9');

  // unsubscribe() before the answer, while disconnected: the subscribe is cancelled.
  await reconnect();
  const pending = client.subscribe('thread:10');
  await client.unsubscribe('thread:10');
  await assert.rejects(pending, (e) => e instanceof SubscribeError && e.reason === 'cancelled');
  last().welcome();
  await flush();
  assert.deepEqual(last().sentOf('subscribe').map((m) => m.payload.channel), ['thread:9']);
  client.close();
  await assert.rejects(client.subscribe('x:1'), ClientClosedError);
});

test('Subscribe.PendingAtClose_IsRejected', async () => {
  const client = open();
  await flush();
  const sub = client.subscribe('deal:1');
  client.close();
  await assert.rejects(sub, ClientClosedError);
});

test('ServerSubscriptions_AreTrackedButNotSubscribedAgain_AndServerUnsubscribeForgets', async () => {
  const client = open();
  await flush();
  last().welcome();
  const answers = [];
  client.on('subscribed', (p) => answers.push(p.channel));
  last().message({ type: 'subscribed', payload: { channel: 'deal:7', epoch: 'e', seq: 2 } });
  assert.deepEqual(answers, ['deal:7'], 'the application sees the backend subscription');
  assert.deepEqual(client.subscriptions(), ['deal:7']);
  last().message(ev('deal.risk', { dealId: 'd', riskLevel: 'medium', riskFlags: [], riskReason: 'r' }, 'deal:7', 'e', 3));
  assert.deepEqual(client.position('deal:7'), { epoch: 'e', seq: 3 });

  last().message({ type: 'subscribed', payload: { channel: 'deal:8', epoch: 'e', seq: 1 } });
  last().message({ type: 'unsubscribed', payload: { channel: 'deal:8', reason: 'server' } });
  assert.deepEqual(client.subscriptions(), ['deal:7'], 'a removal by the backend forgets the channel');
  assert.equal(client.position('deal:8'), undefined);

  await reconnect();
  assert.deepEqual(client.subscriptions(), [], 'gone with the connection that held it');
  last().welcome();
  await flush();
  assert.deepEqual(last().sentOf('subscribe'), [], 'the backend subscribes again, not the client');
  // The backend subscribes again; events were published meanwhile: the client must refetch.
  const resyncs = [];
  client.onResync((e) => resyncs.push(e));
  last().message({ type: 'subscribed', payload: { channel: 'deal:7', epoch: 'e', seq: 5 } });
  assert.deepEqual(resyncs, [{ channel: 'deal:7', epoch: 'e', seq: 5 }]);
  assert.deepEqual(client.position('deal:7'), { epoch: 'e', seq: 5 });
  client.close();
});

test('Positions.PerChannel_DropOnlyWhatWasSeenInThatChannel', async () => {
  const client = open();
  await flush();
  last().welcome();
  const seen = [];
  client.on('thread.new', (p) => seen.push(p.threadId));
  last().message(ev('thread.new', thread('a5'), 'user:alice', 'e', 5));
  last().message(ev('thread.new', thread('b5'), 'thread:1', 'e', 5)); // same seq, other channel
  last().message(ev('thread.new', thread('a4'), 'user:alice', 'e', 4)); // older: dropped
  last().message(ev('thread.new', thread('a5again'), 'user:alice', 'e', 5)); // same: dropped
  last().message(ev('thread.new', thread('live'), undefined, undefined, undefined)); // ephemeral: no position
  last().message(ev('thread.new', thread('a6'), 'user:alice', 'e', 6));
  assert.deepEqual(seen, ['a5', 'b5', 'live', 'a6']);
  assert.deepEqual(client.position(), { epoch: 'e', seq: 6 }, 'no argument: the personal channel');
  assert.deepEqual(client.position('user:alice'), { epoch: 'e', seq: 6 }, 'stored under its real name');
  assert.deepEqual(client.position('thread:1'), { epoch: 'e', seq: 5 });
  client.close();
});

test('Positions.CustomStore_GetsEveryChangeUnderTheChannelName', async () => {
  const calls = [];
  const inner = memoryPositions();
  const store = {
    get: (k) => inner.get(k),
    set: (k, p) => { calls.push(`${k}=${p.epoch}:${p.seq}`); inner.set(k, p); },
    delete: (k) => { calls.push(`-${k}`); inner.delete(k); },
  };
  const client = open({ positions: store });
  await flush();
  last().welcome({ epoch: 'e', seq: 1 });
  last().message(ev('thread.new', thread('t'), 'user:alice', 'e', 2));
  const sub = client.subscribe('deal:1');
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'f', seq: 0 } });
  await sub;
  const unsub = client.unsubscribe('deal:1');
  last().message({ type: 'unsubscribed', payload: { channel: 'deal:1' } });
  await unsub;
  assert.deepEqual(calls, ['user:alice=e:1', 'user:alice=e:2', 'deal:1=f:0', '-deal:1']);
  assert.deepEqual(inner.get('user:alice'), { epoch: 'e', seq: 2 });
  client.close();
});

test('Positions.LocalStorage_AReloadResumesOnItsFirstConnection', async () => {
  const storage = new FakeStorage();
  const token = jwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 });
  const page1 = open({ token, positions: localStoragePositions('zena-realtime:', storage) });
  await flush();
  assert.equal(last().url.searchParams.get('since'), null, 'nothing stored yet');
  last().welcome({ epoch: 'k2x', seq: 40 });
  last().message(ev('thread.new', thread('t41'), 'user:alice', 'k2x', 41));
  const sub = page1.subscribe('deal:1');
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'd1', seq: 7 } });
  await sub;
  assert.equal(storage.getItem('zena-realtime:user:alice'), '{"epoch":"k2x","seq":41}');
  assert.equal(storage.getItem('zena-realtime:deal:1'), '{"epoch":"d1","seq":7}');
  page1.close();

  // The reload: a new client, the same storage, the user from the token before any welcome.
  const resyncs = [];
  const page2 = open({ token, positions: localStoragePositions('zena-realtime:', storage) });
  page2.onResync((e) => resyncs.push(e));
  await flush();
  assert.equal(last().url.searchParams.get('since'), 'k2x:41', 'the first connection presents the stored position');
  assert.deepEqual(page2.position(), { epoch: 'k2x', seq: 41 });
  last().welcome({ epoch: 'k2x', seq: 42, recovered: true, missed: 1 });
  const seen = [];
  page2.on('thread.new', (p) => seen.push(p.threadId));
  last().message(ev('thread.new', thread('t42'), 'user:alice', 'k2x', 42));
  assert.deepEqual(seen, ['t42']);
  assert.deepEqual(resyncs, []);
  const resumed = page2.subscribe('deal:1');
  assert.deepEqual(last().sentOf('subscribe')[0].payload, { channel: 'deal:1', since: 'd1:7' });
  page2.close();
  await assert.rejects(resumed, ClientClosedError);
});

test('Positions.LocalStorage_SurvivesBrokenStorage', () => {
  const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('quota'); }, removeItem() { throw new Error('denied'); } };
  const store = localStoragePositions('p:', broken);
  assert.doesNotThrow(() => store.set('a', { epoch: 'e', seq: 1 }));
  assert.equal(store.get('a'), undefined);
  const garbage = new FakeStorage();
  garbage.setItem('p:a', 'not json');
  garbage.setItem('p:b', '{"epoch":"e","seq":-1}');
  garbage.setItem('p:c', '{"epoch":"e","seq":3}');
  const s = localStoragePositions('p:', garbage);
  assert.equal(s.get('a'), undefined);
  assert.equal(s.get('b'), undefined);
  assert.deepEqual(s.get('c'), { epoch: 'e', seq: 3 });
  s.delete('c');
  assert.equal(garbage.getItem('p:c'), null);
  // Without localStorage (Node): kept in memory.
  const fallback = localStoragePositions();
  fallback.set('x', { epoch: 'e', seq: 2 });
  assert.deepEqual(fallback.get('x'), { epoch: 'e', seq: 2 });
});

test('Positions.TabsSharingAStore_DoNotDropEachOthersEvents', async () => {
  const storage = new FakeStorage();
  const a = open({ positions: localStoragePositions('z:', storage) });
  await flush();
  const socketA = last();
  socketA.welcome();
  const b = open({ positions: localStoragePositions('z:', storage) });
  await flush();
  const socketB = last();
  socketB.welcome();
  const seenB = [];
  b.on('thread.new', (p) => seenB.push(p.threadId));
  socketA.message(ev('thread.new', thread('t1'), 'user:alice', 'e', 1));
  socketA.message(ev('thread.new', thread('t2'), 'user:alice', 'e', 2));
  socketB.message(ev('thread.new', thread('t1'), 'user:alice', 'e', 1));
  assert.deepEqual(seenB, ['t1'], 'tab B has not seen t1 itself');
  a.close();
  b.close();
});

test('Resync.WelcomeNotRecoveredWithoutAPosition_EmitsResyncAndKeepsItsOwn', async () => {
  const resyncs = [];
  const client = open();
  client.onResync((e) => resyncs.push(e));
  await flush();
  last().welcome({ epoch: 'e1', seq: 10 });
  await reconnect();
  assert.equal(last().url.searchParams.get('since'), 'e1:10');
  // An engine that could not tell the position (older servers answered so while Redis was away).
  last().welcome({ recovered: false, missed: 0 });
  assert.deepEqual(resyncs, [{ channel: 'user:alice', epoch: 'e1', seq: 10 }], 'never a silent gap');
  assert.deepEqual(client.position(), { epoch: 'e1', seq: 10 }, 'its own position, for the next connection');
  client.close();
});

test('Resync.WelcomeNotRecovered_EmitsResyncAndTakesTheNewPosition', async () => {
  const resyncs = [];
  const client = open();
  client.onResync((e) => resyncs.push(e));
  await flush();
  last().welcome({ epoch: 'e1', seq: 10 });
  assert.deepEqual(resyncs, [], 'a first connection presents nothing and resyncs nothing');
  assert.deepEqual(client.position(), { epoch: 'e1', seq: 10 }, 'it takes the welcome position');
  last().message(ev('thread.new', thread('t11'), 'user:alice', 'e1', 11));

  await reconnect();
  assert.equal(last().url.searchParams.get('since'), 'e1:11');
  last().welcome({ epoch: 'e2', seq: 3, recovered: false, missed: 0 });
  assert.deepEqual(resyncs, [{ channel: 'user:alice', epoch: 'e2', seq: 3 }]);
  assert.deepEqual(client.position(), { epoch: 'e2', seq: 3 });
  const seen = [];
  client.on('thread.new', (p) => seen.push(p.threadId));
  last().message(ev('thread.new', thread('old'), 'user:alice', 'e2', 3));
  last().message(ev('thread.new', thread('new'), 'user:alice', 'e2', 4));
  assert.deepEqual(seen, ['new']);

  // recovered: true keeps the position: the replay that follows advances it.
  await reconnect();
  assert.equal(last().url.searchParams.get('since'), 'e2:4');
  last().welcome({ epoch: 'e2', seq: 6, recovered: true, missed: 2 });
  last().message(ev('thread.new', thread('r5'), 'user:alice', 'e2', 5));
  last().message(ev('thread.new', thread('r6'), 'user:alice', 'e2', 6));
  assert.deepEqual(seen, ['new', 'r5', 'r6']);
  assert.equal(resyncs.length, 1);
  client.close();
});

test('Resync.SubscribedNotRecovered_EmitsResyncForThatChannel', async () => {
  const resyncs = [];
  const client = open();
  client.onResync((e) => resyncs.push(e));
  await flush();
  last().welcome();
  const first = client.subscribe('deal:1');
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'a', seq: 50 } });
  await first;
  assert.deepEqual(resyncs, []);
  await reconnect();
  last().welcome();
  await flush();
  assert.equal(last().sentOf('subscribe')[0].payload.since, 'a:50');
  last().message({ type: 'subscribed', payload: { channel: 'deal:1', epoch: 'b', seq: 2, recovered: false, missed: 0 } });
  assert.deepEqual(resyncs, [{ channel: 'deal:1', epoch: 'b', seq: 2 }]);
  assert.deepEqual(client.position('deal:1'), { epoch: 'b', seq: 2 });
  client.close();
});

test('Resync.LiveEventInANewEpoch_EmitsResyncAndIsDelivered', async () => {
  const resyncs = [];
  const seen = [];
  const client = open();
  client.onResync((e) => resyncs.push(e));
  client.on('thread.new', (p) => seen.push(p.threadId));
  await flush();
  last().welcome({ epoch: 'e1', seq: 0 });
  last().message(ev('thread.new', thread('t1'), 'user:alice', 'e1', 1));
  last().message(ev('thread.new', thread('t2'), 'user:alice', 'e9', 1)); // history lost on the server
  assert.deepEqual(resyncs, [{ channel: 'user:alice', epoch: 'e9', seq: 1 }]);
  assert.deepEqual(seen, ['t1', 't2']);
  assert.deepEqual(client.position(), { epoch: 'e9', seq: 1 });
  client.close();
});

test('Resubscribe.TransientErrorsAreRetried_FinalOnesForgottenAndReported', async () => {
  const errors = [];
  const client = open();
  client.onError((e) => errors.push(e));
  await flush();
  last().welcome();
  for (const ch of ['deal:1', 'deal:2']) {
    const p = client.subscribe(ch);
    last().message({ type: 'subscribed', payload: { channel: ch, epoch: 'e', seq: 1 } });
    await p;
  }
  await reconnect();
  last().welcome();
  await flush();
  assert.deepEqual(last().sentOf('subscribe').map((m) => m.payload.channel), ['deal:1', 'deal:2']);
  last().message({ type: 'subscribe.error', payload: { channel: 'deal:1', reason: 'rate_limited' } });
  last().message({ type: 'subscribe.error', payload: { channel: 'deal:2', reason: 'forbidden' } });
  assert.deepEqual(client.subscriptions(), ['deal:1']);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof SubscribeError && errors[0].channel === 'deal:2' && errors[0].reason === 'forbidden');
  mock.timers.tick(999);
  assert.equal(last().sentOf('subscribe').length, 2);
  mock.timers.tick(1);
  await flush();
  assert.deepEqual(last().sentOf('subscribe').at(-1).payload, { channel: 'deal:1', since: 'e:1' }, 'tried again after the backoff');
  client.close();
});

test('AskStream.InterruptedByAReconnect_ContinuesInTheSameIterator', async () => {
  const client = open();
  await flush();
  last().welcome({ epoch: 'e', seq: 0 });
  let id;
  const answer = client.ask((streamId) => { id = streamId; });
  await flush();
  const chunk = (seq, text, isComplete = false) => last().message(ev('ask.response', { chunk: text, isComplete, streamId: id }, 'user:alice', 'e', seq));
  chunk(1, 'The ');
  chunk(2, 'offer ');
  const texts = [];
  const reading = (async () => { for await (const c of answer) texts.push(c.chunk); })();
  await flush();
  assert.deepEqual(texts, ['The ', 'offer ']);

  last().drop(4000, 'slow_consumer');
  mock.timers.tick(1000);
  await flush();
  assert.equal(last().url.searchParams.get('since'), 'e:2');
  last().welcome({ epoch: 'e', seq: 4, recovered: true, missed: 2 });
  chunk(2, 'offer '); // already seen: dropped by position
  chunk(3, 'is ');
  chunk(4, 'fair.', true);
  await reading;
  assert.deepEqual(texts, ['The ', 'offer ', 'is ', 'fair.']);
  client.close();
});

test('AskStream.PersonalChannelNotRecovered_ThrowsAfterTheChunksItHas', async () => {
  const client = open();
  await flush();
  last().welcome({ epoch: 'e', seq: 0 });
  const answer = client.stream('s1');
  const other = client.stream('s2');
  last().message(ev('ask.response', { chunk: 'Part', isComplete: false, streamId: 's1' }, 'user:alice', 'e', 1));
  await reconnect();
  last().welcome({ epoch: 'f', seq: 9, recovered: false, missed: 0 });
  assert.equal((await answer.next()).value.chunk, 'Part');
  await assert.rejects(answer.next(), (e) => e instanceof AskStreamInterruptedError && e.streamId === 's1');
  await assert.rejects(other.next(), AskStreamInterruptedError);
  // A stream started after the resync is unaffected.
  const fresh = client.stream('s3');
  last().message(ev('ask.response', { chunk: 'ok', isComplete: true, streamId: 's3' }, 'user:alice', 'f', 10));
  assert.equal((await fresh.next()).value.chunk, 'ok');
  client.close();
});
