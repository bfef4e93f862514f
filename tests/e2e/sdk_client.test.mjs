// The client SDK (clients/js, built) against the real server: typed round trips for every seed
// event, client events reaching the backend, queued sends flushed in order, reconnect after the
// server is killed and restarted, 1008 stopping retries, and the close code table.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CLOSE_CODES, connect } from '../../clients/js/dist/index.js';
import { createRealtimeService } from '../../clients/node/dist/index.js';
import { API_KEY, BINARY, SEED_EVENTS, metric, mintToken, sleep, startServer, waitFor, withTimeout } from './harness.mjs';

// Resolves once the client is open; records every state change.
function openClient(server, options) {
  const states = [];
  const client = connect({ url: server.wsUrl(), ...options });
  client.onState((e) => states.push(e));
  client.states = states;
  client.opened = () => waitFor(() => client.state === 'open', 5000, 'the client to open');
  return client;
}

// A real HTTP receiver standing in for the backend's webhook endpoint.
async function webhookReceiver() {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { received.push(JSON.parse(body)); res.writeHead(204); res.end(); });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { received, url: `http://127.0.0.1:${server.address().port}/events`, close: () => server.close() };
}

test('SdkClient.EverySeedEvent_RoundTripsTyped_AndClientEventsReachTheBackend', async () => {
  const hook = await webhookReceiver();
  const server = await startServer({ env: { ZENA_WEBHOOK_URL: hook.url } });
  const service = createRealtimeService({ url: server.url('/'), apiKey: API_KEY });
  const client = openClient(server, { token: () => mintToken({ sub: 'owner' }) });
  const other = openClient(server, { token: mintToken({ sub: 'other' }) });
  try {
    // Sends made before the connection opens wait in the queue and go in order.
    const sends = [client.send('sync.request', {}), client.send('thread.view', { threadId: 'thread-123' }), client.send('typing.start', {})];
    await Promise.all([client.opened(), other.opened()]);
    await Promise.all(sends);
    const received = [];
    const strayed = [];
    for (const { type } of SEED_EVENTS) client.on(type, (payload) => received.push({ type, payload }));
    other.onAny((type) => strayed.push(type));
    for (const event of SEED_EVENTS) {
      const res = await service.broadcastToUser('owner', event.type, event.payload);
      assert.deepEqual([res.delivered, res.channel], [1, 'user:owner']);
    }
    await waitFor(() => received.length === SEED_EVENTS.length, 3000, 'every seed event');
    assert.deepEqual(received, SEED_EVENTS);
    // The client events (the server's own presence notices go to the webhook too).
    const clientEvents = () => hook.received.filter((e) => !e.type.startsWith('presence.'));
    await waitFor(() => clientEvents().length === 3, 5000, 'the client events at the webhook');
    assert.deepEqual(clientEvents().map((e) => [e.type, e.userId]), [['sync.request', 'owner'], ['thread.view', 'owner'], ['typing.start', 'owner']]);
    await sleep(50);
    assert.deepEqual(strayed, [], 'nothing reached the other user');
  } finally {
    client.close();
    other.close();
    await server.stop();
    hook.close();
  }
});

