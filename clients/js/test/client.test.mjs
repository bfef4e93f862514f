// The client's own behaviour, with fake timers and an in-memory socket (the timing cannot be
// tested against a real server without waiting 30 s): the backoff schedule, reset after a
// stable connection, 1008 handling, the send queue, liveness, dedupe by position, Ask streams.
// The same client against the real server is tested in tests/e2e/sdk_client.test.mjs.
import assert from 'node:assert/strict';
import { beforeEach, afterEach, mock, test } from 'node:test';
import { AskStreamError, backoffDelay, connect, DEFAULT_BACKOFF, SendQueueFullError } from '../dist/index.js';
import { fakeSocket } from '../test_support/fake_socket.mjs';

const FakeSocket = fakeSocket({ welcome: { heartbeatIntervalMs: 30000 } });
const last = () => FakeSocket.all.at(-1);
const flush = () => new Promise((r) => setImmediate(r));

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
});
afterEach(() => mock.timers.reset());

const open = (options = {}) => connect({ url: 'ws://gateway/ws', token: 't1', WebSocket: FakeSocket, random: () => 0, ...options });

test('Backoff.Schedule_Is1_2_4_8_16_30sCappedPlusJitter', () => {
  const delays = [0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, DEFAULT_BACKOFF, 0));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffDelay(0, DEFAULT_BACKOFF, 0.5), 1100, 'jitter adds up to 20%');
  assert.equal(backoffDelay(5, DEFAULT_BACKOFF, 0.999), 35994, "30 s cap plus at most 20%");
});

test('Client.DroppedConnection_ReconnectsOnTheSchedule_AndResetsWhenStable', async () => {
  const states = [];
  const client = open();
  client.onState((e) => states.push(e));
  await flush();
  last().welcome();
  for (const expected of [1000, 2000, 4000, 8000]) {
    const before = FakeSocket.all.length;
    last().drop(1006);
    assert.equal(states.at(-1).state, 'reconnecting');
    assert.equal(states.at(-1).delayMs, expected);
    mock.timers.tick(expected - 1);
    await flush();
    assert.equal(FakeSocket.all.length, before, `no attempt before ${expected} ms`);
    mock.timers.tick(1);
    await flush();
    assert.equal(FakeSocket.all.length, before + 1);
  }
  last().welcome();
  mock.timers.tick(DEFAULT_BACKOFF.stableMs);
  last().drop(1006);
  assert.equal(states.at(-1).delayMs, 1000, 'a stable connection resets the schedule');
  client.close();
});

test('Client.ListOfNodes_EachAttemptTakesTheNextAndResumesFromItsPosition', async () => {
  const client = open({ url: ['ws://node-a/ws', 'ws://node-b/ws'] });
  await flush();
  assert.equal(last().url.host, 'node-a');
  last().welcome();
  last().message({ type: 'thread.new', payload: { threadId: 't1', accountId: 'a' }, channel: 'user:alice', epoch: 'e1', seq: 7 });
  last().drop(1006);
  mock.timers.tick(1000);
  await flush();
  assert.equal(last().url.host, 'node-b', 'the next node');
  assert.equal(last().url.searchParams.get('since'), 'e1:7', 'its position travels with it');
  last().drop(1006);
  mock.timers.tick(2000);
  await flush();
  assert.equal(last().url.host, 'node-a', 'round the list again');
  client.close();
  assert.throws(() => connect({ url: [], token: 't', WebSocket: FakeSocket }), /at least one URL/);
});

test('Client.GoingAway_ReconnectsWithinASecond', async () => {
  const states = [];
  const client = open({ random: () => 0.5 });
  client.onState((e) => states.push(e));
  await flush();
  last().welcome();
  last().drop(1001, 'server shutting down');
  assert.deepEqual(states.at(-1), { state: 'reconnecting', delayMs: 500, attempt: 0 });
  client.close();
});

test('Client.RefusedToken_StopsRetryingUntilANewTokenExists', async () => {
  let token = 'old';
  const states = [];
  const client = open({ token: () => token });
  client.onState((e) => states.push(e.state));
  await flush();
  last().drop(1008, 'invalid token');
  mock.timers.tick(1000);
  await flush();
  assert.equal(FakeSocket.all.length, 1, 'the refused token is not tried again');
  assert.equal(client.state, 'unauthorized');
  token = 'new';
  client.reconnect();
  await flush();
  assert.equal(FakeSocket.all.length, 2);
  assert.deepEqual(last().protocols, ['zena-realtime', 'bearer.new'], 'the token travels as a subprotocol');
  assert.equal(last().url.searchParams.get('token'), null, 'and not in the URL');
  client.close();
});

test('Client.StaticTokenRefused_IsUnauthorizedWithoutRetry', async () => {
  const client = open();
  await flush();
  last().drop(1008, 'expired token');
  mock.timers.tick(60000);
  await flush();
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(client.state, 'unauthorized');
  client.close();
});

