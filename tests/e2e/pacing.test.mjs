// Publisher pacing (net::worker, docs/architecture.md "The turn"): once a turn has queued
// k_pace_frames (16) frames per connection it is about to write, a publish's answer waits until
// those frames are written. Nothing is lost or reordered by the wait, and below the threshold
// answers are not held. One event-loop thread, so that the publisher's session and the
// connection it publishes to share one turn.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, connectUser, metric, startServer } from './harness.mjs';

const PACED = 'zena_api_answers_paced_total';

function items(userId, from, count) {
  return Array.from({ length: count }, (_, i) => ({
    userId, type: 'thread.new', payload: { threadId: String(from + i), accountId: 'a' },
  }));
}

test('Pacing.BatchOfTwentyToOneConnection_IsAnsweredAfterItsFlush', async () => {
  const server = await startServer({ env: { ZENA_THREADS: '1' } });
  try {
    const alice = await connectUser(server, 'alice');
    assert.equal(await metric(server, PACED), 0);

    // Fifteen frames for alice's one connection: under the threshold, answered at once.
    let res = await api(server, 'POST', '/api/batch', { items: items('alice', 0, 15) });
    assert.equal(res.status, 200);
    assert.equal(await metric(server, PACED), 0);

    // Twenty: the turn's batch holds 20 frames for one connection, so the answer is paced.
    res = await api(server, 'POST', '/api/batch', { items: items('alice', 15, 20) });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.results.map((r) => [r.delivered, r.seq]), Array.from({ length: 20 }, (_, i) => [1, 16 + i]));
    assert.equal(await metric(server, PACED), 1);

    for (let i = 0; i < 35; i += 1) {
      assert.equal((await alice.next(2000)).payload.threadId, String(i));
    }
    await alice.close();
  } finally {
    await server.stop();
  }
});
