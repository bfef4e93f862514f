// The zena-realtime.msgpack subprotocol (docs/protocol.md#messagepack): real `ws` clients that
// offer it get every message as a MessagePack binary frame decoding to the same envelope a JSON
// client gets (the seed's events, channels with epoch and seq, the replay of a recovery), send
// client events as MessagePack that reach the webhook exactly as JSON ones do, and have malformed
// MessagePack logged and ignored, as invalid JSON is; a slow one is told it fell behind in
// MessagePack; an in-band `auth` may be MessagePack; the SDK's format: 'msgpack'. Decoded with
// @msgpack/msgpack, an implementation independent of the server's.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import { connect } from '../../clients/js/dist/index.js';
import {
  API_KEY, Client, SEED_EVENTS, WebSocket, api, metric, mintToken, position, sleep, startServer, waitFor, withTimeout,
} from './harness.mjs';

const SUBPROTOCOL = 'zena-realtime.msgpack';
const QUIET = { ZENA_CHANNELS_PRESENCE: 'false' };
// Every ignored message logged (the tests read the reasons).
const LOG_ALL = { ZENA_LOG_INVALID_MESSAGE_PER_SECOND: '1000' };

/** A `ws` client of the msgpack subprotocol that keeps each message with its frame kind. */
class MsgpackClient {
  constructor(url, protocols) {
    this.ws = new WebSocket(url, protocols);
    this.frames = [];
    this.waiters = [];
    this.ws.on('message', (data, isBinary) => {
      const frame = { binary: isBinary, message: isBinary ? decode(data) : JSON.parse(data.toString()) };
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame); else this.frames.push(frame);
    });
    this.ws.on('error', () => {});
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => resolve(code)));
    this.opened = withTimeout(once(this.ws, 'open'), 5000, 'open');
  }

  /** The next message, which must have come as a binary frame; its decoded envelope. */
  async next(timeoutMs = 3000) {
    const frame = this.frames.length ? this.frames.shift() : await withTimeout(new Promise((r) => this.waiters.push(r)), timeoutMs, 'message');
    assert.equal(frame.binary, true, `a text frame on a msgpack connection: ${JSON.stringify(frame.message)}`);
    return frame.message;
  }

  send(value) { this.ws.send(encode(value)); }
  sendBytes(bytes) { this.ws.send(Buffer.from(bytes)); }
  async close() { this.ws.close(); return withTimeout(this.closed, 3000, 'close'); }
}

/** Connects `sub` offering the subprotocol beside `bearer.<jwt>`; resolves after the welcome. */
async function connectMsgpack(server, sub, { claims = {}, since } = {}) {
  const base = server.wsUrl();
  const url = since === undefined ? base : `${base}?since=${encodeURIComponent(since)}`;
  const client = new MsgpackClient(url, [SUBPROTOCOL, `bearer.${mintToken({ sub, claims })}`]);
  await client.opened;
  client.welcome = await client.next(5000);
  assert.equal(client.welcome.type, 'connected');
  return client;
}

async function connectJson(server, sub, claims = {}) {
  const client = new Client(server.wsUrl(mintToken({ sub, claims })));
  client.welcome = await client.next(5000);
  return client;
}

