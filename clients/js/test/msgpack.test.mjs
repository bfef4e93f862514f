// The client with `format: 'msgpack'` over an in-memory socket: the subprotocol it offers,
// MessagePack binary frames both ways (checked with @msgpack/msgpack itself), and the same typed
// API and positions as JSON. Against the real server: tests/e2e/msgpack.test.mjs.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import { connect } from '../dist/index.js';
import { fakeSocket } from '../test_support/fake_socket.mjs';

// MessagePack both ways; the server's frames as the browser hands them with binaryType 'arraybuffer'.
const binary = {
  encode: (m) => {
    const bytes = encode(m);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  },
  decode: (data) => decode(data),
};
const BinarySocket = fakeSocket({
  welcome: { heartbeatIntervalMs: 1000, channel: 'user:alice', epoch: 'e1', seq: 0 },
  codec: binary,
});
const last = () => BinarySocket.all.at(-1);
const flush = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };

beforeEach(() => {
  BinarySocket.all = [];
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
});
afterEach(() => mock.timers.reset());

const open = (options = {}) =>
  connect({ url: 'ws://gateway/ws', token: 't1', WebSocket: BinarySocket, random: () => 0, format: 'msgpack', ...options });

test('Msgpack.OffersTheSubprotocolBesideTheToken_AndReadsBinary', async () => {
  const client = open();
  await flush();
  assert.deepEqual(last().protocols, ['zena-realtime.msgpack', 'bearer.t1']);
  assert.equal(last().binaryType, 'arraybuffer');
  const got = [];
  client.on('thread.new', (payload, message) => got.push([payload, message.channel, message.seq]));
  last().welcome();
  assert.equal(client.state, 'open');
  last().message({ type: 'thread.new', payload: { threadId: 't9', subject: 'Offer' }, channel: 'user:alice', epoch: 'e1', seq: 1 });
  last().message({ type: 'thread.new', payload: { threadId: 't9', subject: 'Offer' }, channel: 'user:alice', epoch: 'e1', seq: 1 });
  assert.deepEqual(got, [[{ threadId: 't9', subject: 'Offer' }, 'user:alice', 1]], 'a replayed duplicate is dropped by position');
  client.close();
});

test('Msgpack.ClientEventsAndPings_AreBinaryFrames', async () => {
  const client = open();
  await flush();
  const queued = client.send('thread.view', { threadId: 't1' });
  last().welcome();
  await queued;
  await client.send('typing.start', {});
  mock.timers.tick(1000);
  assert.ok(last().raw.every((d) => d instanceof Uint8Array), 'nothing goes as text');
  assert.deepEqual(last().sent, [
    { type: 'thread.view', payload: { threadId: 't1' } },
    { type: 'typing.start', payload: {} },
    { type: 'ping', payload: {} },
  ]);
  client.close();
});

test('Msgpack.QueryTransport_StillOffersTheFormat', async () => {
  const client = open({ tokenTransport: 'query' });
  await flush();
  assert.deepEqual(last().protocols, ['zena-realtime.msgpack']);
  assert.equal(last().url.searchParams.get('token'), 't1');
  client.close();
});

test('Msgpack.ResumesFromItsPosition_AfterADrop', async () => {
  const client = open();
  await flush();
  last().welcome();
  last().message({ type: 'task.created', payload: { taskId: 'k', title: 'x' }, channel: 'user:alice', epoch: 'e1', seq: 4 });
  last().drop(1006);
  mock.timers.tick(1000);
  await flush();
  assert.equal(BinarySocket.all.length, 2);
  assert.equal(last().url.searchParams.get('since'), 'e1:4');
  client.close();
});