test('SdkClient.ServerKilledAndRestarted_ReconnectsAndReceivesAgain_NoDuplicates', async () => {
  let server = await startServer();
  const port = server.port;
  const client = openClient(server, { token: () => mintToken({ sub: 'alice', claims: { channels: ['deal:*'] } }), backoff: { initialMs: 100, maxMs: 400 } });
  const seen = [];
  const resyncs = [];
  client.on('thread.new', (p) => seen.push(p.threadId));
  client.onResync((e) => resyncs.push(e));
  try {
    await client.opened();
    await client.subscribe('deal:1');
    const publish = (id) => createRealtimeService({ url: server.url('/'), apiKey: API_KEY })
      .broadcastToUser('alice', 'thread.new', { threadId: id, accountId: 'a' });
    await publish('before');
    await waitFor(() => seen.length === 1, 3000, 'the first event');
    await server.stop('SIGKILL');
    await waitFor(() => client.states.some((e) => e.state === 'reconnecting'), 3000, 'reconnecting');
    server = await startServer({ args: ['--port', String(port)] });
    await waitFor(() => client.state === 'open' && client.states.filter((e) => e.state === 'open').length === 2, 10000, 'the reconnect');
    await publish('after');
    await waitFor(() => seen.length === 2, 3000, 'the event after the restart');
    await sleep(100);
    assert.deepEqual(seen, ['before', 'after'], 'each once');
    // The memory engine's history died with the process: the position it presented is from an
    // epoch the new server never had, so the SDK reports the loss (resync) instead of a silent gap.
    assert.deepEqual(resyncs.map((e) => e.channel), ['user:alice', 'deal:1']);
    assert.equal(client.subscriptions().includes('deal:1'), true, 'resubscribed after the restart');
  } finally {
    client.close();
    await server.stop();
  }
});

test('SdkClient.AskStream_InterruptedByAReconnect_ContinuesInTheSameIterator', async () => {
  const server = await startServer();
  // A fresh token per attempt (after 4001 the SDK reconnects only with a new one).
  let n = 0;
  const client = openClient(server, { token: () => mintToken({ sub: 'asker', claims: { jti: String(n += 1) } }), backoff: { initialMs: 50, maxMs: 200 } });
  const service = createRealtimeService({ url: server.url('/'), apiKey: API_KEY });
  const chunk = (streamId, i, n) => service.broadcastToUser('asker', 'ask.response', { chunk: `c${i} `, isComplete: i === n - 1, streamId });
  try {
    await client.opened();
    let streamId;
    const chunks = client.ask((id) => { streamId = id; });
    await waitFor(() => streamId !== undefined, 2000, 'the stream id');
    const received = [];
    const reading = (async () => { for await (const c of chunks) received.push(c.chunk); })();
    for (let i = 0; i < 5; i += 1) await chunk(streamId, i, 10);
    await waitFor(() => received.length === 5, 3000, 'the first half');
    // The backend drops the user's connections (4001); the SDK, with a token function, comes
    // back with its position while the rest of the answer is published.
    await fetch(server.url('/api/users/asker/connections'), { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
    await waitFor(() => client.state !== 'open', 3000, 'the disconnect');
    for (let i = 5; i < 10; i += 1) await chunk(streamId, i, 10);
    await withTimeout(reading, 10000, 'the whole answer');
    assert.deepEqual(received, Array.from({ length: 10 }, (_, i) => `c${i} `), 'every chunk once, in order, in one iterator');
    assert.ok(client.states.filter((e) => e.state === 'open').length >= 2, 'it did reconnect');
  } finally {
    client.close();
    await service.close();
    await server.stop();
  }
});

test('SdkClient.RefusedToken_StopsRetrying', async () => {
  const server = await startServer();
  const client = openClient(server, { token: mintToken({ sub: 'mallory', secret: 'wrong-secret-0123456789abcdef0123' }), backoff: { initialMs: 50 } });
  try {
    await waitFor(() => client.state === 'unauthorized', 5000, 'unauthorized');
    const closed = client.states.find((e) => e.state === 'closed');
    assert.equal(closed.code, 1008);
    await sleep(600);
    assert.equal(await metric(server, 'zena_auth_failures_total'), 1, 'no second attempt with the same token');
  } finally {
    client.close();
    await server.stop();
  }
});

test('SdkClient.CloseCodeTable_MatchesTheServers', async () => {
  const { stdout } = await promisify(execFile)(BINARY, ['codes']);
  const server = JSON.parse(stdout).map(({ code, name, reconnect }) => ({ code, name, reconnect }));
  assert.deepEqual(CLOSE_CODES, server);
});