test('Client.SendsWhileDisconnected_AreQueuedBoundedAndFlushedInOrder', async () => {
  const client = open({ maxQueuedSends: 2 });
  await flush();
  const a = client.send('thread.view', { threadId: 'a' });
  const b = client.send('typing.start', {});
  await assert.rejects(client.send('sync.request', {}), SendQueueFullError);
  last().welcome();
  await Promise.all([a, b]);
  assert.deepEqual(last().sent.map((m) => m.type), ['thread.view', 'typing.start']);
  client.close();
  await assert.rejects(client.send('sync.request', {}), /closed/);
});

test('Client.SilentSocket_IsPingedThenGivenUpAndReplaced', async () => {
  const states = [];
  const client = open();
  client.onState((e) => states.push(e));
  await flush();
  last().welcome({ heartbeatIntervalMs: 1000 });
  mock.timers.tick(1000);
  assert.deepEqual(last().sent.at(-1), { type: 'ping', payload: {} }, 'an idle client asks for a sign of life');
  last().message({ type: 'pong', payload: { serverTime: 1 } });
  mock.timers.tick(1500);
  assert.equal(client.state, 'open', 'the pong counted');
  mock.timers.tick(1000);
  assert.equal(states.at(-2).state, 'closed');
  assert.equal(states.at(-1).state, 'reconnecting', 'two silent intervals: dead');
  client.close();
});

test('Client.Positions_AreDedupedAndPresentedOnReconnect', async () => {
  const seen = [];
  const client = open();
  client.on('thread.new', (p) => seen.push(p.threadId));
  await flush();
  last().welcome();
  last().message({ type: 'thread.new', payload: { threadId: 't1', accountId: 'a' }, epoch: 'e1', seq: 1 });
  last().message({ type: 'thread.new', payload: { threadId: 't2', accountId: 'a' }, epoch: 'e1', seq: 2 });
  last().drop(1006);
  mock.timers.tick(1000);
  await flush();
  assert.equal(last().url.searchParams.get('since'), 'e1:2');
  last().welcome();
  last().message({ type: 'thread.new', payload: { threadId: 't2', accountId: 'a' }, epoch: 'e1', seq: 2 });
  last().message({ type: 'thread.new', payload: { threadId: 't3', accountId: 'a' }, epoch: 'e1', seq: 3 });
  assert.deepEqual(seen, ['t1', 't2', 't3'], 'the replayed t2 is dropped');
  assert.deepEqual(client.position(), { epoch: 'e1', seq: 3 });
  client.close();
});

test('Client.UnknownTypesAndThrowingHandlers_NeverThrow', async () => {
  const any = [];
  const errors = [];
  const client = open();
  client.onAny((type) => any.push(type));
  client.onError((e) => errors.push(e.message));
  client.on('thread.new', () => { throw new Error('handler bug'); });
  await flush();
  last().welcome();
  last().message({ type: 'brand.new', payload: { x: 1 } });
  last().message({ type: 'thread.new', payload: { threadId: 't', accountId: 'a' } });
  last().onmessage({ data: 'not json' });
  assert.deepEqual(any, ['brand.new', 'thread.new']);
  assert.equal(errors[0], 'handler bug');
  assert.equal(errors.length, 2);
  client.close();
});

test('Client.AskStream_YieldsItsOwnChunksUntilComplete_AndThrowsOnError', async () => {
  const client = open();
  await flush();
  last().welcome();
  const chunk = (streamId, text, extra = {}) => last().message({ type: 'ask.response', payload: { chunk: text, isComplete: false, streamId, ...extra } });
  let id;
  const answer = client.ask((streamId) => { id = streamId; });
  await flush();
  chunk(id, 'The ');
  chunk('other', 'noise');
  chunk(id, 'offer', { isComplete: true });
  const texts = [];
  for await (const c of answer) texts.push(c.chunk);
  assert.deepEqual(texts, ['The ', 'offer']);

  const failing = client.stream('q2');
  chunk('q2', 'partial');
  chunk('q2', '', { error: 'model unavailable' });
  assert.equal((await failing.next()).value.chunk, 'partial');
  await assert.rejects(failing.next(), AskStreamError);
  client.close();
});

test('Client.TokenFunction_RefreshesInBandBeforeExp', async () => {
  const jwt = (exp) => `h.${Buffer.from(JSON.stringify({ sub: 'alice', exp })).toString('base64url')}.s`;
  const now = Math.floor(Date.now() / 1000);
  let current = jwt(now + 120);
  const client = open({ token: () => current });
  await flush();
  last().welcome({ heartbeatIntervalMs: 600_000 }); // heartbeats far apart: this test is about the refresh alone
  current = jwt(now + 3600);
  mock.timers.tick(59_000);
  await flush();
  const refreshes = () => last().sent.filter((m) => m.type === 'auth.refresh');
  assert.deepEqual(refreshes(), [], 'not yet: a minute ahead of exp');
  mock.timers.tick(1_000);
  await flush();
  assert.deepEqual(refreshes(), [{ type: 'auth.refresh', payload: { token: current } }]);
  client.close();
});

test('Client.QueryTransport_PutsTheTokenInTheUrl', async () => {
  const client = open({ tokenTransport: 'query' });
  await flush();
  assert.equal(last().url.searchParams.get('token'), 't1');
  assert.equal(last().protocols, undefined);
  client.close();
});
