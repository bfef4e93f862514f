// Hostile clients at the application connection (issue 16, items 2, 6, 8 and 9), against the
// real binary: binary messages count against the message rate and its close, every binary message
// is counted as invalid (only the log line is rate-limited), a binary first message before an
// in-band token is refused at once, and a handshake without a token is refused at once unless
// in-band auth is on. Each test bounds its own time; run against the release before the fix
// (ZENA_BINARY=a build of dbf428b), each fails.
import assert from 'node:assert/strict';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import { test } from 'node:test';
import { OP, RawSocket, frame } from '../conformance/raw_ws.mjs';
import { Client, connectUser, metric, mintToken, sleep, startServer, waitFor } from './harness.mjs';

// The defaults of websocket.client_messages_per_second and _burst, which the harness lifts.
const DEFAULT_RATE = { ZENA_CLIENT_MESSAGES_PER_SECOND: '20', ZENA_CLIENT_MESSAGES_BURST: '50' };

/** The first close frame the server sends, skipping others; null when none comes in `ms`. */
async function closeFrame(s, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const f = s.tryParse();
    if (f === undefined) {
      if (s.ended) return null;
      await sleep(5);
      continue;
    }
    if (f.opcode === OP.close) return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
  }
  return null;
}

// Item 2: 60,000 zero bytes in a 75-byte compressed binary frame, sent as fast as the socket
// takes them, by a client with a valid token: before the fix it was never closed.
test('HostileSession.CompressedBinaryFlood_ClosedForTheMessageRate', async () => {
  const server = await startServer({ env: { ...DEFAULT_RATE, ZENA_PERMESSAGE_DEFLATE: 'true' } });
  try {
    const s = await RawSocket.open(server.port, {
      path: `/ws?token=${mintToken({ sub: 'hostile' })}`,
      extra: ['Sec-WebSocket-Extensions: permessage-deflate'],
    });
    assert.equal(s.status, 101);
    assert.match(s.headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
    const bomb = deflateRawSync(Buffer.alloc(60000), { finishFlush: zlib.Z_SYNC_FLUSH }).subarray(0, -4);
    const burst = Buffer.concat(Array.from({ length: 16 }, () => frame({ opcode: OP.binary, rsv: 4, payload: bomb })));
    // 16 bursts: 256 messages, more than the burst (50) and the excess allowance (100) together.
    for (let i = 0; i < 16 && !s.ended; i += 1) s.socket.write(burst);
    const closed = await closeFrame(s, 3000);
    assert.deepEqual(closed, { code: 1008, reason: 'message rate limit exceeded' });
    assert.equal(await metric(server, 'zena_rate_limit_closes_total'), 1);
    assert.ok((await metric(server, 'zena_client_messages_rate_limited_total')) >= 100);
    s.destroy();
  } finally {
    await server.stop();
  }
});

test('HostileSession.TextAndBinary_ShareOneBudget', async () => {
  const server = await startServer({ env: { ZENA_CLIENT_MESSAGES_PER_SECOND: '1', ZENA_CLIENT_MESSAGES_BURST: '3' } });
  try {
    const client = await connectUser(server, 'mixed');
    for (let i = 0; i < 3; i += 1) client.ws.send(Buffer.from([i]), { binary: true });
    client.send({ type: 'sync.request', payload: {} });
    await waitFor(async () => (await metric(server, 'zena_client_messages_rate_limited_total')) === 1, 2000,
      'the text message to be dropped: the binary ones spent the burst');
    assert.equal(await metric(server, 'zena_client_messages_total'), 0);
    await client.close();
  } finally {
    await server.stop();
  }
});

// Item 6: before the fix, only the binary messages that got a log line were counted.
test('HostileSession.BinaryMessages_EveryOneCountedAsInvalid', async () => {
  const server = await startServer({ env: { ZENA_LOG_INVALID_MESSAGE_PER_SECOND: '5' } });
  try {
    const client = await connectUser(server, 'binary');
    const before = (await metric(server, 'zena_client_messages_invalid_total')) ?? 0;
    for (let i = 0; i < 200; i += 1) client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await waitFor(async () => (await metric(server, 'zena_client_messages_invalid_total')) - before >= 200, 2000,
      'all 200 counted');
    await sleep(100);
    assert.equal((await metric(server, 'zena_client_messages_invalid_total')) - before, 200);
    const lines = server.output().split('\n').filter((l) => l.includes('error=binary_not_supported'));
    assert.ok(lines.length >= 1 && lines.length < 200, `the log is still rate-limited (${lines.length} lines)`);
    await client.close();
  } finally {
    await server.stop();
  }
});

// Item 8: with in-band auth on, a binary first message is refused at once, as a text one is.
test('HostileSession.BinaryBeforeTheInBandToken_Closes1008AtOnce', async () => {
  const server = await startServer({ env: { ZENA_INBAND_AUTH: 'true' } });
  try {
    const client = new Client(server.wsUrl());
    await client.opened;
    const started = Date.now();
    client.ws.send(Buffer.from('{"type":"auth"}'), { binary: true });
    assert.deepEqual(await client.waitClosed(2000), { code: 1008, reason: 'authentication required' });
    assert.ok(Date.now() - started < 1000, `at once, not at websocket.auth_timeout_ms (${Date.now() - started} ms)`);
  } finally {
    await server.stop();
  }
});

// Item 9: no token and in-band auth off (the default): 1008 at once, so a tokenless client holds
// nothing for websocket.auth_timeout_ms.
test('HostileSession.NoToken_Closes1008AtOnceByDefault', async () => {
  const server = await startServer();
  try {
    const started = Date.now();
    const clients = Array.from({ length: 20 }, () => new Client(server.wsUrl()));
    const closes = await Promise.all(clients.map((c) => c.waitClosed(2000)));
    for (const c of closes) assert.deepEqual(c, { code: 1008, reason: 'token missing' });
    assert.ok(Date.now() - started < 1500, `at once (${Date.now() - started} ms)`);
    assert.ok((await metric(server, 'zena_auth_failures_total')) >= 20);
  } finally {
    await server.stop();
  }
});
