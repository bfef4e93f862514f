// What an outsider can make the server spend, each bound tested on its own with the real
// server: Origin (CSWSH), total connections, connections per user and per address, handshakes
// per address per second, client messages per second, a slow handshake (slowloris). Each gets
// its clear status or close code, and the others on the server are unaffected.
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import WebSocket from 'ws';
import { Client, connectUser, metric, mintToken, sleep, startServer, waitFor } from './harness.mjs';

// Opens a raw upgrade and resolves with the HTTP status it got (101 or a refusal).
function handshakeStatus(url, options = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    ws.on('upgrade', () => { resolve(101); ws.terminate(); });
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('error', () => {});
  });
}

test('Limits.OtherOrigin_Is403_ListedOnesAndNonBrowsersConnect', async () => {
  const server = await startServer({ env: { ZENA_ALLOWED_ORIGINS: 'https://app.example.com, https://*.zena.dev' } });
  try {
    const url = server.wsUrl(mintToken({ sub: 'alice' }));
    assert.equal(await handshakeStatus(url, { origin: 'https://evil.example' }), 403);
    assert.equal(await handshakeStatus(url, { origin: 'https://app.example.com.evil.example' }), 403);
    assert.equal(await handshakeStatus(url, { origin: 'null' }), 403);
    assert.equal(await handshakeStatus(url, { origin: 'https://zena.dev' }), 403, 'the wildcard is for subdomains');
    assert.equal(await handshakeStatus(url, { origin: 'https://APP.example.com' }), 101);
    assert.equal(await handshakeStatus(url, { origin: 'https://eu.zena.dev' }), 101);
    assert.equal(await handshakeStatus(url), 101, 'no Origin: not a browser');
    assert.equal(await metric(server, 'zena_handshakes_refused_total{reason="origin"}'), 4);
  } finally {
    await server.stop();
  }
});

test('Limits.TotalConnections_Past_Is503_UntilOneCloses', async () => {
  const server = await startServer({ env: { ZENA_MAX_CONNECTIONS: '3' } });
  try {
    const clients = [];
    for (const user of ['a', 'b', 'c']) clients.push(await connectUser(server, user));
    assert.equal(await handshakeStatus(server.wsUrl(mintToken({ sub: 'd' }))), 503);
    await clients[0].close();
    await waitFor(async () => (await handshakeStatus(server.wsUrl(mintToken({ sub: 'd' })))) === 101, 3000, 'room again');
    assert.ok((await metric(server, 'zena_handshakes_refused_total{reason="capacity"}')) >= 1);
    await Promise.all(clients.slice(1).map((c) => c.close()));
  } finally {
    await server.stop();
  }
});

test('Limits.ConnectionsPerUser_OneMoreIsClosed1013_OthersUnaffected', async () => {
  const server = await startServer({ env: { ZENA_MAX_CONNECTIONS_PER_USER: '2' } });
  try {
    const first = await connectUser(server, 'alice');
    const second = await connectUser(server, 'alice');
    const third = new Client(server.wsUrl(mintToken({ sub: 'alice' })));
    const closed = await third.waitClosed();
    assert.deepEqual(closed, { code: 1013, reason: 'too many connections for this user' });
    assert.deepEqual(third.messages, [], 'no welcome');
    const bob = await connectUser(server, 'bob');
    assert.equal(bob.welcome.type, 'connected');
    assert.equal(await metric(server, 'zena_connections_refused_user_limit_total'), 1);
    await Promise.all([first.close(), second.close(), bob.close()]);
  } finally {
    await server.stop();
  }
});

test('Limits.ConnectionsPerAddress_Past_Is429_OtherAddressesConnect', async () => {
  const server = await startServer({ env: { ZENA_MAX_CONNECTIONS_PER_ADDRESS: '2' } });
  try {
    const a = await connectUser(server, 'u1');
    const b = await connectUser(server, 'u2');
    assert.equal(await handshakeStatus(server.wsUrl(mintToken({ sub: 'u3' }))), 429);
    // Another loopback address is another client.
    assert.equal(await handshakeStatus(server.wsUrl(mintToken({ sub: 'u3' })), { localAddress: '127.0.0.2' }), 101);
    await a.close();
    await waitFor(async () => (await handshakeStatus(server.wsUrl(mintToken({ sub: 'u3' })))) === 101, 3000, 'a freed slot');
    await b.close();
  } finally {
    await server.stop();
  }
});

