// The seed's server-side usage: broadcastToUser / broadcastToUsers over the HTTP API. Each
// event reaches every connection of its owner and no one else's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, connectUser, metric, sleep, startServer } from './harness.mjs';

// A valid event of the shipped catalog, for tests about the API rather than the payload.
const NEW = { type: 'thread.new', payload: { threadId: 'thread-1', accountId: 'account-1' } };
const STARTED = (accountId) => ({ type: 'sync.started', payload: { accountId, provider: 'gmail' } });

describe('broadcast', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('Broadcast.ToUser_ReachesAllItsConnectionsAndNoOneElse', async () => {
    const [a1, a2, b1] = await Promise.all([
      connectUser(server, 'alice'), connectUser(server, 'alice'), connectUser(server, 'bob'),
    ]);
    const payload = { threadId: 'thread-123', accountId: 'account-456' };
    const res = await api(server, 'POST', '/api/broadcast', { userId: 'alice', type: 'thread.new', payload });
    assert.equal(res.status, 200);
    // One user: the answer also names the personal channel and the event's position there.
    assert.equal(res.body.delivered, 2);
    assert.equal(res.body.channel, 'user:alice');
    assert.equal(res.body.seq, 1);
    for (const client of [a1, a2]) {
      assert.deepEqual(await client.nextSeed(), { type: 'thread.new', payload });
    }
    // bob gets his own event next: nothing for alice arrived before it.
    await api(server, 'POST', '/api/broadcast', { userId: 'bob', ...STARTED('bob-account') });
    assert.deepEqual(await b1.nextSeed(), STARTED('bob-account'));
    await Promise.all([a1.close(), a2.close(), b1.close()]);
  });

  test('Broadcast.ToUsers_ReachesEachListedUserOnce', async () => {
    const [a, b, c] = await Promise.all(['alice', 'bob', 'carol'].map((u) => connectUser(server, u)));
    const payload = { dealId: 'deal-123', riskLevel: 'high', riskFlags: ['late'], riskReason: 'no reply in 7 days' };
    const res = await api(server, 'POST', '/api/broadcast', {
      userIds: ['alice', 'bob', 'alice', 'nobody'], type: 'deal.risk', payload,
    });
    assert.deepEqual(res.body, { delivered: 2 }, 'several users: no single channel to name');
    assert.deepEqual(await a.nextSeed(), { type: 'deal.risk', payload });
    assert.deepEqual(await b.nextSeed(), { type: 'deal.risk', payload });
    await api(server, 'POST', '/api/broadcast', { userId: 'carol', ...STARTED('carol-account') });
    assert.equal((await c.next()).type, 'sync.started', 'carol got nothing before her own event');
    await sleep(50);
    assert.deepEqual(a.messages, [], 'alice got the event once');
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test('Broadcast.All_ReachesEveryConnection', async () => {
    const clients = await Promise.all(['u1', 'u2', 'u3', 'u3'].map((u) => connectUser(server, u)));
    const res = await api(server, 'POST', '/api/broadcast-all', STARTED('everyone'));
    assert.deepEqual(res.body, { delivered: 4 });
    for (const client of clients) assert.deepEqual(await client.nextSeed(), STARTED('everyone'));
    await Promise.all(clients.map((c) => c.close()));
  });

  test('Broadcast.Order_IsKeptForOnePublisher', async () => {
    const client = await connectUser(server, 'ordered');
    for (let i = 0; i < 200; i += 1) {
      const res = await api(server, 'POST', '/api/broadcast', {
        userId: 'ordered', type: 'ask.response', payload: { chunk: String(i), isComplete: i === 199 },
      });
      assert.equal(res.body.delivered, 1);
    }
    for (let i = 0; i < 200; i += 1) assert.equal((await client.next()).payload.chunk, String(i));
    await client.close();
  });

  test('Broadcast.IdempotencyKey_ARetryIsAnsweredAsADuplicateAndDeliversNothing', async () => {
    const [a1, a2, b] = await Promise.all([
      connectUser(server, 'idem-a'), connectUser(server, 'idem-a'), connectUser(server, 'idem-b'),
    ]);
    const body = { userId: 'idem-a', ...NEW, idempotencyKey: 'req-7f3a' };
    const first = await api(server, 'POST', '/api/broadcast', body);
    assert.equal(first.status, 200);
    assert.equal(first.body.delivered, 2);
    assert.equal(first.body.duplicate, undefined);
    const again = await api(server, 'POST', '/api/broadcast', body);
    assert.deepEqual(again.body, { delivered: 0, duplicate: true, channel: 'user:idem-a', epoch: first.body.epoch, seq: first.body.seq },
      'the retry names the first publish\'s position');
    // Per channel: a broadcast to both users with the key reaches idem-b alone.
    const both = await api(server, 'POST', '/api/broadcast', { userIds: ['idem-a', 'idem-b'], ...NEW, idempotencyKey: 'req-7f3a' });
    assert.deepEqual(both.body, { delivered: 1 }, 'idem-b is new for this key: not every target a duplicate');
    // In a batch each item has its own key; an ephemeral event and an announcement too.
    const typing = { type: 'ask.response', payload: { chunk: 'x', isComplete: false, streamId: 's' } };
    const items = [
      { userId: 'idem-a', ...STARTED('acc-1'), idempotencyKey: 'req-8' },
      { userId: 'idem-a', ...typing, idempotencyKey: 'req-9' },
      { all: true, ...STARTED('everyone'), idempotencyKey: 'req-10' },
    ];
    const batch1 = await api(server, 'POST', '/api/batch', { items });
    const batch2 = await api(server, 'POST', '/api/batch', { items });
    assert.equal(batch1.status, 200);
    assert.ok(batch1.body.results.every((r) => r.duplicate === undefined), JSON.stringify(batch1.body));
    assert.ok(batch2.body.results.every((r) => r.duplicate === true && r.delivered === 0), JSON.stringify(batch2.body));
    const expected = ['thread.new', 'sync.started', 'ask.response', 'sync.started'];
    for (const client of [a1, a2]) {
      for (const type of expected) assert.equal((await client.next()).type, type);
    }
    assert.equal((await b.next()).type, 'thread.new');
    assert.equal((await b.next()).type, 'sync.started');
    await sleep(100);
    for (const client of [a1, a2, b]) assert.deepEqual(client.messages, [], 'nothing twice');
    assert.equal(await metric(server, 'zena_api_duplicate_publishes_total'), 4);
    await Promise.all([a1.close(), a2.close(), b.close()]);
  });

  test('Broadcast.Payload_PassesThroughExactly', async () => {
    const client = await connectUser(server, 'exact');
    const events = [
      { type: 'task.created', payload: {
        taskId: 't-1', label: 'Call \"the\" vendor \\ ünïcödé ✓ 🏠', dueDate: '2026-12-01T10:00:00.000Z',
        dealId: 'd', source: 'email' } },
      { type: 'sync.progress', payload: { accountId: 'a', totalThreads: 1e3, processedThreads: 2.5 } },
      { type: 'ask.response', payload: {
        chunk: '', isComplete: true, streamId: 's1', sources: [{ type: 'thread', id: 't1', title: 'Offer' }],
        suggestedActions: ['Reply', 'Call'] } },
    ];
    for (const event of events) {
      assert.equal((await api(server, 'POST', '/api/broadcast', { userId: 'exact', ...event })).status, 200);
      assert.deepEqual(await client.nextSeed(), event);
    }
    await client.close();
  });
});

describe('server API input', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_HTTP_MAX_BODY_BYTES: '4096' } }); });
  after(async () => { await server.stop(); });

  const post = (body, opts) => api(server, 'POST', '/api/broadcast', body, opts);

  test('Api.MissingKey_Is401', async () => {
    const res = await post({ userId: 'a', ...NEW }, { key: null });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.match(res.body.error, /API key/);
  });

  test('Api.WrongKey_Is401', async () => {
    assert.equal((await post({ userId: 'a', ...NEW }, { key: 'wrong-key-0123456789' })).status, 401);
    assert.equal((await api(server, 'GET', '/api/stats', undefined, { key: 'x' })).status, 401);
  });

  const cases = [
    ['InvalidJson', { raw: '{"userId": "a", ' }, undefined],
    ['NotAnObject', { raw: '[1,2]' }, undefined],
    ['MissingType', { body: { userId: 'a', payload: NEW.payload } }, 'type'],
    ['TypeNotString', { body: { userId: 'a', type: 5, payload: NEW.payload } }, 'type'],
    ['TypeWithSpaces', { body: { userId: 'a', type: 'a b', payload: NEW.payload } }, 'type'],
    ['MissingPayload', { body: { userId: 'a', type: NEW.type } }, 'payload'],
    ['PayloadNotObject', { body: { userId: 'a', type: NEW.type, payload: 'x' } }, 'payload'],
    ['NoTarget', { body: { ...NEW } }, 'userId'],
    ['BothTargets', { body: { userId: 'a', userIds: ['b'], ...NEW } }, 'userId'],
    ['EmptyUserId', { body: { userId: '', ...NEW } }, 'userId'],
    ['UserIdsNotArray', { body: { userIds: 'a', ...NEW } }, 'userIds'],
    ['UserIdsBadItem', { body: { userIds: ['a', 7], ...NEW } }, 'userIds[1]'],
    ['InvalidUtf8', { raw: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }, undefined],
    ['IdempotencyKeyEmpty', { body: { userId: 'a', ...NEW, idempotencyKey: '' } }, 'idempotencyKey'],
    ['IdempotencyKeyNotString', { body: { userId: 'a', ...NEW, idempotencyKey: 42 } }, 'idempotencyKey'],
    ['IdempotencyKeyWithSpace', { body: { userId: 'a', ...NEW, idempotencyKey: 'a b' } }, 'idempotencyKey'],
    ['IdempotencyKeyTooLong', { body: { userId: 'a', ...NEW, idempotencyKey: 'k'.repeat(129) } }, 'idempotencyKey'],
    ['IdempotencyKeyWithBrace', { body: { userId: 'a', ...NEW, idempotencyKey: 'X}:m' } }, 'idempotencyKey'],
    ['IdempotencyKeyNotAscii', { body: { userId: 'a', ...NEW, idempotencyKey: 'clé' } }, 'idempotencyKey'],
  ];
  for (const [name, input, field] of cases) {
    test(`Api.${name}_Is400NamingTheField`, async () => {
      const res = await api(server, 'POST', '/api/broadcast', input.body, { raw: input.raw });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(typeof res.body.error, 'string');
      assert.equal(res.body.field, field);
    });
  }

  test('Api.RefusedPublish_DeliversNothing', async () => {
    const client = await connectUser(server, 'a');
    const bad = await post({ userIds: ['a', 42], ...NEW });
    assert.equal(bad.status, 400);
    await post({ userId: 'a', ...STARTED('marker') });
    assert.equal((await client.next()).type, 'sync.started', 'the refused publish delivered nothing');
    await client.close();
  });

  test('Api.BodyTooLarge_Is413', async () => {
    const res = await post({ userId: 'a', type: 'thread.new', payload: { threadId: 'x'.repeat(5000), accountId: 'a' } });
    assert.equal(res.status, 413);
  });

  test('Api.UnknownRoute_Is404', async () => {
    assert.equal((await api(server, 'GET', '/api/nothing')).status, 404);
  });

  test('Api.WrongMethod_Is405', async () => {
    const res = await api(server, 'GET', '/api/broadcast');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
  });

  test('Api.TooManyUsers_Is400', async () => {
    const limited = await startServer({ env: { ZENA_MAX_USERS_PER_PUBLISH: '3' } });
    try {
      const res = await api(limited, 'POST', '/api/broadcast', { userIds: ['a', 'b', 'c', 'd'], ...NEW });
      assert.equal(res.status, 400);
      assert.equal(res.body.field, 'userIds');
    } finally {
      await limited.stop();
    }
  });
});
