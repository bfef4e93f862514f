// Presence and typing indicators in the client (docs/presence.md), with fake timers and an
// in-memory socket: typing() throttled to one typing.start a second and sent only on a held
// channel, stopTyping(), onTyping()'s list with its expiries, presence() answered by
// presence.state, waiting for the subscription and asked again after a reconnect.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { ClientClosedError, connect, PresenceError } from '../dist/index.js';
import { fakeSocket } from '../test_support/fake_socket.mjs';

const FakeSocket = fakeSocket({ welcome: { heartbeatIntervalMs: 600000, channel: 'user:alice' } });
const last = () => FakeSocket.all.at(-1);
const flush = async () => { for (let i = 0; i < 3; i += 1) await new Promise((r) => setImmediate(r)); };

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
});
afterEach(() => mock.timers.reset());

const open = (options = {}) => connect({ url: 'ws://gateway/ws', token: 't1', WebSocket: FakeSocket, random: () => 0, ...options });

// A client with an open connection holding `channels`.
async function holding(...channels) {
  const client = open();
  await flush();
  last().welcome();
  for (const channel of channels) {
    const sub = client.subscribe(channel);
    last().subscribed(channel);
    await sub;
  }
  return client;
}

async function reconnect() {
  const before = FakeSocket.all.length;
  last().drop(1006);
  for (let i = 0; i < 60 && FakeSocket.all.length === before; i += 1) {
    mock.timers.tick(1000);
    await flush();
  }
  assert.equal(FakeSocket.all.length, before + 1, 'reconnected');
}

const typingEvent = (channel, userId, active) => ({ type: 'typing', payload: { channel, userId, active } });

test('Typing.EveryKeystroke_SendsAtMostOneStartASecondPerChannel', async () => {
  const client = await holding('thread:9', 'thread:10');
  for (let i = 0; i < 10; i += 1) {
    client.typing('thread:9');
    mock.timers.tick(150); // ten keystrokes over 1.5 s
  }
  client.typing('thread:10');
  assert.deepEqual(last().sentOf('typing.start'), [
    { type: 'typing.start', payload: { channel: 'thread:9' } },
    { type: 'typing.start', payload: { channel: 'thread:9' } },
    { type: 'typing.start', payload: { channel: 'thread:10' } },
  ], 'at 0 ms and at 1050 ms on thread:9; thread:10 has its own throttle');
  client.close();
});

test('Typing.StopTyping_SendsStopOnce_AndTheNextKeystrokeStartsAtOnce', async () => {
  const client = await holding('thread:9');
  client.stopTyping('thread:9');
  assert.deepEqual(last().sentOf('typing.stop'), [], 'nothing to stop before any typing');
  client.typing('thread:9');
  mock.timers.tick(100);
  client.stopTyping('thread:9');
  client.stopTyping('thread:9');
  assert.deepEqual(last().sentOf('typing.stop'), [{ type: 'typing.stop', payload: { channel: 'thread:9' } }]);
  mock.timers.tick(100);
  client.typing('thread:9');
  assert.equal(last().sentOf('typing.start').length, 2, 'a stop resets the throttle');
  client.close();
});

test('Typing.OnAChannelNotHeld_OrWhileDisconnected_IsDroppedNotQueued', async () => {
  const client = open();
  await flush();
  client.typing('thread:9'); // connecting
  last().welcome();
  client.typing('thread:9'); // not subscribed
  const sub = client.subscribe('thread:9');
  client.typing('thread:9'); // subscribe not yet confirmed: the server would ignore it
  assert.deepEqual(last().sentOf('typing.start'), []);
  last().subscribed('thread:9');
  await sub;
  client.typing('thread:9');
  assert.equal(last().sentOf('typing.start').length, 1);

  await reconnect();
  client.typing('thread:9'); // reconnecting: dropped
  last().welcome();
  await flush();
  client.typing('thread:9'); // re-subscribe not yet confirmed
  assert.deepEqual(last().sentOf('typing.start'), []);
  last().subscribed('thread:9');
  client.typing('thread:9');
  client.stopTyping('thread:9');
  assert.deepEqual(last().sent.map((m) => m.type), ['subscribe', 'typing.start', 'typing.stop'], 'a new connection: no throttle carried over');
  const left = client.unsubscribe('thread:9');
  last().message({ type: 'unsubscribed', payload: { channel: 'thread:9' } });
  await left;
  client.typing('thread:9');
  assert.equal(last().sentOf('typing.start').length, 1, 'after unsubscribe: dropped');
  client.close();
});

