// Delivery classes from the catalog, for a connection that is behind: `latest` keeps only the
// newest event per key (sync.progress per accountId), `ephemeral` is dropped, and `ordered`
// events all arrive, in order.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { api, connectUser, metric, startServer } from './harness.mjs';

// Enough ordered bytes to fill the loopback socket buffers of a reader that stopped reading,
// so that what follows waits in the server's own queue.
async function fillBuffers(server, user, megabytes) {
  const chunk = 'f'.repeat(100 * 1024);
  for (let i = 0; i < megabytes * 10; i += 1) {
    const res = await api(server, 'POST', '/api/broadcast',
      { userId: user, type: 'ask.response', payload: { chunk, isComplete: false, streamId: `fill-${i}` } });
    assert.equal(res.body.delivered, 1, 'the filler is queued, not refused');
  }
  return megabytes * 10;
}

async function drain(client, until) {
  const received = [];
  for (;;) {
    const message = await client.next(10000);
    received.push(message);
    if (until(message)) return received;
  }
}

test('Delivery.Latest_ABacklogCollapsesToTheNewestPerKey', async () => {
  const server = await startServer({ env: { ZENA_SEND_QUEUE_MAX_BYTES: String(64 * 1024 * 1024) } });
  try {
    const client = await connectUser(server, 'agent');
    client.ws._socket.pause();
    const fillers = await fillBuffers(server, 'agent', 16);
    for (let i = 1; i <= 500; i += 1) {
      for (const accountId of ['acc-A', 'acc-B']) {
        const res = await api(server, 'POST', '/api/broadcast', {
          userId: 'agent', type: 'sync.progress', payload: { accountId, totalThreads: 500, processedThreads: i },
        });
        assert.equal(res.status, 200);
      }
    }
    await api(server, 'POST', '/api/broadcast', { userId: 'agent', type: 'sync.completed',
      payload: { accountId: 'acc-A', threadsProcessed: 500, success: true } });
    client.ws._socket.resume();

    const received = await drain(client, (m) => m.type === 'sync.completed');
    const fills = received.filter((m) => m.type === 'ask.response').map((m) => m.payload.streamId);
    assert.deepEqual(fills, Array.from({ length: fillers }, (_, i) => `fill-${i}`), 'ordered events all arrive in order');
    const progress = received.filter((m) => m.type === 'sync.progress');
    assert.ok(progress.length < 100, `the backlog collapsed: ${progress.length} of 1000 progress events sent`);
    for (const accountId of ['acc-A', 'acc-B']) {
      const mine = progress.filter((m) => m.payload.accountId === accountId).map((m) => m.payload.processedThreads);
      assert.equal(mine.at(-1), 500, `${accountId}: the newest value arrives`);
      assert.deepEqual(mine, [...mine].sort((a, b) => a - b), `${accountId}: never goes backwards`);
    }
    assert.ok((await metric(server, 'zena_messages_coalesced_total')) > 0);
    await client.close();
  } finally {
    await server.stop();
  }
});

test('Delivery.Ephemeral_IsDroppedWhileBehind', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-delivery-'));
  const catalog = JSON.parse(readFileSync(new URL('../../catalog/events.json', import.meta.url), 'utf8'));
  catalog.server['typing.indicator'] = { delivery: 'ephemeral', payload: { userId: 'string', isTyping: 'boolean' } };
  const file = path.join(dir, 'events.json');
  writeFileSync(file, JSON.stringify(catalog));
  const server = await startServer({ env: { ZENA_CATALOG: file, ZENA_SEND_QUEUE_MAX_BYTES: String(64 * 1024 * 1024) } });
  try {
    const client = await connectUser(server, 'agent');
    // Not behind: an ephemeral event is delivered.
    const typing = { type: 'typing.indicator', payload: { userId: 'colleague', isTyping: true } };
    // Ephemeral: on the channel, with no position (never stored).
    assert.deepEqual((await api(server, 'POST', '/api/broadcast', { userId: 'agent', ...typing })).body, { delivered: 1, channel: 'user:agent' });
    assert.deepEqual(await client.next(), { ...typing, channel: 'user:agent' });

    client.ws._socket.pause();
    await fillBuffers(server, 'agent', 16);
    let dropped = 0;
    for (let i = 0; i < 50; i += 1) {
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'agent', ...typing });
      if (res.body.delivered === 0) dropped += 1;
    }
    assert.ok(dropped > 0, 'dropped while behind');
    await api(server, 'POST', '/api/broadcast', { userId: 'agent', type: 'thread.new', payload: { threadId: 'end', accountId: 'a' } });
    client.ws._socket.resume();
    const received = await drain(client, (m) => m.type === 'thread.new');
    assert.equal(received.filter((m) => m.type === 'typing.indicator').length, 50 - dropped);
    assert.equal(await metric(server, 'zena_messages_dropped_ephemeral_total'), dropped);
    await client.close();
  } finally {
    await server.stop();
  }
});
