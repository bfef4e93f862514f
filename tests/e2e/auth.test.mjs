// Connection flow, steps 1-3 of the seed: the token is checked, and every bad token is closed
// with 1008 and a short reason after the upgrade completes, with nothing else sent first.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, SECRET, api, mintToken, startServer } from './harness.mjs';

describe('authentication', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_AUTH_TIMEOUT_MS: '300' } }); });
  after(async () => { await server.stop(); });

  async function expectRefused(url, reasonPattern, options) {
    const client = new Client(url, options);
    await client.opened; // the upgrade completes first
    const { code, reason } = await client.waitClosed();
    assert.equal(code, 1008);
    assert.match(reason, reasonPattern);
    assert.deepEqual(client.messages, [], 'no message before the close');
  }

  // No token in the handshake: 1008 at once, unless websocket.inband_auth is on
  // (auth_inband.test.mjs).
  test('Auth.MissingToken_Closes1008', () => expectRefused(server.wsUrl(), /^token missing$/));
  test('Auth.EmptyToken_Closes1008', () => expectRefused(server.wsUrl(''), /^token missing$/));
  test('Auth.Garbage_Closes1008', () => expectRefused(server.wsUrl('not-a-jwt'), /malformed/));
  test('Auth.BadSignature_Closes1008', () =>
    expectRefused(server.wsUrl(mintToken({ secret: 'another-secret-0123456789abcdef0123' })), /signature/));
  test('Auth.Expired_Closes1008', () => expectRefused(server.wsUrl(mintToken({ ttl: -3600 })), /expired/));
  test('Auth.NotYetValid_Closes1008', () =>
    expectRefused(server.wsUrl(mintToken({ claims: { nbf: Math.floor(Date.now() / 1000) + 3600 } })), /not yet/));
  test('Auth.WrongAlgorithm_Closes1008', () =>
    expectRefused(server.wsUrl(mintToken({ alg: 'HS512' })), /algorithm/));
  test('Auth.AlgNone_Closes1008', () => {
    const unsigned = mintToken({ header: { alg: 'none' } }).split('.').slice(0, 2).join('.') + '.';
    return expectRefused(server.wsUrl(unsigned), /algorithm/);
  });
  test('Auth.NoSubject_Closes1008', () => expectRefused(server.wsUrl(mintToken({ sub: null })), /no user/));
  test('Auth.BadTokenInHeader_Closes1008', () =>
    expectRefused(server.wsUrl(), /signature/, {
      headers: { authorization: `Bearer ${mintToken({ secret: 'x'.repeat(40) })}` },
    }));

  test('Auth.QueryToken_Welcomes', async () => {
    const client = new Client(server.wsUrl(mintToken({ sub: 'alice' })));
    const welcome = await client.next();
    assert.equal(welcome.type, 'connected');
    assert.equal(welcome.payload.userId, 'alice');
    await client.close();
  });

  test('Auth.BearerHeader_Welcomes', async () => {
    const client = new Client(server.wsUrl(), { headers: { authorization: `Bearer ${mintToken({ sub: 'carol' })}` } });
    const welcome = await client.next();
    assert.equal(welcome.payload.userId, 'carol');
    await client.close();
  });

  test('Auth.RefusedConnections_AreNotCounted', async () => {
    await expectRefused(server.wsUrl(mintToken({ ttl: -100 })), /expired/);
    const stats = await api(server, 'GET', '/api/stats');
    assert.equal(stats.body.connections, 0);
  });

  test('Auth.Logs_NeverContainTheToken', async () => {
    const token = mintToken({ sub: 'dave' });
    const bad = mintToken({ sub: 'eve', secret: 'y'.repeat(40) });
    for (const t of [token, bad]) {
      const client = new Client(server.wsUrl(t));
      await client.opened;
      await client.close();
    }
    const out = server.output();
    assert.ok(out.includes('/ws?<redacted>'), 'request lines are logged with the query redacted');
    for (const t of [token, bad]) {
      for (const part of t.split('.')) assert.ok(!out.includes(part), 'no part of a token is logged');
    }
    assert.ok(!out.includes(SECRET));
  });
});

describe('authentication with issuer and audience', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { ZENA_JWT_ISSUER: 'zena-backend', ZENA_JWT_AUDIENCE: 'realtime' } });
  });
  after(async () => { await server.stop(); });

  test('Auth.IssuerAndAudienceMatch_Welcomes', async () => {
    const client = new Client(server.wsUrl(mintToken({ claims: { iss: 'zena-backend', aud: ['x', 'realtime'] } })));
    assert.equal((await client.next()).type, 'connected');
    await client.close();
  });

  test('Auth.WrongIssuer_Closes1008', async () => {
    const client = new Client(server.wsUrl(mintToken({ claims: { iss: 'someone-else', aud: 'realtime' } })));
    const { code, reason } = await client.waitClosed();
    assert.equal(code, 1008);
    assert.match(reason, /issuer/);
  });

  test('Auth.WrongAudience_Closes1008', async () => {
    const client = new Client(server.wsUrl(mintToken({ claims: { iss: 'zena-backend', aud: 'other' } })));
    const { code, reason } = await client.waitClosed();
    assert.equal(code, 1008);
    assert.match(reason, /audience/);
  });
});
