// Client events upstream to the backend's webhook: each valid one is POSTed, signed with HMAC,
// and a webhook that is down or slow never slows delivery to sockets.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { api, connectUser, metric, startServer, waitFor } from './harness.mjs';

// Client events only, for the tests that count what the webhook was sent or failed to take: the
// server's presence notices (docs/presence.md) go nowhere.
const CLIENT_EVENTS = 'presence.online=none,presence.offline=none,*=webhook';

const SECRET = 'webhook-secret-0123456789';

// A real HTTP receiver on loopback; `delayMs` holds each answer back.
async function receiver({ delayMs = 0, status = 200 } = {}) {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      // The client events only: the server's own presence notices (docs/presence.md) come here too.
      const notice = JSON.parse(body).type?.startsWith('presence.');
      if (!notice) received.push({ body, signature: req.headers['x-zena-signature'], type: req.headers['content-type'] });
      setTimeout(() => { res.writeHead(status); res.end(); }, delayMs);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { received, url: `http://127.0.0.1:${server.address().port}/zena/events`, close: () => server.close() };
}

test('Webhook.ClientEvents_ArriveSignedWithTheirSender', async () => {
  const hook = await receiver();
  const server = await startServer({ env: { ZENA_WEBHOOK_URL: hook.url, ZENA_WEBHOOK_SECRET: SECRET } });
  try {
    const client = await connectUser(server, 'alice');
    client.send({ type: 'sync.request', payload: {} });
    client.send({ type: 'thread.view', payload: { threadId: 'thread-123' } });
    client.send({ type: 'typing.start', payload: {} });
    client.send({ type: 'thread.view', payload: {} }); // invalid: never forwarded
    await waitFor(() => hook.received.length >= 3, 5000, 'three webhook calls');
    const bodies = hook.received.map((r) => JSON.parse(r.body));
    assert.deepEqual(bodies.map((b) => b.type), ['sync.request', 'thread.view', 'typing.start']);
    for (const [i, r] of hook.received.entries()) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`;
      assert.equal(r.signature, expected, 'the signature is the HMAC of the exact body');
      assert.equal(r.type, 'application/json');
      assert.equal(bodies[i].userId, 'alice');
      assert.equal(bodies[i].connectionId, client.welcome.payload.connectionId);
      assert.match(bodies[i].receivedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    assert.deepEqual(bodies[1].payload, { threadId: 'thread-123' });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(hook.received.length, 3, 'the invalid event was not forwarded');
    // The three client events and alice's presence.online.
    assert.equal(await metric(server, 'zena_upstream_delivered_total{sink="webhook"}'), 4);
    await client.close();
  } finally {
    await server.stop();
    hook.close();
  }
});

test('Webhook.FailingBackend_IsRetriedWithBackoff', async () => {
  const hook = await receiver({ status: 503 });
  const server = await startServer({ env: { ZENA_WEBHOOK_URL: hook.url, ZENA_WEBHOOK_MAX_ATTEMPTS: '3', ZENA_WEBHOOK_BACKOFF_MS: '50', ZENA_UPSTREAM_ROUTES: CLIENT_EVENTS } });
  try {
    const client = await connectUser(server, 'bob');
    client.send({ type: 'sync.request', payload: {} });
    await waitFor(async () => (await metric(server, 'zena_upstream_failed_total{sink="webhook"}')) === 1, 5000, 'given up');
    assert.equal(hook.received.length, 3, 'three attempts');
    await client.close();
  } finally {
    await server.stop();
    hook.close();
  }
});

test('Webhook.SlowOrDownBackend_DoesNotSlowSocketDelivery', async () => {
  const slow = await receiver({ delayMs: 3000 });
  const server = await startServer({ env: { ZENA_WEBHOOK_URL: slow.url, ZENA_WEBHOOK_MAX_QUEUE: '5' } });
  try {
    const client = await connectUser(server, 'carol');
    for (let i = 0; i < 50; i += 1) client.send({ type: 'typing.start', payload: {} });
    const started = Date.now();
    for (let i = 0; i < 100; i += 1) {
      const res = await api(server, 'POST', '/api/broadcast',
        { userId: 'carol', type: 'ask.response', payload: { chunk: String(i), isComplete: i === 99 } });
      assert.equal(res.body.delivered, 1);
    }
    for (let i = 0; i < 100; i += 1) assert.equal((await client.next(2000)).payload.chunk, String(i));
    assert.ok(Date.now() - started < 2500, `socket delivery took ${Date.now() - started} ms while the webhook stalls`);
    await waitFor(async () => (await metric(server, 'zena_upstream_dropped_total{sink="webhook"}')) >= 40, 3000, 'oldest dropped');
    await client.close();
  } finally {
    await server.stop();
    slow.close();
  }
});

test('Webhook.DownBackend_DoesNotSlowSocketDeliveryAndIsCounted', async () => {
  // Port 1 on loopback: nothing listens, every connect is refused.
  const server = await startServer({
    env: { ZENA_WEBHOOK_URL: 'http://127.0.0.1:1/events', ZENA_WEBHOOK_MAX_ATTEMPTS: '2', ZENA_WEBHOOK_BACKOFF_MS: '10', ZENA_UPSTREAM_ROUTES: CLIENT_EVENTS },
  });
  try {
    const client = await connectUser(server, 'dave');
    for (let i = 0; i < 20; i += 1) client.send({ type: 'sync.request', payload: {} });
    const started = Date.now();
    for (let i = 0; i < 100; i += 1) {
      await api(server, 'POST', '/api/broadcast', { userId: 'dave', type: 'ask.response', payload: { chunk: String(i), isComplete: false } });
    }
    for (let i = 0; i < 100; i += 1) assert.equal((await client.next(2000)).payload.chunk, String(i));
    assert.ok(Date.now() - started < 2500, `socket delivery took ${Date.now() - started} ms`);
    await waitFor(async () => (await metric(server, 'zena_upstream_failed_total{sink="webhook"}')) === 20, 5000, 'each event given up');
    await client.close();
  } finally {
    await server.stop();
  }
});
