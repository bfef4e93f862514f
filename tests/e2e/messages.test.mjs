// Client -> server events: the seed's three are accepted and counted; invalid JSON, unknown
// types and bad payloads are logged and ignored, and the connection keeps working.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, connectUser, metric, sleep, startServer, waitFor } from './harness.mjs';

describe('client messages', () => {
  let server;
  // Enough log lines a second to see each refusal; the flood test below checks the limit.
  before(async () => { server = await startServer({ env: { ZENA_LOG_INVALID_MESSAGE_PER_SECOND: '1000' } }); });
  after(async () => { await server.stop(); });

  test('Messages.SeedEvents_AreAcceptedAndCounted', async () => {
    const client = await connectUser(server, 'alice');
    const before = await metric(server, 'zena_client_messages_total');
    client.send({ type: 'sync.request', payload: {} });
    client.send({ type: 'thread.view', payload: { threadId: 'thread-123' } });
    client.send({ type: 'typing.start', payload: {} });
    await waitFor(async () => (await metric(server, 'zena_client_messages_total')) === before + 3, 3000, 'three counted');
    await waitFor(() => server.output().includes('client event') && server.output().includes('type=thread.view'));
    await client.close();
  });

  test('Messages.Invalid_AreIgnoredAndTheConnectionStays', async () => {
    const client = await connectUser(server, 'bob');
    const before = await metric(server, 'zena_client_messages_invalid_total');
    const bad = [
      '{not json', '[]', '"text"', '{}', '{"type": 5}', '{"type":"no.such.event","payload":{}}',
      '{"type":"thread.view","payload":{}}', '{"type":"thread.view","payload":{"threadId":7}}',
      '{"type":"sync.request","payload":"x"}', Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'),
    ];
    for (const text of bad) client.send(text);
    await waitFor(async () => (await metric(server, 'zena_client_messages_invalid_total')) === before + bad.length,
      3000, 'all invalid messages counted');
    // Still connected, still delivered to.
    const res = await api(server, 'POST', '/api/broadcast', { userId: 'bob', type: 'thread.new', payload: { threadId: 't', accountId: 'a' } });
    assert.equal(res.body.delivered, 1);
    assert.equal((await client.next()).type, 'thread.new');
    assert.ok(server.output().includes('error=unknown_type'));
    assert.ok(server.output().includes('field=payload.threadId'));
    await client.close();
  });

  test('Messages.MissingPayload_ReadsAsEmpty', async () => {
    const client = await connectUser(server, 'carol');
    const before = await metric(server, 'zena_client_messages_total');
    client.send({ type: 'sync.request' });
    await waitFor(async () => (await metric(server, 'zena_client_messages_total')) === before + 1);
    await client.close();
  });

  test('Messages.Flood_DoesNotFloodTheLog', async () => {
    const server = await startServer({ env: { ZENA_LOG_INVALID_MESSAGE_PER_SECOND: '5', ZENA_THREADS: '1' } });
    const client = await connectUser(server, 'flood');
    const lines = () => server.output().split('\n').filter((l) => l.includes('client message ignored') && l.includes('user=flood')).length;
    const before = await metric(server, 'zena_client_messages_invalid_total');
    for (let i = 0; i < 2000; i += 1) client.send('{bad');
    await waitFor(async () => (await metric(server, 'zena_client_messages_invalid_total')) === before + 2000, 5000);
    assert.ok(lines() <= 20, `at most a burst was logged, got ${lines()}`);
    await sleep(1100);
    client.send('{bad');
    await waitFor(() => /user=flood.*suppressed=[1-9]\d*/.test(server.output()), 2000, 'the suppressed count');
    await client.close();
    await server.stop();
  });

  test('Messages.TooLarge_ClosesWith1009', async () => {
    const small = await startServer({ env: { ZENA_MAX_MESSAGE_BYTES: '1024' } });
    try {
      const client = await connectUser(small, 'big');
      client.send({ type: 'thread.view', payload: { threadId: 'x'.repeat(2000) } });
      assert.equal((await client.waitClosed()).code, 1009);
    } finally {
      await small.stop();
    }
  });
});
