// POST /api/batch: many publishes in one request, answered per item, delivered in order; and
// the Ask Zena case: a 1,000-chunk ask.response stream arrives complete and in order while
// another stream interleaves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, connectUser, startServer } from './harness.mjs';

describe('batch', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_MAX_BATCH_ITEMS: '100' } }); });
  after(async () => { await server.stop(); });

  test('Batch.MixedItems_AreAnsweredPerItem', async () => {
    const alice = await connectUser(server, 'alice');
    const bob = await connectUser(server, 'bob');
    const res = await api(server, 'POST', '/api/batch', { items: [
      { userId: 'alice', type: 'thread.new', payload: { threadId: 't1', accountId: 'a' } },
      { userId: 'alice', type: 'thread.new', payload: { threadId: 't2' } },
      { userIds: ['alice', 'bob'], type: 'deal.risk', payload: { dealId: 'd', riskLevel: 'medium', riskFlags: [], riskReason: 'r' } },
      { all: true, type: 'sync.started', payload: { accountId: 'all', provider: 'gmail' } },
    ] });
    assert.equal(res.status, 200);
    assert.equal(res.body.results[0].delivered, 1);
    assert.equal(res.body.results[0].channel, 'user:alice');
    assert.equal(res.body.results[1].status, 400);
    assert.equal(res.body.results[1].field, 'payload.accountId');
    assert.equal(res.body.results[1].event, 'thread.new');
    assert.deepEqual(res.body.results[2], { delivered: 2 });
    assert.deepEqual(res.body.results[3], { delivered: 2 });
    assert.deepEqual((await alice.next()).payload.threadId, 't1');
    assert.equal((await alice.next()).type, 'deal.risk');
    assert.equal((await alice.next()).type, 'sync.started');
    assert.equal((await bob.next()).type, 'deal.risk');
    await Promise.all([alice.close(), bob.close()]);
  });

  test('Batch.TooManyItems_Is400', async () => {
    const items = Array.from({ length: 101 }, () => ({ all: true, type: 'sync.started', payload: { accountId: 'a', provider: 'p' } }));
    const res = await api(server, 'POST', '/api/batch', { items });
    assert.equal(res.status, 400);
    assert.equal(res.body.field, 'items');
  });

  test('AskStream.ThousandChunks_ArriveInOrderWhileAnotherStreamInterleaves', async () => {
    const client = await connectUser(server, 'asker');
    const chunk = (streamId, i) => ({ userId: 'asker', type: 'ask.response',
      payload: { chunk: `${streamId}-${i} `, isComplete: i === 999, streamId } });
    // q1 goes in batches of 100, q2 one request per chunk, both at once.
    const q1 = (async () => {
      for (let start = 0; start < 1000; start += 100) {
        const items = Array.from({ length: 100 }, (_, k) => chunk('q1', start + k));
        const res = await api(server, 'POST', '/api/batch', { items });
        assert.ok(res.body.results.every((r) => r.delivered === 1));
      }
    })();
    const q2 = (async () => {
      for (let i = 0; i < 1000; i += 1) assert.equal((await api(server, 'POST', '/api/broadcast', chunk('q2', i))).body.delivered, 1);
    })();
    const seen = { q1: [], q2: [] };
    const reading = (async () => {
      while (seen.q1.length < 1000 || seen.q2.length < 1000) {
        const m = await client.next(10000);
        seen[m.payload.streamId].push(m.payload);
      }
    })();
    await Promise.all([q1, q2, reading]);
    for (const id of ['q1', 'q2']) {
      assert.deepEqual(seen[id].map((p) => p.chunk), Array.from({ length: 1000 }, (_, i) => `${id}-${i} `), `${id} complete and in order`);
      assert.equal(seen[id].at(-1).isComplete, true);
    }
    await client.close();
  });
});
