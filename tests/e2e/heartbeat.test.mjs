// The seed's heartbeat: a ping every interval; a connection that has not answered the previous
// ping by the next one is terminated and removed from its user's set.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, api, connectUser, metric, mintToken, sleep, startServer, waitFor } from './harness.mjs';

const INTERVAL = 300;

describe('heartbeat', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_HEARTBEAT_INTERVAL_MS: String(INTERVAL) } }); });
  after(async () => { await server.stop(); });

  test('Heartbeat.Welcome_AnnouncesTheInterval', async () => {
    const client = await connectUser(server, 'alice');
    assert.equal(client.welcome.payload.heartbeatIntervalMs, INTERVAL);
    await client.close();
  });

  test('Heartbeat.AnsweringClient_StaysConnected', async () => {
    const client = await connectUser(server, 'alive');
    await sleep(INTERVAL * 5);
    assert.ok(client.pings >= 3, `pinged ${client.pings} times`);
    assert.equal(client.ws.readyState, client.ws.OPEN);
    const res = await api(server, 'POST', '/api/broadcast', { userId: 'alive', type: 'thread.new', payload: { threadId: 't', accountId: 'a' } });
    assert.equal(res.body.delivered, 1);
    await client.close();
  });

  test('Heartbeat.SilentClient_IsTerminatedWithinTwoIntervals', async () => {
    const silent = new Client(server.wsUrl(mintToken({ sub: 'silent' })), { autoPong: false });
    await silent.next(); // welcome
    const connectedAt = Date.now();
    assert.equal((await api(server, 'GET', '/api/users/silent/connections')).body.connections, 1);
    const { code } = await silent.waitClosed(INTERVAL * 4);
    const elapsed = Date.now() - connectedAt;
    assert.equal(code, 1006, 'terminated without a close frame');
    assert.ok(elapsed <= INTERVAL * 2 + 150, `terminated after ${elapsed} ms`);
    await waitFor(async () => (await api(server, 'GET', '/api/users/silent/connections')).body.connections === 0);
    assert.ok((await metric(server, 'zena_heartbeat_timeouts_total')) >= 1);
  });
});