test('Limits.HandshakesPerAddress_AFloodGets429_OtherAddressesConnect', async () => {
  const server = await startServer({ env: { ZENA_HANDSHAKES_PER_ADDRESS_PER_SECOND: '5' } });
  try {
    const url = server.wsUrl(mintToken({ sub: 'flooder' }));
    const statuses = await Promise.all(Array.from({ length: 30 }, () => handshakeStatus(url)));
    const ok = statuses.filter((s) => s === 101).length;
    assert.ok(ok >= 10 && ok <= 12, `a burst of 10 (twice the rate) went through, got ${ok}`);
    assert.equal(statuses.filter((s) => s === 429).length, 30 - ok);
    assert.equal(await handshakeStatus(url, { localAddress: '127.0.0.3' }), 101, 'another address is not held back');
    await sleep(1100);
    assert.equal(await handshakeStatus(url), 101, 'the rate refills');
  } finally {
    await server.stop();
  }
});

test('Limits.ClientMessageRate_ExcessIsDropped_SustainedAbuseCloses1008', async () => {
  const server = await startServer({ env: { ZENA_CLIENT_MESSAGES_PER_SECOND: '10', ZENA_CLIENT_MESSAGES_BURST: '10' } });
  try {
    const polite = await connectUser(server, 'polite');
    const client = await connectUser(server, 'chatty');
    for (let i = 0; i < 30; i += 1) client.send({ type: 'typing.start', payload: {} });
    await waitFor(async () => (await metric(server, 'zena_client_messages_rate_limited_total')) >= 19, 3000, 'drops');
    const valid = await metric(server, 'zena_client_messages_total');
    assert.ok(valid >= 10 && valid <= 11, `the burst went through: ${valid}`);
    // Far over the rate for long: closed with 1008.
    for (let i = 0; i < 200; i += 1) client.send({ type: 'typing.start', payload: {} });
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason: 'message rate limit exceeded' });
    assert.equal(await metric(server, 'zena_rate_limit_closes_total'), 1);
    // The other connection is untouched.
    polite.send({ type: 'ping', payload: {} });
    assert.equal((await polite.next()).type, 'pong');
    await polite.close();
  } finally {
    await server.stop();
  }
});

test('Limits.SlowHandshake_IsCutAtTheRequestTimeout', async () => {
  const server = await startServer({ env: { ZENA_HTTP_REQUEST_TIMEOUT_MS: '500' } });
  let timer;
  try {
    const socket = tcpConnect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    // The cut is a FIN, or a reset when a drip is still unread in the server's buffer as it
    // closes: both end the socket with 'close', and a reset's 'error' must not fail the test
    // (events.once rejects on 'error', which left the drip's interval running and the file hung).
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const started = Date.now();
    socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and never the rest
    timer = setInterval(() => socket.write('X-Slow: 1\r\n'), 100); // a slowloris drip
    await closed;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 400 && elapsed < 3000, `closed after ${elapsed} ms`);
  } finally {
    clearInterval(timer);
    await server.stop();
  }
});

test('Limits.ManySilentConnections_DoNotHoldUpARealClient', async () => {
  // At most 128 handshakes run at once per thread; the rest wait in line. 300 sockets that
  // never send a byte (each cut at the 10 s request timeout) must not stall the line: a real
  // client behind them is served within a few handshake ticks.
  const server = await startServer({ env: { ZENA_HTTP_REQUEST_TIMEOUT_MS: '10000', ZENA_THREADS: '1' } });
  const silent = [];
  try {
    for (let i = 0; i < 300; i += 1) {
      const socket = tcpConnect(server.port, '127.0.0.1');
      socket.on('error', () => {});
      silent.push(socket);
    }
    await Promise.all(silent.map((socket) => once(socket, 'connect')));
    const started = Date.now();
    const client = await connectUser(server, 'patient');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `the real client waited ${elapsed} ms`);
    await client.close();
  } finally {
    for (const socket of silent) socket.destroy();
    await server.stop();
  }
});
