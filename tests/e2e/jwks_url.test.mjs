// Keys from a JWKS URL, with real HTTP and HTTPS servers here: the keys are fetched at start
// (no keys, no start), refreshed on a timer so a rotated key works and a removed one stops
// working, a failed refresh keeps the keys in use, and https is verified against a given CA.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Client, startServer, waitFor } from './harness.mjs';

const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
function rs256(kid, key, sub) {
  const input = `${b64({ alg: 'RS256', kid })}.${b64({ sub, exp: now() + 600 })}`;
  return `${input}.${createSign('SHA256').update(input).sign(key).toString('base64url')}`;
}
const keyA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keyB = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (pair, kid) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' });

// A JWKS endpoint whose answer the test changes; `fail` makes it answer 500.
async function jwksServer(make = createServer, options) {
  const state = { keys: [jwk(keyA, 'a')], fail: false, hits: 0 };
  const handler = (req, res) => {
    state.hits += 1;
    if (state.fail) { res.writeHead(500); return res.end(); }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  };
  const server = options ? make(options, handler) : make(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { state, port: server.address().port, close: () => server.close() };
}

async function outcome(server, token) {
  const client = new Client(server.wsUrl(token));
  const first = await Promise.race([client.next().then((m) => m.type), client.waitClosed().then((c) => c.reason)]);
  client.ws.terminate();
  return first;
}

test('JwksUrl.RotatedKeysAreFetched_FailedRefreshKeepsTheKeys', async () => {
  const jwks = await jwksServer();
  const server = await startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_URL: `http://127.0.0.1:${jwks.port}/.well-known/jwks.json`, ZENA_JWKS_REFRESH_S: '1' } });
  try {
    assert.equal(await outcome(server, rs256('a', keyA.privateKey, 'alice')), 'connected');
    assert.equal(await outcome(server, rs256('b', keyB.privateKey, 'bob')), 'token key unknown');
    jwks.state.keys = [jwk(keyB, 'b')]; // rotation: a out, b in
    await waitFor(async () => (await outcome(server, rs256('b', keyB.privateKey, 'bob'))) === 'connected', 5000, 'the new key');
    assert.equal(await outcome(server, rs256('a', keyA.privateKey, 'alice')), 'token key unknown');
    jwks.state.fail = true;
    const hits = jwks.state.hits;
    await waitFor(() => jwks.state.hits >= hits + 2, 5000, 'failed refreshes');
    assert.match(server.output(), /jwks refresh failed, keeping the keys in use .*status 500/);
    assert.equal(await outcome(server, rs256('b', keyB.privateKey, 'bob')), 'connected', 'the keys in use stay');
  } finally {
    await server.stop();
    jwks.close();
  }
});

test('JwksUrl.Https_IsVerifiedAgainstTheGivenCa', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-jwks-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
  const jwks = await jwksServer(createHttpsServer, { key: readFileSync(path.join(dir, 'k.pem')), cert: readFileSync(path.join(dir, 'c.pem')) });
  const url = `https://127.0.0.1:${jwks.port}/jwks`;
  try {
    const server = await startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_URL: url, ZENA_JWKS_CA_FILE: path.join(dir, 'c.pem') } });
    assert.equal(await outcome(server, rs256('a', keyA.privateKey, 'alice')), 'connected');
    await server.stop();
    // Without the CA the certificate is not trusted: no keys, no start.
    await assert.rejects(startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_URL: url } }), /auth.jwks_url .*tls/);
  } finally {
    jwks.close();
  }
});

test('JwksUrl.Unreachable_StopsTheServer', async () => {
  await assert.rejects(startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_URL: 'http://127.0.0.1:1/jwks' } }), /auth.jwks_url .*connect/);
});