const publish = async (server, body) => {
  const res = await api(server, 'POST', '/api/publish', body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
};

describe('msgpack', () => {
  let server;
  before(async () => { server = await startServer({ env: { ...QUIET, ...LOG_ALL } }); });
  after(async () => { await server.stop(); });

  test('Msgpack.Handshake_AnswersTheSubprotocol_AndTheWelcomeIsBinary', async () => {
    const client = await connectMsgpack(server, 'm-hand');
    assert.equal(client.ws.protocol, SUBPROTOCOL);
    assert.equal(client.welcome.payload.userId, 'm-hand');
    assert.equal(client.welcome.payload.channel, 'user:m-hand');
    assert.equal(typeof client.welcome.payload.epoch, 'string');
    assert.equal(typeof client.welcome.payload.heartbeatIntervalMs, 'number');
    await client.close();
    // Without the offer, JSON text as before, with or without the plain subprotocol.
    const json = new Client(server.wsUrl(), {}, ['zena-realtime', `bearer.${mintToken({ sub: 'm-hand' })}`]);
    await json.opened;
    assert.equal(json.ws.protocol, 'zena-realtime');
    assert.equal((await json.next()).type, 'connected');
    await json.close();
  });

  test('Msgpack.SeedEvents_DecodeToTheEnvelopeAJsonClientGets', async () => {
    const binary = await connectMsgpack(server, 'm-seed');
    const text = await connectJson(server, 'm-seed');
    for (const event of SEED_EVENTS) {
      const out = await publish(server, { channel: 'user:m-seed', ...event });
      assert.equal(out.delivered, 2);
      const fromJson = await text.next();
      const fromMsgpack = await binary.next();
      assert.deepEqual(fromMsgpack, fromJson);
      assert.deepEqual(fromMsgpack.payload, event.payload);
      assert.equal(fromMsgpack.channel, 'user:m-seed');
      assert.equal(fromMsgpack.seq, out.seq);
      assert.equal(typeof fromMsgpack.epoch, 'string');
    }
    await binary.close();
    await text.close();
  });

  test('Msgpack.Channels_SubscribeInMsgpack_EventsCarryEpochAndSeq', async () => {
    const client = await connectMsgpack(server, 'm-chan', { claims: { channels: ['deal:*'] } });
    client.send({ type: 'subscribe', payload: { channel: 'deal:m1' } });
    const answer = await client.next();
    assert.equal(answer.type, 'subscribed');
    assert.equal(answer.payload.channel, 'deal:m1');
    const risk = SEED_EVENTS.find((e) => e.type === 'deal.risk');
    const first = await publish(server, { channel: 'deal:m1', ...risk });
    const second = await publish(server, { channel: 'deal:m1', ...risk });
    const got = [await client.next(), await client.next()];
    assert.deepEqual(got.map((m) => [m.type, m.channel, m.epoch, m.seq]), [
      ['deal.risk', 'deal:m1', answer.payload.epoch, first.seq],
      ['deal.risk', 'deal:m1', answer.payload.epoch, second.seq],
    ]);
    assert.equal(second.seq, first.seq + 1);
    await client.close();
  });

  test('Msgpack.Recovery_ReplaysTheMissedEventsInMsgpack', async () => {
    const thread = (id) => ({ type: 'thread.new', payload: { threadId: id, accountId: 'acc' } });
    const first = await connectMsgpack(server, 'm-rec');
    await publish(server, { channel: 'user:m-rec', ...thread('seen') });
    const seen = await first.next();
    await first.close();
    for (let i = 1; i <= 3; i += 1) assert.equal((await publish(server, { channel: 'user:m-rec', ...thread(`away${i}`) })).delivered, 0);
    const back = await connectMsgpack(server, 'm-rec', { since: position(seen) });
    assert.equal(back.welcome.payload.recovered, true);
    assert.equal(back.welcome.payload.missed, 3);
    const replayed = [await back.next(), await back.next(), await back.next()];
    assert.deepEqual(replayed, [1, 2, 3].map((i) => ({ ...thread(`away${i}`), channel: 'user:m-rec', epoch: seen.epoch, seq: seen.seq + i })));
    await back.close();
  });

  test('Msgpack.Malformed_IsLoggedAndIgnored_TheConnectionStays', async () => {
    const client = await connectMsgpack(server, 'm-bad');
    const before = (await metric(server, 'zena_client_messages_invalid_total')) ?? 0;
    client.sendBytes([0xc1]); // never used
    client.sendBytes([0x92, 0x01]); // truncated
    client.sendBytes([...Array(40).fill(0x91), 0x01]); // 40 deep
    client.sendBytes([0xc4, 0x01, 0x00]); // bin
    client.sendBytes([0xdd, 0xff, 0xff, 0xff, 0xff]); // an array of 2^32-1 claimed in 5 bytes
    client.send({ type: 'thread.view', payload: { threadId: 7 } }); // valid MessagePack, bad payload
    client.send(['not', 'an', 'object']);
    await waitFor(async () => (await metric(server, 'zena_client_messages_invalid_total')) === before + 7, 3000, 'seven invalid');
    const lines = server.output().split('\n').filter((l) => l.includes('user=m-bad') && l.includes('client message ignored'));
    for (const reason of ['unsupported_type', 'truncated', 'too_deep']) {
      assert.ok(lines.some((l) => l.includes('error=invalid_msgpack') && l.includes(`field=${reason}`)), `${reason} logged`);
    }
    assert.ok(lines.some((l) => l.includes('error=bad_payload') && l.includes('field=payload.threadId')));
    // Still open, and answering.
    client.send({ type: 'ping', payload: {} });
    const pong = await client.next();
    assert.equal(pong.type, 'pong');
    assert.equal(typeof pong.payload.serverTime, 'number');
    await client.close();
  });

  test('Msgpack.TextOnAMsgpackConnection_IsStillJson', async () => {
    // The subprotocol changes the server's frames; a client may still send JSON text.
    const client = await connectMsgpack(server, 'm-text');
    client.ws.send(JSON.stringify({ type: 'ping', payload: {} }));
    assert.equal((await client.next()).type, 'pong');
    await client.close();
  });
});

test('Msgpack.ClientEvents_ReachTheWebhookAsJsonOnesDo', async () => {
  const received = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const event = JSON.parse(body);
      if (!event.type.startsWith('presence.')) received.push(event);
      res.writeHead(204);
      res.end();
    });
  });
  hook.listen(0, '127.0.0.1');
  await once(hook, 'listening');
  const server = await startServer({ env: { ...QUIET, ZENA_WEBHOOK_URL: `http://127.0.0.1:${hook.address().port}/events` } });
  try {
    const binary = await connectMsgpack(server, 'm-up');
    const text = await connectJson(server, 'm-up');
    const events = [
      { type: 'sync.request', payload: {} },
      { type: 'thread.view', payload: { threadId: 'thread-é-🏠' } },
      { type: 'typing.start', payload: {} },
    ];
    for (const e of events) binary.send(e);
    await waitFor(() => received.length === 3, 5000, 'three from msgpack');
    for (const e of events) text.send(e);
    await waitFor(() => received.length === 6, 5000, 'three from JSON');
    const shape = ({ type, payload, userId }) => ({ type, payload, userId });
    assert.deepEqual(received.slice(0, 3).map(shape), events.map((e) => ({ ...e, userId: 'm-up' })));
    assert.deepEqual(received.slice(0, 3).map(shape), received.slice(3).map(shape));
    assert.equal(received[0].connectionId, binary.welcome.payload.connectionId);
    await binary.close();
    await text.close();
  } finally {
    await server.stop();
    hook.close();
  }
});

