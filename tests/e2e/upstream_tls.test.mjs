// Calls to the backend over https:// (docs/upstream.md#the-http-client): the webhook, the
// subscribe proxy and the JWKS fetch, against real Node https servers on loopback whose
// certificates a throwaway CA made here (openssl CLI) signs. The server trusts that CA through
// upstream.tls_ca_file; another CA, or a certificate for another name, is refused.
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client, connectChannels, connectUser, metric, signature, startServer, subscribe, waitFor } from './harness.mjs';
import { makeCa, makeLeaf } from './test_ca.mjs';

const SECRET = 'upstream-tls-secret-0123456789';
// Client events only, so the counts are the test's: the presence notices go nowhere.
const CLIENT_EVENTS = 'presence.online=none,presence.offline=none,*=webhook';

let dir;
const file = (name) => path.join(dir, name);

// An https server on 127.0.0.1 with `leaf`'s certificate; `respond(request)` → { status, body }.
// It counts the TLS connections made, and the handshakes clients abandoned (a certificate they
// did not trust).
async function httpsReceiver(leaf, respond = () => ({ status: 200 })) {
  const received = [];
  const state = { tlsErrors: 0, connections: 0 };
  const server = createServer(leaf, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const request = { method: req.method, url: req.url, headers: req.headers, body, servername: req.socket.servername };
      received.push(request);
      const answer = respond(request);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body ?? '');
    });
  });
  server.on('tlsClientError', () => { state.tlsErrors += 1; });
  server.on('secureConnection', () => { state.connections += 1; });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    received,
    state,
    url: (p, host = '127.0.0.1') => `https://${host}:${port}${p}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// The client events of a webhook receiver (the presence notices left out).
const clientEvents = (hook) => hook.received.filter((r) => !JSON.parse(r.body).type?.startsWith('presence.'));

let good; // signed by "ca" for 127.0.0.1 and localhost
let wrongName; // signed by "ca" for another name only
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'zena-upstream-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  good = makeLeaf(dir, 'good', 'ca', 'IP:127.0.0.1,DNS:localhost');
  wrongName = makeLeaf(dir, 'wrong-name', 'ca', 'DNS:backend.example');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('UpstreamTls.HttpsWebhook_ReceivesSignedEventsOverOneConnection', async () => {
  const hook = await httpsReceiver(good);
  // By name: the server sends it as SNI and checks it against the certificate.
  const server = await startServer({
    env: { ZENA_WEBHOOK_URL: hook.url('/zena/events', 'localhost'), ZENA_WEBHOOK_SECRET: SECRET, ZENA_UPSTREAM_TLS_CA_FILE: file('ca.pem') },
  });
  try {
    const client = await connectUser(server, 'alice');
    client.send({ type: 'sync.request', payload: {} });
    client.send({ type: 'thread.view', payload: { threadId: 'thread-123' } });
    await waitFor(() => clientEvents(hook).length >= 2, 5000, 'two webhook calls over https');
    const events = clientEvents(hook);
    assert.deepEqual(events.map((r) => JSON.parse(r.body).type), ['sync.request', 'thread.view']);
    for (const r of events) {
      assert.equal(r.headers['x-zena-signature'], signature(r.body, SECRET));
      assert.equal(r.servername, 'localhost', 'SNI names the host');
    }
    assert.equal(hook.state.tlsErrors, 0);
    assert.equal(hook.state.connections, 1, 'both events on one kept-alive TLS connection');
    await client.close();
  } finally {
    await server.stop();
    await hook.close();
  }
});

for (const [name, leaf, ca, why] of [
  ['AnotherCa', () => good, 'other-ca.pem', /certificate not trusted: (unable to get local issuer certificate|self-signed certificate in certificate chain)/],
  ['WrongHostName', () => wrongName, 'ca.pem', /certificate not trusted: IP address mismatch/],
]) {
  test(`UpstreamTls.Webhook${name}_IsRefusedAndCountedAsFailed`, async () => {
    const hook = await httpsReceiver(leaf());
    const server = await startServer({
      env: {
        ZENA_WEBHOOK_URL: hook.url('/zena/events'),
        ZENA_UPSTREAM_TLS_CA_FILE: file(ca),
        ZENA_WEBHOOK_MAX_ATTEMPTS: '2',
        ZENA_WEBHOOK_BACKOFF_MS: '10',
        ZENA_UPSTREAM_ROUTES: CLIENT_EVENTS,
      },
    });
    try {
      const client = await connectUser(server, 'bob');
      client.send({ type: 'sync.request', payload: {} });
      await waitFor(async () => (await metric(server, 'zena_upstream_failed_total{sink="webhook"}')) === 1, 5000, 'given up');
      assert.equal(hook.received.length, 0, 'no request crossed an untrusted connection');
      assert.ok(hook.state.tlsErrors >= 2, `each attempt's handshake was abandoned (${hook.state.tlsErrors})`);
      assert.match(server.output(), new RegExp(`webhook gave up attempts=2 error="tls: ${why.source}`));
      await client.close();
    } finally {
      await server.stop();
      await hook.close();
    }
  });
}

