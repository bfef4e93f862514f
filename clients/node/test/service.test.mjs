// What the publisher puts on the wire, seen by a real HTTP server that records requests: one
// batch per tick, one request at a time, retries on network errors and 503, errors that name
// the field. The publisher against the real gateway, and through a real Redis, is tested in
// tests/e2e/sdk_publisher.test.mjs.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { createRealtimeService, RealtimeError } from '../dist/index.js';

const event = { threadId: 't', accountId: 'a' };

// Servers still open when the tests end (a failed assertion skips its close) are closed here.
const servers = new Set();
after(() => { for (const s of servers) { s.closeAllConnections(); s.close(); } });

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
      // The idempotency keys (one per publish, made by the service) are recorded apart, and
      // checked by the tests about them: the other tests compare the rest of the body.
      const keys = [];
      for (const item of body?.items ?? (body ? [body] : [])) {
        if (item && typeof item === 'object' && 'idempotencyKey' in item) {
          keys.push(item.idempotencyKey);
          delete item.idempotencyKey;
        }
      }
      requests.push({ method: req.method, path: req.url, body, auth: req.headers.authorization });
      Object.defineProperty(requests.at(-1), 'keys', { value: keys, enumerable: false });
      await new Promise((r) => setTimeout(r, 5));
      inFlight -= 1;
      const [status, json] = await answer(req, body, requests.length);
      if (status === 'drop') return req.socket.destroy();
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  servers.add(server);
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

