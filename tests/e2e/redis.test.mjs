// Redis on both sides, with a real redis-server: client events appended to a stream that a
// consumer group reads, routed per type; publishes read from a channel and a stream, checked
// and delivered like HTTP ones, in order.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { SEED_EVENTS, api, connectUser, metric, sleep, startRedis, startServer, waitFor } from './harness.mjs';

const EVENTS_STREAM = 'zena:client-events';

async function redisClient(redis) {
  const client = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  return client;
}

// Reads what the group has not seen yet, acknowledging it: the backend's consumer. The client
// events only: the server's own presence notices (docs/presence.md) share the stream.
async function readGroup(client, count = 100) {
  const res = await client.xReadGroup('backend', 'worker-1', { key: EVENTS_STREAM, id: '>' }, { COUNT: count, BLOCK: 100 });
  const entries = res ? res[0].messages : [];
  if (entries.length) await client.xAck(EVENTS_STREAM, 'backend', entries.map((e) => e.id));
  return entries.map((e) => e.message).filter((m) => !m.type.startsWith('presence.'));
}

async function readAll(client, n, timeoutMs = 5000) {
  const out = [];
  await waitFor(async () => { out.push(...(await readGroup(client))); return out.length >= n; }, timeoutMs, `${n} stream entries`);
  return out;
}

