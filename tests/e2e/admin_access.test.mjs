// Who may use the page at / (docs/admin.md), over plain HTTP and WebSocket: a production server
// without admin.enabled answers 404 for all of it; with it, everything but the page's files
// needs a login; every POST needs this server's Origin and the session's CSRF token; logins are
// bounded; the live view's socket needs the session and this server's Origin too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, WebSocket, httpCall as call, mintToken, startServer, withTimeout } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';

// One HTTP request with any headers (fetch would not send Origin or Cookie as given).

const originOf = (server) => `http://127.0.0.1:${server.port}`;

async function login(server, password = PASSWORD, origin = originOf(server)) {
  const res = await call(server, 'POST', '/admin/api/login', { body: { password }, headers: { origin } });
  const cookie = (res.headers['set-cookie'] ?? [])[0]?.split(';')[0];
  return { ...res, cookie, csrf: res.body.csrf };
}

// Opens /admin/live; resolves the first snapshot that `wanted` accepts (they come once a second,
// each at most 250 ms old), or the refusal's status.
function live(server, headers, wanted = () => true) {
  return withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/admin/live`, { headers });
    ws.on('message', (data) => {
      const snapshot = JSON.parse(data.toString());
      if (!wanted(snapshot)) return;
      ws.terminate();
      resolve({ snapshot });
    });
    ws.on('unexpected-response', (_req, res) => { resolve({ status: res.statusCode }); ws.terminate(); });
    ws.on('error', () => {});
  }), 5000, 'live view');
}

test('AdminAccess.ProductionWithoutAdmin_Answers404Everywhere', async () => {
  const server = await startServer();
  try {
    for (const route of ['/', '/admin/app.js', '/admin/api/session', '/admin/api/stats']) {
      assert.equal((await call(server, 'GET', route)).status, 404, route);
    }
    assert.equal((await call(server, 'POST', '/admin/api/login', { body: { password: PASSWORD }, headers: { origin: originOf(server) } })).status, 404);
    assert.equal((await live(server, { origin: originOf(server) })).status, 404);
  } finally {
    await server.stop();
  }
});

test('AdminAccess.Enabled_LoginCsrfAndOriginGuardEveryChange', async () => {
  const server = await startServer({ env: { ZENA_ADMIN_ENABLED: 'true', ZENA_ADMIN_PASSWORD: PASSWORD } });
  try {
    // The page's files are public (they hold no secret); what they call is not.
    assert.equal((await call(server, 'GET', '/')).status, 200);
    assert.match((await call(server, 'GET', '/')).headers['content-security-policy'], /default-src 'none'/);
    assert.deepEqual((await call(server, 'GET', '/admin/api/session')).body.authenticated, false);
    assert.equal((await call(server, 'GET', '/admin/api/stats')).status, 401);
    assert.equal((await call(server, 'GET', '/admin/api/catalog')).status, 401);

    // Login: another site's Origin, or none, is refused before the password is looked at.
    assert.equal((await login(server, PASSWORD, 'http://evil.example')).status, 403);
    assert.equal((await call(server, 'POST', '/admin/api/login', { body: { password: PASSWORD } })).status, 403);
    const wrong = await login(server, 'guess');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.field, 'password');
    assert.equal(wrong.cookie, undefined);

    const ok = await login(server);
    assert.equal(ok.status, 200);
    const setCookie = ok.headers['set-cookie'][0];
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\//);
    assert.ok(ok.csrf && ok.csrf.length >= 32, 'a CSRF token comes with the session');
    const session = { cookie: ok.cookie };
    assert.equal((await call(server, 'GET', '/admin/api/stats', { headers: session })).body.threads.length, 2);

    // A publish needs the cookie, this server's Origin and the CSRF token, all three.
    const body = { userId: 'u1', type: 'thread.new', payload: { threadId: 't1', accountId: 'a1' } };
    const publish = (headers) => call(server, 'POST', '/admin/api/publish', { body, headers });
    const origin = originOf(server);
    assert.equal((await publish({ ...session, origin })).status, 403, 'no CSRF token');
    assert.equal((await publish({ ...session, origin, 'x-zena-csrf': 'f'.repeat(32) })).status, 403, 'a wrong CSRF token');
    assert.equal((await publish({ ...session, origin: 'http://evil.example', 'x-zena-csrf': ok.csrf })).status, 403, 'another origin');
    assert.equal((await publish({ ...session, 'x-zena-csrf': ok.csrf })).status, 403, 'no origin');
    assert.equal((await publish({ origin, 'x-zena-csrf': ok.csrf })).status, 401, 'no session');
    const client = new Client(server.wsUrl(mintToken({ sub: 'u1' })));
    await client.next();
    const good = await publish({ ...session, origin, 'x-zena-csrf': ok.csrf });
    assert.equal(good.status, 200);
    assert.equal(good.body.delivered, 1);
    assert.equal((await client.next()).type, 'thread.new');
    // The API's own refusal, field and all.
    const refused = await call(server, 'POST', '/admin/api/publish', {
      body: { userId: 'u1', type: 'deal.risk', payload: { dealId: 'd', riskLevel: 'low', riskFlags: [], riskReason: 'r' } },
      headers: { ...session, origin, 'x-zena-csrf': ok.csrf },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.field, 'payload.riskLevel');
    // Outside dev mode the page mints no token.
    assert.equal((await call(server, 'POST', '/admin/api/token', { body: { userId: 'u1' }, headers: { ...session, origin, 'x-zena-csrf': ok.csrf } })).status, 403);

    // The live view: the session and this server's Origin.
    assert.equal((await live(server, { origin })).status, 401);
    assert.equal((await live(server, { ...session, origin: 'http://evil.example' })).status, 403);
    const { snapshot } = await live(server, { ...session, origin }, (s) => s.connections === 1);
    assert.equal(snapshot.users, 1);
    assert.equal(snapshot.threads.reduce((sum, t) => sum + t.connections, 0), 1);
    assert.equal(snapshot.nodes.length, 1);

    // Logging out ends the session for every route.
    assert.equal((await call(server, 'POST', '/admin/api/logout', { headers: { ...session, origin, 'x-zena-csrf': ok.csrf } })).status, 200);
    assert.equal((await call(server, 'GET', '/admin/api/stats', { headers: session })).status, 401);
    assert.equal((await publish({ ...session, origin, 'x-zena-csrf': ok.csrf })).status, 401);
    client.ws.terminate();
  } finally {
    await server.stop();
  }
});

test('AdminAccess.LoginAttempts_Bounded_EvenTheRightPasswordWaits', async () => {
  const server = await startServer({
    env: { ZENA_ADMIN_ENABLED: 'true', ZENA_ADMIN_PASSWORD: PASSWORD, ZENA_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE: '3' },
  });
  try {
    for (let i = 0; i < 3; i += 1) assert.equal((await login(server, `guess-${i}`)).status, 401);
    const blocked = await login(server);
    assert.equal(blocked.status, 429);
    assert.equal(blocked.headers['retry-after'], '60');
    assert.equal(blocked.cookie, undefined);
  } finally {
    await server.stop();
  }
});

test('AdminAccess.EnabledWithoutPassword_RefusesToStart', async () => {
  await assert.rejects(startServer({ env: { ZENA_ADMIN_ENABLED: 'true', ZENA_ADMIN_PASSWORD: 'short' } }),
    /admin\.enabled needs admin\.password/);
});
