// TLS on the real server, with self-signed certificates made here by the openssl CLI: wss:// and
// the HTTPS API with TLS 1.2+, TLS 1.1 refused, plain HTTP refused on the TLS port, and a
// SIGHUP reload that serves the new certificate to new connections without dropping open ones.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { API_KEY, WebSocket, mintToken, startServer, waitFor } from './harness.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'zena-tls-'));

function makeCert(name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key, cert, pem: readFileSync(cert) };
}

// The certificate the server presents to a new connection.
function peerCert(port, ca, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, ...options }, () => {
      resolve({ cn: socket.getPeerCertificate().subject.CN, protocol: socket.getProtocol() });
      socket.end();
    });
    socket.on('error', reject);
  });
}

function httpsGet(port, ca, route) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: route, ca, headers: { authorization: `Bearer ${API_KEY}` } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('Tls.WssAndHttps_TLS12Plus_ReloadOnSighupKeepsOpenConnections', async () => {
  const first = makeCert('first');
  const second = makeCert('second');
  const live = { key: path.join(dir, 'live.key'), cert: path.join(dir, 'live.crt') };
  execFileSync('cp', [first.key, live.key]);
  execFileSync('cp', [first.cert, live.cert]);
  const server = await startServer({ env: { ZENA_TLS_CERT_FILE: live.cert, ZENA_TLS_KEY_FILE: live.key } });
  const ca = [first.pem, second.pem];
  try {
    assert.deepEqual(await peerCert(server.port, ca), { cn: 'first', protocol: 'TLSv1.3' });
    assert.equal((await peerCert(server.port, ca, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
    await assert.rejects(peerCert(server.port, ca, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'TLS 1.1 is refused');

    // wss:// with a real client, and the API over HTTPS.
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, ['zena-realtime', `bearer.${mintToken({ sub: 'alice' })}`], { ca });
    const messages = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    await waitFor(() => messages.length === 1, 5000, 'the welcome over TLS');
    assert.equal(messages[0].type, 'connected');
    assert.deepEqual((await httpsGet(server.port, ca, '/api/stats')).body.connections, 1);

    // Plain HTTP on the TLS port gets nothing.
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/healthz`));

    // Rotate the files, SIGHUP: new handshakes get the new certificate, the open socket stays.
    renameSync(second.key, live.key);
    renameSync(second.cert, live.cert);
    server.child.kill('SIGHUP');
    await waitFor(() => /tls reloaded/.test(server.output()), 3000, 'the reload');
    assert.equal((await peerCert(server.port, ca)).cn, 'second');
    const publish = await new Promise((resolve, reject) => {
      const body = JSON.stringify({ userId: 'alice', type: 'thread.new', payload: { threadId: 't', accountId: 'a' } });
      const req = request({ host: '127.0.0.1', port: server.port, path: '/api/broadcast', method: 'POST', ca,
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(publish.delivered, 1, 'the connection opened before the reload still receives');
    await waitFor(() => messages.length === 2, 3000, 'the event');
    assert.equal(messages[1].type, 'thread.new');
    ws.close();
  } finally {
    await server.stop();
  }
});

test('Tls.BadFiles_StopTheServerWithAReason', async () => {
  const cert = makeCert('lonely');
  const other = makeCert('other');
  await assert.rejects(startServer({ env: { ZENA_TLS_CERT_FILE: cert.cert, ZENA_TLS_KEY_FILE: other.key } }), /mismatch|does not match/);
  await assert.rejects(startServer({ env: { ZENA_TLS_CERT_FILE: path.join(dir, 'missing.crt'), ZENA_TLS_KEY_FILE: cert.key } }), /tls_cert_file/);
  await assert.rejects(startServer({ env: { ZENA_TLS_CERT_FILE: cert.cert } }), /go together/);
});