test('OnTyping.ListsTypingUsers_ActiveFalseAndTheSafetyTimeoutRemoveThem', async () => {
  const client = await holding('thread:9');
  const lists = [];
  const off = client.onTyping('thread:9', (users) => lists.push(users));
  const s = last();
  s.message(typingEvent('thread:9', 'bob', true));
  s.message(typingEvent('thread:other', 'dan', true)); // another channel
  s.message(typingEvent('thread:9', 'carol', true));
  mock.timers.tick(5000);
  s.message(typingEvent('thread:9', 'bob', true)); // a refresh: no change, its timeout restarts
  s.message(typingEvent('thread:9', 'carol', false));
  s.message(typingEvent('thread:9', 'carol', false)); // again: no change
  assert.deepEqual(lists, [['bob'], ['bob', 'carol'], ['bob']]);
  mock.timers.tick(7999);
  assert.equal(lists.length, 3, 'bob refreshed 5 s in: still typing at 12.999 s');
  mock.timers.tick(1);
  assert.deepEqual(lists.at(-1), [], '8 s without a refresh: expired locally');
  s.message(typingEvent('thread:9', 'bob', false));
  assert.equal(lists.length, 4, 'a late active:false changes nothing');

  s.message(typingEvent('thread:9', 'bob', true));
  assert.deepEqual(lists.at(-1), ['bob']);
  await reconnect();
  assert.deepEqual(lists.at(-1), [], 'a dropped connection clears the list');
  last().welcome();
  off();
  last().message(typingEvent('thread:9', 'bob', true));
  assert.equal(lists.length, 6, 'no calls after off()');
  client.close();
});

test('OnTyping.TimeoutOption_AndAThrowingHandlerGoesToOnError', async () => {
  const client = await holding('thread:9');
  const errors = [];
  client.onError((e) => errors.push(e.message));
  const lists = [];
  client.onTyping('thread:9', (users) => { lists.push(users); throw new Error('render failed'); }, { timeoutMs: 2000 });
  last().message(typingEvent('thread:9', 'bob', true));
  mock.timers.tick(2000);
  assert.deepEqual(lists, [['bob'], []]);
  assert.deepEqual(errors, ['render failed', 'render failed']);
  client.close();
});

test('Presence.SendsPresenceGet_ResolvesWithTheState_RejectsWithTheReason', async () => {
  const client = await holding('thread:9');
  const ok = client.presence('thread:9');
  assert.deepEqual(last().sentOf('presence.get'), [{ type: 'presence.get', payload: { channel: 'thread:9' } }]);
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', users: ['alice', 'bob'], count: 2 } });
  assert.deepEqual(await ok, { channel: 'thread:9', users: ['alice', 'bob'], count: 2 });

  const big = client.presence('thread:9');
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', count: 250 } });
  assert.deepEqual(await big, { channel: 'thread:9', count: 250 }, 'past max_list: the count only');

  const refused = client.presence('deal:1'); // not subscribed: asked anyway, the server says why
  assert.equal(last().sentOf('presence.get').length, 3);
  last().message({ type: 'presence.state', payload: { channel: 'deal:1', error: 'not_subscribed' } });
  await assert.rejects(refused, (e) => e instanceof PresenceError && e.reason === 'not_subscribed' && e.channel === 'deal:1');

  // Two at once on one channel: answered in order.
  const a = client.presence('thread:9');
  const b = client.presence('thread:9');
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', users: ['alice'], count: 1 } });
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', error: 'presence_off' } });
  assert.equal((await a).count, 1);
  await assert.rejects(b, (e) => e.reason === 'presence_off');
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', users: [], count: 0 } }); // unasked: ignored
  client.close();
});

test('Presence.WaitsForTheSubscribe_AndIsAskedAgainAfterAReconnect', async () => {
  const client = open();
  await flush();
  const early = client.presence('thread:9'); // before any connection
  const sub = client.subscribe('thread:9');
  last().welcome();
  await flush();
  assert.deepEqual(last().sent.map((m) => m.type), ['subscribe'], 'presence.get waits for subscribed');
  last().subscribed('thread:9');
  assert.deepEqual(last().sent.map((m) => m.type), ['subscribe', 'presence.get']);
  await sub;

  // Asked, then the connection drops before the answer: asked again once re-subscribed.
  const p = Promise.all([early, client.presence('thread:9')]);
  await reconnect();
  last().welcome();
  await flush();
  assert.deepEqual(last().sent.map((m) => m.type), ['subscribe']);
  last().subscribed('thread:9');
  assert.equal(last().sentOf('presence.get').length, 2, 'both unanswered requests go again');
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', users: ['alice'], count: 1 } });
  last().message({ type: 'presence.state', payload: { channel: 'thread:9', users: ['alice'], count: 1 } });
  assert.deepEqual((await p).map((x) => x.users), [['alice'], ['alice']]);
  client.close();
});

test('Presence.ASubscribeRefused_AsksAnyway_AndCloseRejectsWhatIsPending', async () => {
  const client = open();
  await flush();
  last().welcome();
  const sub = client.subscribe('deal:9').catch((e) => e.reason);
  const p = client.presence('deal:9');
  assert.deepEqual(last().sentOf('presence.get'), []);
  last().message({ type: 'subscribe.error', payload: { channel: 'deal:9', reason: 'forbidden' } });
  assert.equal(await sub, 'forbidden');
  await flush();
  assert.equal(last().sentOf('presence.get').length, 1, 'the channel is not held: the server answers');
  last().message({ type: 'presence.state', payload: { channel: 'deal:9', error: 'not_subscribed' } });
  await assert.rejects(p, PresenceError);

  const pending = client.presence('deal:9');
  client.close();
  await assert.rejects(pending, ClientClosedError);
  await assert.rejects(client.presence('deal:9'), ClientClosedError);
});
