// HTTP around the WebSocket endpoint: /ws only upgrades, other paths are 404, and the
// health, readiness and metrics endpoints answer.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, mintToken, startServer, waitFor } from './harness.mjs';

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

describe('http expect 100-continue', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('Http.Expect100Continue_IsAnsweredBeforeTheBody', async () => {
    const body = JSON.stringify({ type: 'ask.response', payload: { chunk: 'x'.repeat(2000), isComplete: true } });
    const socket = connect(server.port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => { data += d; });
    socket.write('POST /api/broadcast-all HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer e2e-api-key-0123456789\r\n'
      + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    await waitFor(() => data.includes('100 Continue'), 2000, '100 Continue');
    assert.ok(!data.includes('200 OK'), 'only the interim answer before the body');
    socket.write(body);
    await new Promise((resolve) => socket.on('close', resolve));
    assert.match(data, /HTTP\/1\.1 200 OK[\s\S]*\{"delivered":0\}/);
  });

  test('Http.Expect100Continue_TooLarge_Is413WithoutReadingTheBody', async () => {
    const socket = connect(server.port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => { data += d; });
    socket.write('POST /api/broadcast-all HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer e2e-api-key-0123456789\r\n'
      + 'Content-Type: application/json\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n');
    await waitFor(() => /HTTP\/1\.1 413/.test(data), 2000, '413');
    assert.ok(!data.includes('100 Continue'));
    socket.destroy();
  });
});