test('Msgpack.Sdk_FormatMsgpack_SameTypedApi', async () => {
  const server = await startServer({ env: QUIET });
  const client = connect({ url: server.wsUrl(), token: mintToken({ sub: 'm-sdk' }), format: 'msgpack', WebSocket });
  try {
    await waitFor(() => client.state === 'open', 5000, 'the SDK to open');
    const got = [];
    client.on('ask.response', (payload, message) => got.push({ payload, seq: message.seq }));
    const chunk = { chunk: 'x'.repeat(2048), isComplete: false, streamId: 's1' };
    const out = await publish(server, { channel: 'user:m-sdk', type: 'ask.response', payload: chunk });
    await waitFor(() => got.length === 1, 3000, 'the chunk');
    assert.deepEqual(got[0], { payload: chunk, seq: out.seq });
    await client.send('thread.view', { threadId: 't1' });
    await waitFor(async () => (await metric(server, 'zena_client_messages_total')) >= 1, 3000, 'the client event');
    assert.equal(await metric(server, 'zena_client_messages_invalid_total'), 0);
  } finally {
    client.close();
    await sleep(20);
    await server.stop();
  }
});

test('Msgpack.ReaderThatResumes_IsToldItFellBehindInMsgpack', async () => {
  const server = await startServer({
    env: { ...QUIET, ZENA_SEND_QUEUE_MAX_BYTES: String(64 * 1024), ZENA_HEARTBEAT_INTERVAL_MS: '5000' },
  });
  try {
    const slow = await connectMsgpack(server, 'm-slow');
    slow.ws._socket.pause();
    const filler = 'y'.repeat(16 * 1024);
    let refused = false;
    for (let i = 0; i < 400 && !refused; i += 1) {
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'm-slow', type: 'ask.response', payload: { chunk: filler, isComplete: false, streamId: String(i) } });
      refused = res.body.delivered === 0;
    }
    assert.ok(refused, 'the stalled connection stopped taking messages');
    slow.ws._socket.resume();
    assert.equal(await withTimeout(slow.closed, 5000, 'close'), 4000);
    const last = slow.frames.at(-1);
    assert.equal(last.binary, true, 'connection.behind is a binary frame too');
    assert.deepEqual(last.message, { type: 'connection.behind', payload: { reason: 'send_queue_full' } });
  } finally {
    await server.stop();
  }
});

test('Msgpack.InbandAuth_TheAuthMessageMayBeMsgpack', async () => {
  const server = await startServer({ env: { ...QUIET, ZENA_INBAND_AUTH: 'true' } });
  try {
    const client = new MsgpackClient(server.wsUrl(), [SUBPROTOCOL]);
    await client.opened;
    assert.equal(client.ws.protocol, SUBPROTOCOL);
    client.send({ type: 'auth', payload: { token: mintToken({ sub: 'm-inband' }) } });
    const welcome = await client.next(5000);
    assert.equal(welcome.type, 'connected');
    assert.equal(welcome.payload.userId, 'm-inband');
    // Malformed MessagePack as a first message is refused as any other first message is.
    const other = new MsgpackClient(server.wsUrl(), [SUBPROTOCOL]);
    await other.opened;
    other.sendBytes([0xc1]);
    assert.equal(await withTimeout(other.closed, 3000, 'close'), 1008);
    await client.close();
  } finally {
    await server.stop();
  }
});
