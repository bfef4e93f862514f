// HTTP around the WebSocket endpoint: /ws only upgrades, other paths are 404, and the
// health, readiness and metrics endpoints answer.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, mintToken, startServer } from './harness.mjs';

describe('http routes', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('Http.PlainGetOnWs_Is426WithUpgradeHeaders', async () => {
    const res = await fetch(server.url('/ws'));
    assert.equal(res.status, 426);
    assert.equal(res.headers.get('upgrade'), 'websocket');
    assert.match(res.headers.get('connection'), /upgrade/i);
    assert.equal(res.headers.get('sec-websocket-version'), '13');
  });

  test('Http.OtherPath_Is404', async () => {
    assert.equal((await fetch(server.url('/nope'))).status, 404);
  });

  test('Http.UpgradeOnOtherPath_IsRefused', async () => {
    const client = new Client(`ws://127.0.0.1:${server.port}/socket?token=${mintToken()}`);
    const error = await new Promise((resolve) => client.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode)));
    assert.equal(error, 404);
  });

  test('Http.Health_Ready_Metrics', async () => {
    assert.deepEqual(await (await fetch(server.url('/healthz'))).json(), { status: 'ok' });
    assert.deepEqual(await (await fetch(server.url('/readyz'))).json(), { status: 'ready' });
    const metrics = await fetch(server.url('/metrics'));
    assert.match(metrics.headers.get('content-type'), /text\/plain/);
    const text = await metrics.text();
    for (const name of ['zena_connections', 'zena_users', 'zena_messages_delivered_total', 'zena_auth_failures_total']) {
      assert.match(text, new RegExp(`^${name} \\d+$`, 'm'));
    }
  });

  test('Http.OversizedHead_Is431', async () => {
    const res = await fetch(server.url('/healthz'), { headers: { 'x-big': 'y'.repeat(20000) } });
    assert.equal(res.status, 431);
  });

  test('Http.Garbage_IsAnswered400AndClosed', async () => {
    const socket = connect(server.port, '127.0.0.1');
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    const reply = await new Promise((resolve) => {
      let data = '';
      socket.on('data', (d) => { data += d; });
      socket.on('close', () => resolve(data));
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
  });

  test('Http.KeepAlive_ServesSeveralRequests', async () => {
    for (let i = 0; i < 5; i += 1) assert.equal((await fetch(server.url('/healthz'))).status, 200);
  });
});
