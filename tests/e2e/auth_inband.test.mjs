// Tokens out of URLs and tokens that end: the token in Sec-WebSocket-Protocol (the server
// answers with the protocol name only), the token as a first in-band `auth` message within a
// deadline, the connection closed with 1008 at the token's exp unless `auth.refresh` brought a
// fresh one, and no token ever in the server's log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, api, metric, mintToken, sleep, startServer, waitFor } from './harness.mjs';

describe('tokens out of URLs', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_AUTH_TIMEOUT_MS: '500' } }); });
  after(async () => {
    await server.stop();
  });

  test('AuthInband.TokenInSubprotocol_ConnectsAndOnlyTheNameIsEchoed', async () => {
    const token = mintToken({ sub: 'alice' });
    const viaProtocol = new Client(server.wsUrl(), {}, ['zena-realtime', `bearer.${token}`]);
    const welcome = await viaProtocol.next();
    assert.equal(welcome.type, 'connected');
    assert.equal(welcome.payload.userId, 'alice');
    assert.equal(viaProtocol.ws.protocol, 'zena-realtime');
    await viaProtocol.close();
    assert.ok(!server.output().includes(token), 'the token is not in the log');
  });

  test('AuthInband.BadTokenInSubprotocol_Closes1008', async () => {
    const bad = mintToken({ sub: 'alice', secret: 'another-secret-0123456789abcdef0123' });
    const client = new Client(server.wsUrl(), {}, ['zena-realtime', `bearer.${bad}`]);
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason: 'token signature invalid' });
  });

  test('AuthInband.FirstMessageAuth_ConnectsAndReceives', async () => {
    const token = mintToken({ sub: 'bob' });
    const client = new Client(server.wsUrl());
    await client.opened;
    client.send({ type: 'auth', payload: { token } });
    const welcome = await client.next();
    assert.equal(welcome.type, 'connected');
    assert.equal(welcome.payload.userId, 'bob');
    const event = { type: 'thread.new', payload: { threadId: 't1', accountId: 'a1' } };
    assert.deepEqual((await api(server, 'POST', '/api/broadcast', { userId: 'bob', ...event })).body, { delivered: 1 });
    assert.deepEqual(await client.next(), event);
    await client.close();
    assert.ok(!server.output().includes(token), 'the token is not in the log');
  });

  test('AuthInband.FirstMessageNotAuth_Closes1008', async () => {
    const client = new Client(server.wsUrl());
    await client.opened;
    client.send({ type: 'sync.request', payload: {} });
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason: 'authentication required' });
  });

  test('AuthInband.BadTokenInAuth_Closes1008WithTheReason', async () => {
    const client = new Client(server.wsUrl());
    await client.opened;
    client.send({ type: 'auth', payload: { token: mintToken({ sub: 'bob', ttl: -3600 }) } });
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason: 'token expired' });
  });

  test('AuthInband.Silence_Closes1008AtTheDeadline', async () => {
    const client = new Client(server.wsUrl());
    await client.opened;
    const started = Date.now();
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason: 'authentication timeout' });
    assert.ok(Date.now() - started >= 400, 'not before websocket.auth_timeout_ms');
  });
});

describe('tokens that end', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_JWT_LEEWAY_S: '0' } }); });
  after(async () => { await server.stop(); });

  test('AuthExpiry.AtExp_TheConnectionIsClosed1008', async () => {
    const client = new Client(server.wsUrl(mintToken({ sub: 'carol', ttl: 2 })));
    assert.equal((await client.next()).type, 'connected');
    const started = Date.now();
    assert.deepEqual(await client.waitClosed(5000), { code: 1008, reason: 'token expired' });
    assert.ok(Date.now() - started <= 3500, 'closed within about a second of exp');
    assert.equal(await metric(server, 'zena_tokens_expired_total'), 1);
  });

  test('AuthExpiry.Refresh_KeepsTheConnectionPastTheOldExp', async () => {
    const client = new Client(server.wsUrl(mintToken({ sub: 'dave', ttl: 2 })));
    assert.equal((await client.next()).type, 'connected');
    const fresh = mintToken({ sub: 'dave', ttl: 3600 });
    client.send({ type: 'auth.refresh', payload: { token: fresh } });
    await waitFor(async () => (await metric(server, 'zena_tokens_refreshed_total')) === 1, 2000, 'the refresh');
    await sleep(3500);
    client.send({ type: 'ping', payload: {} });
    assert.equal((await client.next()).type, 'pong', 'still open after the first token expired');
    await client.close();
    assert.ok(!server.output().includes(fresh), 'the refreshed token is not in the log');
  });

  test('AuthExpiry.RefreshForAnotherUser_Closes1008', async () => {
    const client = new Client(server.wsUrl(mintToken({ sub: 'erin' })));
    assert.equal((await client.next()).type, 'connected');
    client.send({ type: 'auth.refresh', payload: { token: mintToken({ sub: 'mallory' }) } });
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason: 'token names another user' });
  });
});