test('UpstreamTls.HttpsSubscribeProxy_IsAskedAndItsAnswerHolds', async () => {
  const proxy = await httpsReceiver(good, ({ body }) => ({ status: JSON.parse(body).channel.startsWith('ok:') ? 200 : 403 }));
  const server = await startServer({
    env: { ZENA_CHANNELS_SUBSCRIBE_PROXY_URL: proxy.url('/zena/subscribe'), ZENA_UPSTREAM_TLS_CA_FILE: file('ca.pem'), ZENA_WEBHOOK_SECRET: SECRET },
  });
  try {
    const client = await connectChannels(server, 'px');
    assert.deepEqual(await subscribe(client, 'no:1'), { type: 'subscribe.error', payload: { channel: 'no:1', reason: 'forbidden' } });
    assert.equal((await subscribe(client, 'ok:1')).type, 'subscribed');
    assert.equal(proxy.received.length, 2);
    assert.equal(proxy.state.connections, 1, 'the second check reused the kept-alive TLS connection');
    assert.equal(proxy.received[0].headers['x-zena-signature'], signature(proxy.received[0].body, SECRET));
    await client.close();
  } finally {
    await server.stop();
    await proxy.close();
  }
});

test('UpstreamTls.SubscribeProxyWithAnotherCa_IsUnavailable', async () => {
  const proxy = await httpsReceiver(good);
  const server = await startServer({
    env: { ZENA_CHANNELS_SUBSCRIBE_PROXY_URL: proxy.url('/zena/subscribe'), ZENA_UPSTREAM_TLS_CA_FILE: file('other-ca.pem') },
  });
  try {
    const client = await connectChannels(server, 'py');
    assert.deepEqual(await subscribe(client, 'ok:1'), { type: 'subscribe.error', payload: { channel: 'ok:1', reason: 'unavailable' } });
    assert.equal(proxy.received.length, 0);
    assert.match(server.output(), /subscribe proxy unavailable .*error="tls: certificate not trusted/);
    await client.close();
  } finally {
    await server.stop();
    await proxy.close();
  }
});

// JWKS over https, trusted through upstream.tls_ca_file (auth.jwks_ca_file unset).
const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
const keyPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
function rs256(sub) {
  const input = `${b64({ alg: 'RS256', kid: 'k1' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${input}.${createSign('SHA256').update(input).sign(keyPair.privateKey).toString('base64url')}`;
}
const jwks = () => ({ status: 200, body: JSON.stringify({ keys: [{ ...keyPair.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] }) });

test('UpstreamTls.JwksOverHttps_TrustsTheUpstreamCa', async () => {
  const endpoint = await httpsReceiver(good, jwks);
  try {
    const server = await startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_URL: endpoint.url('/jwks'), ZENA_UPSTREAM_TLS_CA_FILE: file('ca.pem') } });
    try {
      const client = new Client(server.wsUrl(rs256('alice')));
      assert.equal((await client.next(5000)).type, 'connected');
      client.ws.terminate();
      assert.equal(endpoint.received[0].method, 'GET');
    } finally {
      await server.stop();
    }
  } finally {
    await endpoint.close();
  }
});

test('UpstreamTls.JwksWithWrongHostName_StopsTheServer', async () => {
  const endpoint = await httpsReceiver(wrongName, jwks);
  try {
    await assert.rejects(
      startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_URL: endpoint.url('/jwks'), ZENA_UPSTREAM_TLS_CA_FILE: file('ca.pem') } }),
      /auth.jwks_url .*tls: certificate not trusted: IP address mismatch/,
    );
    assert.equal(endpoint.received.length, 0);
  } finally {
    await endpoint.close();
  }
});

test('UpstreamTls.UnreadableCaFile_StopsTheServer', async () => {
  writeFileSync(file('junk.pem'), 'not a certificate\n');
  await assert.rejects(
    startServer({ env: { ZENA_WEBHOOK_URL: 'https://127.0.0.1:1/events', ZENA_UPSTREAM_TLS_CA_FILE: file('junk.pem') } }),
    /upstream.tls_ca_file: CA file .*junk.pem/,
  );
});
