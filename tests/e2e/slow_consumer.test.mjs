// A connection that cannot keep up is closed (4000, slow_consumer) instead of growing memory,
// and the others lose nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, connectUser, metric, startServer, waitFor } from './harness.mjs';

test('SlowConsumer.StalledReader_IsClosedAndOthersGetEverything', async () => {
  const server = await startServer({
    // Slower than the publishing below, so the queue budget, not the missing pongs, ends it.
    env: { ZENA_SEND_QUEUE_MAX_BYTES: String(64 * 1024), ZENA_HEARTBEAT_INTERVAL_MS: '1500', ZENA_CLOSE_TIMEOUT_MS: '1500' },
  });
  try {
    const slow = await connectUser(server, 'slow');
    const fast = await connectUser(server, 'fast');
    slow.ws._socket.pause(); // stops reading: the kernel buffers fill, then the server's queue

    const count = 400;
    const filler = 'x'.repeat(16 * 1024);
    let refusedAt = -1;
    for (let i = 0; i < count; i += 1) {
      const res = await api(server, 'POST', '/api/broadcast', {
        userIds: ['slow', 'fast'], type: 'ask.response', payload: { chunk: filler, isComplete: false, streamId: String(i) },
      });
      assert.equal(res.status, 200);
      if (res.body.delivered === 1 && refusedAt < 0) refusedAt = i;
    }
    assert.ok(refusedAt > 0, 'the slow connection stopped taking messages at some point');

    for (let i = 0; i < count; i += 1) {
      const message = await fast.next(5000);
      assert.equal(message.payload.streamId, String(i), 'the fast connection got every message in order');
    }
    assert.equal(await metric(server, 'zena_slow_consumer_closes_total'), 1);
    // The stalled connection never reads the close frame: it is gone when the close handshake
    // times out (websocket.close_timeout_ms).
    await waitFor(async () => (await api(server, 'GET', '/api/users/slow/connections')).body.connections === 0,
      3500, 'the slow connection removed');
    await fast.close();
  } finally {
    await server.stop();
  }
});

test('SlowConsumer.ReaderThatResumes_SeesTheSlowConsumerClose', async () => {
  const server = await startServer({
    env: { ZENA_SEND_QUEUE_MAX_BYTES: String(64 * 1024), ZENA_HEARTBEAT_INTERVAL_MS: '5000' },
  });
  try {
    const slow = await connectUser(server, 'slow');
    slow.ws._socket.pause();
    const filler = 'y'.repeat(16 * 1024);
    for (let i = 0; i < 400; i += 1) {
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'slow', type: 'ask.response', payload: { chunk: filler, isComplete: false, streamId: String(i) } });
      if (res.body.delivered === 0) break;
    }
    slow.ws._socket.resume();
    const { code, reason } = await slow.waitClosed(5000);
    assert.equal(code, 4000);
    assert.equal(reason, 'send queue full');
    const last = JSON.parse(slow.messages.at(-1));
    assert.deepEqual(last, { type: 'connection.behind', payload: { reason: 'send_queue_full' } },
      'told it fell behind, after what was already on its way and before the close');
  } finally {
    await server.stop();
  }
});