describe('client events to a Redis stream', () => {
  let redis;
  let rc;
  before(async () => {
    redis = await startRedis();
    rc = await redisClient(redis);
  });
  after(async () => {
    await rc.quit();
    await redis.stop();
  });

  test('RedisStream.ClientEvents_ReachAConsumerGroupWithTheirSender', async () => {
    await rc.xGroupCreate(EVENTS_STREAM, 'backend', '$', { MKSTREAM: true });
    const server = await startServer({ env: { ZENA_REDIS_URL: redis.url } });
    try {
      const client = await connectUser(server, 'alice');
      client.send({ type: 'sync.request', payload: {} });
      client.send({ type: 'thread.view', payload: { threadId: 'thread-123' } });
      client.send({ type: 'thread.view', payload: { threadID: 'x' } }); // invalid: never forwarded
      client.send({ type: 'typing.start', payload: {} });
      const entries = await readAll(rc, 3);
      assert.deepEqual(entries.map((e) => e.type), ['sync.request', 'thread.view', 'typing.start']);
      for (const e of entries) {
        assert.equal(e.userId, 'alice');
        const event = JSON.parse(e.event);
        assert.equal(event.userId, 'alice');
        assert.equal(event.type, e.type);
        assert.equal(event.connectionId, client.welcome.payload.connectionId);
        assert.match(event.receivedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      }
      assert.deepEqual(JSON.parse(entries[1].event).payload, { threadId: 'thread-123' });
      await sleep(200);
      assert.deepEqual(await readGroup(rc), [], 'the invalid event was not forwarded');
      // The three client events and alice's presence.online (docs/presence.md).
      assert.equal(await metric(server, 'zena_upstream_delivered_total{sink="redis_stream"}'), 4);
      await client.close();
    } finally {
      await server.stop();
      await rc.del(EVENTS_STREAM);
    }
  });

  test('RedisStream.Routes_SendEachTypeOnlyWhereConfigured', async () => {
    await rc.xGroupCreate(EVENTS_STREAM, 'backend', '$', { MKSTREAM: true });
    const hooked = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => { hooked.push(JSON.parse(body)); res.writeHead(204); res.end(); });
    });
    hook.listen(0, '127.0.0.1');
    await once(hook, 'listening');
    const server = await startServer({
      env: {
        ZENA_REDIS_URL: redis.url,
        ZENA_WEBHOOK_URL: `http://127.0.0.1:${hook.address().port}/events`,
        ZENA_UPSTREAM_ROUTES: 'sync.request=webhook+redis, thread.view=redis, typing.start=none, presence.online=none',
      },
    });
    try {
      const client = await connectUser(server, 'bob');
      client.send({ type: 'typing.start', payload: {} });
      client.send({ type: 'thread.view', payload: { threadId: 't1' } });
      client.send({ type: 'sync.request', payload: {} });
      const entries = await readAll(rc, 2);
      assert.deepEqual(entries.map((e) => e.type), ['thread.view', 'sync.request']);
      await waitFor(() => hooked.length >= 1, 5000, 'webhook call');
      await sleep(200);
      assert.deepEqual(hooked.map((e) => e.type), ['sync.request'], 'only sync.request goes to the webhook');
      assert.deepEqual(await readGroup(rc), []);
      assert.equal(await metric(server, 'zena_client_events_unrouted_total'), 1, 'typing.start went nowhere');
      await client.close();
    } finally {
      await server.stop();
      hook.close();
      await rc.del(EVENTS_STREAM);
    }
  });

  test('RedisStream.RoutesNamingAnUnknownTypeOrUnsetDestination_RefuseToStart', async () => {
    for (const [routes, expected] of [
      ['thread.vieww=redis', /not a client event in the catalog/],
      ['*=webhook', /webhook.url is not set/],
      ['*=kafka', /unknown destination 'kafka'/],
    ]) {
      await assert.rejects(startServer({ env: { ZENA_REDIS_URL: redis.url, ZENA_UPSTREAM_ROUTES: routes } }), expected);
    }
  });

  test('RedisStream.RedisDown_SocketsUnaffectedAndEventsArriveOnceItIsBack', async () => {
    const later = await startRedis();
    const port = later.port;
    await later.stop(); // nothing listens on `port` now
    const server = await startServer({ env: { ZENA_REDIS_URL: `redis://127.0.0.1:${port}`, ZENA_REDIS_PUBLISH_CHANNEL: '', ZENA_REDIS_PUBLISH_STREAM: '' } });
    let back;
    let backClient;
    try {
      const client = await connectUser(server, 'carol');
      for (let i = 0; i < 5; i += 1) client.send({ type: 'thread.view', payload: { threadId: `t${i}` } });
      // Delivery to the socket goes on while Redis is away.
      const started = Date.now();
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'carol', ...SEED_EVENTS[3] });
      assert.equal(res.status, 200);
      assert.deepEqual(await client.nextSeed(), SEED_EVENTS[3]);
      assert.ok(Date.now() - started < 1000, 'the socket was not held up by Redis');
      assert.equal((await fetch(server.url('/readyz'))).status, 200, 'no publish channel: ready without Redis');
      back = await startRedis({ port });
      backClient = await redisClient(back);
      // The five thread.view and carol's presence.online (docs/presence.md), queued while Redis was away.
      await waitFor(async () => (await backClient.xLen(EVENTS_STREAM)) === 6, 10000, 'the queued events after reconnect');
      const entries = (await backClient.xRange(EVENTS_STREAM, '-', '+')).filter((e) => !e.message.type.startsWith('presence.'));
      assert.deepEqual(entries.map((e) => JSON.parse(e.message.event).payload.threadId), ['t0', 't1', 't2', 't3', 't4']);
      await client.close();
    } finally {
      await server.stop();
      if (backClient) await backClient.quit();
      if (back) await back.stop();
    }
  });
});