test('Publisher.IdempotencyKeys_OnePerPublish_KeptAcrossRetries_GivenOnesPassed', async () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const rec = await recorder((req, body, n) => (n === 2 ? [503, { error: 'the engine is unavailable: redis did not answer: the publish may have been applied' }]
    : n === 3 ? [200, { delivered: 0, duplicate: true, channel: 'user:u', epoch: 'e1', seq: 4 }] : okAnswer(req, body)));
  const service = createRealtimeService({ url: rec.url, apiKey: 'k', retryDelayMs: 1 });
  await Promise.all([1, 2].map((i) => service.broadcastToUser(`u${i}`, 'thread.new', event)));
  assert.equal(rec.requests[0].keys.length, 2);
  assert.ok(rec.requests[0].keys.every((k) => uuid.test(k)), rec.requests[0].keys.join());
  assert.notEqual(rec.requests[0].keys[0], rec.requests[0].keys[1], 'a key per publish');
  // Answered 503, retried with the same key: the server's duplicate answer is passed on.
  const retried = await service.broadcastToUser('u', 'thread.new', event);
  assert.deepEqual(retried, { delivered: 0, duplicate: true, channel: 'user:u', epoch: 'e1', seq: 4 });
  assert.equal(rec.requests.length, 3);
  assert.equal(rec.requests[1].keys.length, 1);
  assert.deepEqual(rec.requests[2].keys, rec.requests[1].keys, 'the retry carries the first try\'s key');
  // A key the caller gives is sent as it is.
  await service.publish('deal:1', 'thread.new', event, { idempotencyKey: 'job-42' });
  assert.deepEqual(rec.requests[3].keys, ['job-42']);
  await service.close();
  // Turned off: no key unless given.
  const plain = createRealtimeService({ url: rec.url, apiKey: 'k', idempotencyKeys: false });
  await plain.broadcastToAll('thread.new', event);
  await plain.broadcastToAll('thread.new', event, { idempotencyKey: 'k-1' });
  assert.deepEqual(rec.requests.slice(4).map((r) => r.keys), [[], ['k-1']]);
  rec.close();
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

// Channels (docs/channels.md): publish, history, server-side subscriptions.
const risk = { dealId: 'deal-123', riskLevel: 'high', riskFlags: ['silent'], riskReason: 'no reply' };

test('Publisher.Publish_PostsChannelTypePayload_AndReturnsThePosition', async () => {
  const rec = await recorder((req, body) => (body.type === 'typing.start'
    ? [200, { delivered: 2, channel: body.channel }]
    : [200, { delivered: 3, channel: body.channel, epoch: 'k2x9c1aa0', seq: 8 }]));
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  assert.deepEqual(await service.publish('deal:123', 'deal.risk', risk), { delivered: 3, channel: 'deal:123', epoch: 'k2x9c1aa0', seq: 8 });
  assert.deepEqual(rec.requests[0], { method: 'POST', path: '/api/publish', body: { channel: 'deal:123', type: 'deal.risk', payload: risk }, auth: 'Bearer k' });
  rec.close();
});

test('Publisher.PublishAndBroadcastInOneTick_GoInOneBatch_WithTheirPositions', async () => {
  const rec = await recorder((req, body) => [200, { results: body.items.map((item, i) => (item.channel
    ? { delivered: 1, channel: item.channel, epoch: 'e', seq: 10 + i }
    : { delivered: 1, channel: `user:${item.userId}`, epoch: 'u', seq: 1 })) }]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  const results = await Promise.all([
    service.broadcastToUser('alice', 'thread.new', event),
    service.publish('deal:1', 'deal.risk', risk),
  ]);
  assert.equal(rec.requests.length, 1);
  assert.equal(rec.requests[0].path, '/api/batch');
  assert.deepEqual(rec.requests[0].body.items, [
    { userId: 'alice', type: 'thread.new', payload: event },
    { channel: 'deal:1', type: 'deal.risk', payload: risk },
  ]);
  assert.deepEqual(results, [
    { delivered: 1, channel: 'user:alice', epoch: 'u', seq: 1 },
    { delivered: 1, channel: 'deal:1', epoch: 'e', seq: 11 },
  ]);
  rec.close();
});

test('Publisher.BroadcastToUser_ExposesThePersonalChannelPosition', async () => {
  const rec = await recorder((req, body) => [200, { delivered: 1, channel: `user:${body.userId}`, epoch: 'k2', seq: 42 }]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  const r = await service.broadcastToUser('alice', 'thread.new', event);
  assert.deepEqual(r, { delivered: 1, channel: 'user:alice', epoch: 'k2', seq: 42 });
  assert.equal(rec.requests[0].path, '/api/broadcast');
  rec.close();
});

test('Publisher.History_EncodesTheChannel_AndPassesSinceAndLimit', async () => {
  const page = { channel: 'deal:1/x y', epoch: 'e1', seq: 9, recovered: true, events: [{ type: 'deal.risk', payload: risk, seq: 8 }, { type: 'deal.risk', payload: risk, seq: 9 }] };
  const rec = await recorder(() => [200, page]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  assert.deepEqual(await service.history('deal:1/x y', { since: 'e1:7', limit: 50 }), page);
  await service.history('deal:1', { since: { epoch: 'e1', seq: 9 } });
  await service.history('deal:1');
  assert.deepEqual(rec.requests.map((r) => `${r.method} ${r.path}`), [
    'GET /api/channels/deal%3A1%2Fx%20y/history?since=e1%3A7&limit=50',
    'GET /api/channels/deal%3A1/history?since=e1%3A9',
    'GET /api/channels/deal%3A1/history',
  ]);
  assert.equal(rec.requests[0].body, undefined);
  rec.close();
});

test('Publisher.SubscribeAndUnsubscribeUser_EncodeUserAndChannel', async () => {
  const rec = await recorder((req, body) => [200, { userId: 'u', channel: 'c', connections: req.method === 'POST' ? 2 : 1 }]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  assert.deepEqual(await service.subscribeUser('alice@example.com/1', 'deal:123'), { userId: 'u', channel: 'c', connections: 2 });
  assert.deepEqual(await service.unsubscribeUser('alice@example.com/1', 'deal:1/2?'), { userId: 'u', channel: 'c', connections: 1 });
  assert.deepEqual(rec.requests.map((r) => [r.method, r.path, r.body]), [
    ['POST', '/api/users/alice%40example.com%2F1/subscriptions', { channel: 'deal:123' }],
    ['DELETE', '/api/users/alice%40example.com%2F1/subscriptions/deal%3A1%2F2%3F', undefined],
  ]);
  await assert.rejects(service.unsubscribeUser('..', 'deal:1'), /path segment/, 'a dot segment would be resolved away');
  assert.equal(rec.requests.length, 2);
  rec.close();
});

test('Publisher.GetPresence_EncodesEachIdAndJoinsWithCommas_SplitsPast1000', async () => {
  const rec = await recorder((req) => {
    const ids = req.url.split('userIds=')[1].split(','); // split first, then decode each
    return [200, Object.fromEntries(ids.map((id) => [decodeURIComponent(id), id === 'bob' ? { online: false, lastSeen: 1796231343442 } : { online: true, connections: 2 }]))];
  });
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  assert.deepEqual(await service.getPresence(['alice', 'bob', 'a,b@x.com/1']), {
    alice: { online: true, connections: 2 },
    bob: { online: false, lastSeen: 1796231343442 },
    'a,b@x.com/1': { online: true, connections: 2 },
  });
  assert.deepEqual(rec.requests.map((r) => `${r.method} ${r.path}`), ['GET /api/presence?userIds=alice,bob,a%2Cb%40x.com%2F1'],
    'a comma inside an id is encoded: only the separators are bare');
  assert.equal(rec.requests[0].auth, 'Bearer k');
  assert.deepEqual(await service.getPresence([]), {});
  assert.equal(rec.requests.length, 1, 'no ids, no request');
  const many = Array.from({ length: 2500 }, (_, i) => `u${i}`);
  const all = await service.getPresence(many);
  assert.equal(Object.keys(all).length, 2500);
  assert.deepEqual(rec.requests.slice(1).map((r) => r.path.split(',').length), [1000, 1000, 500], 'at most 1,000 ids a request');
  rec.close();
});

test('Publisher.ChannelPresence_EncodesTheChannel', async () => {
  const answer = { channel: 'thread:9/x', users: ['alice', 'bob'], count: 2 };
  const rec = await recorder(() => [200, answer]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  assert.deepEqual(await service.channelPresence('thread:9/x'), answer);
  assert.deepEqual(rec.requests.map((r) => `${r.method} ${r.path}`), ['GET /api/channels/thread%3A9%2Fx/presence']);
  await assert.rejects(service.channelPresence('..'), /path segment/);
  rec.close();
  const refusing = await recorder(() => [400, { error: 'userIds: 1 to 1000 ids', field: 'userIds' }]);
  const s2 = createRealtimeService({ url: refusing.url, apiKey: 'k' });
  await assert.rejects(s2.getPresence(['']), (e) => e instanceof RealtimeError && e.status === 400 && e.field === 'userIds');
  refusing.close();
});

test('Publisher.ChannelRefusals_RejectWithRealtimeError', async () => {
  const rec = await recorder(() => [400, { error: 'channel: invalid_channel', field: 'channel' }]);
  const service = createRealtimeService({ url: rec.url, apiKey: 'k' });
  await assert.rejects(service.publish('bad channel', 'thread.new', event), (e) => e instanceof RealtimeError && e.status === 400 && e.field === 'channel');
  await assert.rejects(service.history('x'), (e) => e instanceof RealtimeError && e.status === 400);
  rec.close();
});

test('Publisher.RedisMode_PublishesChannelBodies_AndNeedsHttpForTheRest', async () => {
  const published = [];
  const redis = { publish: async (channel, message) => { published.push([channel, JSON.parse(message)]); return 1; } };
  const service = createRealtimeService({ redis: { client: redis } });
  assert.deepEqual(await service.publish('deal:1', 'deal.risk', risk), { delivered: null });
  await Promise.all([service.publish('deal:2', 'thread.new', event), service.broadcastToUser('u', 'thread.new', event)]);
  assert.deepEqual(published, [
    ['zena:publish', { channel: 'deal:1', type: 'deal.risk', payload: risk }],
    ['zena:publish', { items: [{ channel: 'deal:2', type: 'thread.new', payload: event }, { userId: 'u', type: 'thread.new', payload: event }] }],
  ]);
  await assert.rejects(service.history('deal:1'), /needs url and apiKey/);
  await assert.rejects(service.subscribeUser('u', 'deal:1'), /needs url and apiKey/);
  await assert.rejects(service.unsubscribeUser('u', 'deal:1'), /needs url and apiKey/);
  await assert.rejects(service.getPresence(['u']), /needs url and apiKey/);
  await assert.rejects(service.channelPresence('thread:9'), /needs url and apiKey/);

  // With url and apiKey as well, those go over HTTP while publishes still go through Redis.
  const rec = await recorder(() => [200, { userId: 'u', channel: 'deal:1', connections: 1 }]);
  const both = createRealtimeService({ redis: { client: redis }, url: rec.url, apiKey: 'k' });
  assert.equal((await both.subscribeUser('u', 'deal:1')).connections, 1);
  await both.publish('deal:3', 'thread.new', event);
  assert.deepEqual(rec.requests.map((r) => r.path), ['/api/users/u/subscriptions']);
  assert.equal(published.at(-1)[1].channel, 'deal:3');
  rec.close();
});
