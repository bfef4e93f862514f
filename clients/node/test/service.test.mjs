// What the publisher puts on the wire, seen by a real HTTP server that records requests: one
// batch per tick, one request at a time, retries on network errors and 503, errors that name
// the field. The publisher against the real gateway, and through a real Redis, is tested in
// tests/e2e/sdk_publisher.test.mjs.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { createRealtimeService, RealtimeError } from '../dist/index.js';

const event = { threadId: 't', accountId: 'a' };

// A recording server: `answer(req, body)` returns [status, json] or 'drop' (destroy the socket).
async function recorder(answer) {
  const requests = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => { text += d; });
    req.on('end', async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const body = text ? JSON.parse(text) : undefined;
      requests.push({ method: req.method, path: req.url, body, auth: req.headers.authorization });
      await new Promise((r) => setTimeout(r, 5));
      inFlight -= 1;
      const [status, json] = await answer(req, body, requests.length);
      if (status === 'drop') return req.socket.destroy();
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { requests, url: `http://127.0.0.1:${server.address().port}`, maxInFlight: () => maxInFlight, close: () => server.close() };
}

const okAnswer = (req, body) => {
  if (req.url === '/api/batch') return [200, { results: body.items.map(() => ({ delivered: 1 })) }];
  return [200, { delivered: 1 }];
};

test('Publisher.SameTickPublishes_GoAsOneBatch_OneRequestAtATime', async () => {
  const rec = await recorder(okAnswer);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  const first = await Promise.all([1, 2, 3].map((i) => service.broadcastToUser(`u${i}`, 'thread.new', event)));
  assert.deepEqual(first, [{ delivered: 1 }, { delivered: 1 }, { delivered: 1 }]);
  assert.equal(rec.requests.length, 1);
  assert.equal(rec.requests[0].path, '/api/batch');
  assert.deepEqual(rec.requests[0].body.items.map((i) => i.userId), ['u1', 'u2', 'u3']);
  assert.equal(rec.requests[0].auth, 'Bearer k');
  // Published in separate ticks while one is in flight: queued, sent after, in order.
  const later = [];
  for (let i = 0; i < 20; i += 1) {
    later.push(service.broadcastToUser('u', 'thread.new', { threadId: `t${i}`, accountId: 'a' }));
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(later);
  const sent = rec.requests.slice(1).flatMap((r) => (r.body.items ?? [r.body]).map((i) => i.payload.threadId));
  assert.deepEqual(sent, Array.from({ length: 20 }, (_, i) => `t${i}`));
  assert.equal(rec.maxInFlight(), 1, 'never two requests at once: order is kept');
  await service.close();
  rec.close();
});

test('Publisher.SinglePublish_UsesBroadcastOrBroadcastAll', async () => {
  const rec = await recorder(okAnswer);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  await service.broadcastToUsers(['a', 'b'], 'thread.new', event);
  await service.broadcastToAll('thread.new', event);
  assert.deepEqual(rec.requests.map((r) => r.path), ['/api/broadcast', '/api/broadcast-all']);
  assert.deepEqual(rec.requests[0].body, { userIds: ['a', 'b'], type: 'thread.new', payload: event });
  assert.deepEqual(rec.requests[1].body, { type: 'thread.new', payload: event });
  rec.close();
});

test('Publisher.NetworkErrorsAnd503_AreRetriedABoundedNumberOfTimes', async () => {
  const rec = await recorder((req, body, n) => (n === 1 ? ['drop'] : n === 2 ? [503, { error: 'draining' }] : okAnswer(req, body)));
  const service = createRealtimeService({ url: rec.url, apiKey: 'k', retryDelayMs: 1 });
  assert.deepEqual(await service.broadcastToUser('u', 'thread.new', event), { delivered: 1 });
  assert.equal(rec.requests.length, 3);
  rec.close();

  const down = await recorder(() => ['drop']);
  const failing = createRealtimeService({ url: down.url, apiKey: 'k', retryDelayMs: 1, maxRetries: 2 });
  await assert.rejects(failing.getTotalConnectionCount(), /failed after 3 attempts/);
  assert.equal(down.requests.length, 3);
  down.close();
});

test('Publisher.Refusals_RejectWithTheFieldAndEvent_PerItem', async () => {
  const rec = await recorder((req, body) => [200, { results: body.items.map((item) => (item.userId === 'bad'
    ? { status: 400, error: 'deal.risk: payload.riskLevel must be one of medium, high', field: 'payload.riskLevel', event: 'deal.risk' }
    : { delivered: 2 })) }]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  const good = service.broadcastToUser('good', 'thread.new', event);
  const bad = service.broadcastToUser('bad', 'thread.new', event);
  assert.deepEqual(await good, { delivered: 2 });
  await assert.rejects(bad, (e) => e instanceof RealtimeError && e.status === 400 && e.field === 'payload.riskLevel' && e.event === 'deal.risk');
  rec.close();
});