describe('publishing through Redis', () => {
  let redis;
  let rc;
  let server;
  before(async () => {
    redis = await startRedis();
    rc = await redisClient(redis);
    server = await startServer({ env: { ZENA_REDIS_URL: redis.url, ZENA_REDIS_CLIENT_EVENTS_STREAM: '' } });
    await waitFor(async () => (await rc.pubSubNumSub('zena:publish'))['zena:publish'] === 1, 5000, 'the subscription');
    await waitFor(() => /redis publish stream reading/.test(server.output()), 5000, 'the stream reader');
  });
  after(async () => {
    await server.stop();
    await rc.quit();
    await redis.stop();
  });

  test('RedisPublish.ChannelMessages_ArriveLikeHttpPublishes', async () => {
    const owner = await connectUser(server, 'owner');
    const other = await connectUser(server, 'other');
    for (const event of SEED_EVENTS) {
      await rc.publish('zena:publish', JSON.stringify({ userId: 'owner', ...event }));
      assert.deepEqual(await owner.nextSeed(), event);
    }
    // A batch body, and "all": true for everyone.
    await rc.publish('zena:publish', JSON.stringify({ items: [
      { userIds: ['owner', 'other'], ...SEED_EVENTS[5] },
      { all: true, ...SEED_EVENTS[0] },
    ] }));
    assert.deepEqual(await owner.nextSeed(), SEED_EVENTS[5]);
    assert.deepEqual(await owner.nextSeed(), SEED_EVENTS[0]);
    assert.deepEqual(await other.nextSeed(), SEED_EVENTS[5]);
    assert.deepEqual(await other.nextSeed(), SEED_EVENTS[0]);
    await sleep(50);
    assert.deepEqual(other.messages, [], 'nothing else reached the other user');
    await Promise.all([owner.close(), other.close()]);
  });

  test('RedisPublish.RefusedMessages_AreLoggedCountedAndDeliverNothing', async () => {
    const before = (await metric(server, 'zena_redis_publishes_refused_total')) ?? 0;
    const client = await connectUser(server, 'target');
    await rc.publish('zena:publish', 'not json');
    await rc.publish('zena:publish', JSON.stringify({ userId: 'target', type: 'deal.risk', payload: { dealId: 'd', riskLevel: 'low', riskFlags: [], riskReason: 'r' } }));
    await rc.xAdd('zena:publish', '*', { notbody: '{}' });
    await rc.publish('zena:publish', JSON.stringify({ items: [{ userId: 'target', type: 'nope', payload: {} }, { userId: 'target', ...SEED_EVENTS[3] }] }));
    assert.deepEqual(await client.nextSeed(), SEED_EVENTS[3], 'the valid batch item still arrives');
    await waitFor(async () => (await metric(server, 'zena_redis_publishes_refused_total')) === before + 4, 3000, 'four refusals');
    assert.match(server.output(), /redis publish refused status=400 error=\{"error":"deal.risk: payload.riskLevel must be one of medium, high"/);
    await sleep(50);
    assert.deepEqual(client.messages, []);
    await client.close();
  });

  test('RedisPublish.StreamEntries_ArriveInOrderWhileAChannelStreamInterleaves', async () => {
    const client = await connectUser(server, 'asker');
    const n = 500;
    const chunk = (streamId, i) => ({ userId: 'asker', type: 'ask.response',
      payload: { chunk: `${streamId}-${i} `, isComplete: i === n - 1, streamId } });
    const sends = [];
    for (let i = 0; i < n; i += 1) {
      sends.push(rc.xAdd('zena:publish', '*', { body: JSON.stringify(chunk('s', i)) }));
      sends.push(rc.publish('zena:publish', JSON.stringify(chunk('c', i))));
    }
    await Promise.all(sends);
    const got = { s: [], c: [] };
    while (got.s.length < n || got.c.length < n) {
      const m = await client.next(5000);
      got[m.payload.streamId].push(m.payload);
    }
    for (const id of ['s', 'c']) {
      assert.deepEqual(got[id].map((p) => p.chunk), Array.from({ length: n }, (_, i) => `${id}-${i} `), `stream ${id} in order`);
      assert.equal(got[id].at(-1).isComplete, true);
    }
    await client.close();
  });
});

describe('a Redis publish channel that goes away', () => {
  const readyz = async (server) => {
    const res = await fetch(server.url('/readyz'));
    return { status: res.status, body: await res.json() };
  };
  const gapSeconds = async (server) => {
    const text = await (await fetch(server.url('/metrics'))).text();
    const m = text.match(/^zena_redis_ingest_gap_seconds_total (\d+(?:\.\d+)?)$/m);
    return m ? Number(m[1]) : undefined;
  };

  test('RedisPublish.ChannelLost_ResubscribesAtOnceCountsTheGapAndIsNotReadyMeanwhile', async () => {
    const redis = await startRedis();
    const { port } = redis;
    const server = await startServer({
      env: { ZENA_REDIS_URL: redis.url, ZENA_REDIS_CLIENT_EVENTS_STREAM: '', ZENA_REDIS_PUBLISH_STREAM: '' },
    });
    let rc = await redisClient(redis);
    let back;
    try {
      await waitFor(async () => (await rc.pubSubNumSub('zena:publish'))['zena:publish'] === 1, 5000, 'the subscription');
      await waitFor(async () => (await readyz(server)).status === 200, 2000, 'ready');
      assert.equal(await metric(server, 'zena_redis_ingest_gaps_total'), 0);
      const client = await connectUser(server, 'watcher');

      await rc.quit();
      await redis.stop();
      const down = await waitFor(async () => { const r = await readyz(server); return r.status === 503 && r; }, 2000, 'not ready');
      assert.equal(down.body.status, 'not ready');
      assert.match(down.body.reason, /redis publish channel zena:publish not subscribed/);
      assert.equal(await metric(server, 'zena_redis_ingest_gaps_total'), 1);
      // Past 1.5 s down, where a backoff of 100 ms doubling would next try at 3.1 s.
      await sleep(1700);
      back = await startRedis({ port });
      const backAt = Date.now();
      rc = await redisClient(back);
      await waitFor(async () => (await rc.pubSubNumSub('zena:publish'))['zena:publish'] === 1, 5000, 'the resubscription');
      const took = Date.now() - backAt;
      assert.ok(took < 500, `subscribed again ${took} ms after Redis answered (publishes meanwhile are lost)`);
      await waitFor(async () => (await readyz(server)).status === 200, 2000, 'ready again');
      assert.deepEqual((await readyz(server)).body, { status: 'ready' });
      assert.equal(await metric(server, 'zena_redis_ingest_gaps_total'), 1);
      const gap = await gapSeconds(server);
      assert.ok(gap >= 1.5 && gap < 10, `gap of ${gap} s counted`);

      // And publishes flow again, none lost once subscribed.
      for (let i = 0; i < 20; i += 1) {
        assert.equal(await rc.publish('zena:publish', JSON.stringify({ userId: 'watcher', type: 'ask.response',
          payload: { chunk: `${i}`, isComplete: i === 19, streamId: 's' } })), 1);
      }
      for (let i = 0; i < 20; i += 1) assert.equal((await client.next()).payload.chunk, `${i}`);
      await client.close();
    } finally {
      await server.stop();
      await rc.quit().catch(() => {});
      if (back) await back.stop();
      await redis.stop();
    }
  });

  test('RedisPublish.RedisDownAtStart_NotReadyUntilSubscribed', async () => {
    const later = await startRedis();
    const { port } = later;
    await later.stop();
    const server = await startServer({
      env: { ZENA_REDIS_URL: `redis://127.0.0.1:${port}`, ZENA_REDIS_CLIENT_EVENTS_STREAM: '', ZENA_REDIS_PUBLISH_STREAM: '' },
    });
    let back;
    try {
      const down = await readyz(server);
      assert.equal(down.status, 503);
      assert.match(down.body.reason, /redis publish channel zena:publish not subscribed yet/);
      assert.equal((await fetch(server.url('/healthz'))).status, 200, 'alive, only not ready');
      back = await startRedis({ port });
      await waitFor(async () => (await readyz(server)).status === 200, 2000, 'ready once subscribed');
      assert.equal(await metric(server, 'zena_redis_ingest_gaps_total'), 0, 'no subscription was lost');
    } finally {
      await server.stop();
      if (back) await back.stop();
    }
  });
});
