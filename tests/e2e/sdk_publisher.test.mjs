// The publisher SDK (clients/node, built) against the real server and a real Redis: the seed's
// websocketService calls, idempotency keys, refusals that name the field, a 1,000-chunk stream published without
// awaiting arriving in order in few requests, and publishing through Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { createRealtimeService, RealtimeError } from '../../clients/node/dist/index.js';
import { API_KEY, SEED_EVENTS, connectUser, metric, sleep, startRedis, startServer } from './harness.mjs';

describe('publisher over HTTP', () => {
  let server;
  let service;
  before(async () => {
    server = await startServer();
    service = createRealtimeService({ url: server.url('/'), apiKey: API_KEY });
  });
  after(async () => { await service.close(); await server.stop(); });

  test('SdkPublisher.SeedCalls_DeliverAndCount', async () => {
    const a = await connectUser(server, 'user-1');
    const a2 = await connectUser(server, 'user-1');
    const b = await connectUser(server, 'user-2');
    const one = await service.broadcastToUser('user-1', 'thread.new', { threadId: 'thread-123', accountId: 'account-456' });
    assert.deepEqual([one.delivered, one.channel, one.seq], [2, 'user:user-1', 1]);
    const risk = SEED_EVENTS.find((e) => e.type === 'deal.risk');
    assert.deepEqual(await service.broadcastToUsers(['user-1', 'user-2'], 'deal.risk', risk.payload), { delivered: 3 });
    for (const c of [a, a2]) assert.equal((await c.next()).type, 'thread.new');
    for (const c of [a, a2, b]) assert.deepEqual(await c.nextSeed(), risk);
    assert.equal(await service.getUserConnectionCount('user-1'), 2);
    assert.equal(await service.getTotalConnectionCount(), 3);
    await Promise.all([a.close(), a2.close(), b.close()]);
  });

  test('SdkPublisher.AKeyGivenTwice_TheSecondIsADuplicate', async () => {
    const c = await connectUser(server, 'user-idem');
    const payload = { threadId: 'thread-idem', accountId: 'account-1' };
    const first = await service.broadcastToUser('user-idem', 'thread.new', payload, { idempotencyKey: 'job-42:thread-idem' });
    const again = await service.broadcastToUser('user-idem', 'thread.new', payload, { idempotencyKey: 'job-42:thread-idem' });
    assert.equal(first.duplicate, undefined);
    assert.deepEqual(again, { delivered: 0, duplicate: true, channel: 'user:user-idem', epoch: first.epoch, seq: first.seq });
    // The keys the service makes itself differ per publish: both of these are delivered.
    await Promise.all([1, 2].map(() => service.broadcastToUser('user-idem', 'thread.new', payload)));
    for (let i = 0; i < 3; i += 1) assert.equal((await c.next()).type, 'thread.new');
    await sleep(100);
    assert.deepEqual(c.messages, [], 'the duplicate was not delivered');
    await c.close();
  });

  test('SdkPublisher.Refusal_SaysWhatTheServerRefused', async () => {
    await assert.rejects(
      service.broadcastToUser('u', 'deal.risk', { dealId: 'd', riskLevel: 'low', riskFlags: [], riskReason: 'r' }),
      (e) => e instanceof RealtimeError && e.status === 400 && e.field === 'payload.riskLevel' && e.event === 'deal.risk'
        && /must be one of medium, high/.test(e.message),
    );
  });

  test('SdkPublisher.ThousandChunksWithoutAwaiting_ArriveInOrderInFewRequests', async () => {
    const client = await connectUser(server, 'asker');
    const requestsBefore = await metric(server, 'zena_http_requests_total');
    const n = 1000;
    const results = [];
    for (let i = 0; i < n; i += 1) {
      results.push(service.broadcastToUser('asker', 'ask.response', { chunk: `c${i} `, isComplete: i === n - 1, streamId: 'q1' }));
      if (i % 100 === 99) await new Promise((r) => setImmediate(r)); // several ticks, several batches
    }
    await Promise.all(results);
    for (let i = 0; i < n; i += 1) assert.equal((await client.next()).payload.chunk, `c${i} `);
    const requests = (await metric(server, 'zena_http_requests_total')) - requestsBefore - 1; // less this read
    assert.ok(requests <= 20, `coalesced into ${requests} requests`);
    await client.close();
  });
});

describe('publisher through Redis', () => {
  let redis;
  let server;
  let rc;
  before(async () => {
    redis = await startRedis();
    server = await startServer({ env: { ZENA_REDIS_URL: redis.url, ZENA_REDIS_PUBLISH_STREAM: '' } });
    rc = createClient({ url: redis.url });
    await rc.connect();
  });
  after(async () => { await rc.quit(); await server.stop(); await redis.stop(); });

  test('SdkPublisher.Redis_DeliversLikeHttp', async () => {
    for (let i = 0; i < 50 && (await rc.pubSubNumSub('zena:publish'))['zena:publish'] !== 1; i += 1) await sleep(50);
    const service = createRealtimeService({ redis: { client: rc } });
    const client = await connectUser(server, 'alice');
    const results = await Promise.all(SEED_EVENTS.map((e) => service.broadcastToUser('alice', e.type, e.payload)));
    assert.ok(results.every((r) => r.delivered === null), 'Redis does not say how many');
    for (const event of SEED_EVENTS) assert.deepEqual(await client.nextSeed(), event);
    assert.equal(await metric(server, 'zena_redis_publishes_total'), 1, 'one batch message for the tick');
    await assert.rejects(service.getTotalConnectionCount(), /needs url and apiKey/);
    await client.close();
  });
});
