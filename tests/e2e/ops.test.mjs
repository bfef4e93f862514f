// What an operator runs before and around the server: --version, check-config (every problem
// at once), log.format = json read line by line as a log shipper would, and X-Forwarded-For
// believed only from server.trusted_proxies.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { API_KEY, BINARY, SECRET, connectUser, mintToken, startServer, waitFor } from './harness.mjs';

const run = promisify(execFile);
const failing = (args, env = {}) =>
  run(BINARY, args, { env: { PATH: process.env.PATH, ...env } }).then(
    () => assert.fail('expected a non-zero exit'),
    (e) => e,
  );

test('Ops.Version_NamesTheProjectVersion', async () => {
  const { stdout } = await run(BINARY, ['--version']);
  assert.match(stdout, /^zena-realtime \d+\.\d+\.\d+( \(git [0-9a-zA-Z.\-]+\))?\n$/);
});

test('Ops.CheckConfig_ListsEveryError_AndExits2', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-check-'));
  const file = path.join(dir, 'bad.toml');
  writeFileSync(file, '[server]\nport = -1\nbogus = 1\n[websocket]\nmax_message_bytes = 1\n[log]\nformat = "xml"\n');
  const e = await failing(['check-config', '--config', file, '--mode', 'production'], { ZENA_THREADS: 'lots' });
  assert.equal(e.code, 2);
  const listed = e.stderr.split('\n').filter((l) => l.startsWith('  - '));
  assert.match(e.stderr, new RegExp(`^zena-realtime: ${listed.length} configuration errors:`));
  for (const part of ['server.port', "unknown option 'server.bogus'", 'websocket.max_message_bytes', 'ZENA_THREADS',
    'log.format must be text or json', 'auth.jwt_secret', 'auth.api_key']) {
    assert.ok(listed.some((l) => l.includes(part)), `${part} is listed:\n${e.stderr}`);
  }
  assert.equal(listed.length, 7, e.stderr);
  // The server itself stops at the same configuration, naming the first problem.
  const started = await failing(['--config', file, '--mode', 'production']);
  assert.equal(started.code, 2);
  assert.match(started.stderr, /bad\.toml/);
});

test('Ops.CheckConfig_ValidFile_IsASummaryAndExit0_AndABadCatalogIsAnError', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-check-'));
  const file = path.join(dir, 'good.toml');
  writeFileSync(file, '[server]\nport = 4321\nmode = "production"\ntrusted_proxies = "10.0.0.0/8"\n[log]\nformat = "json"\n');
  const env = { PATH: process.env.PATH, ZENA_JWT_SECRET: SECRET, ZENA_API_KEY: API_KEY };
  const { stdout } = await run(BINARY, ['check-config', '--config', file], { env });
  assert.match(stdout, /^configuration OK\n/);
  assert.match(stdout, /listen: 0\.0\.0\.0:4321/);
  assert.match(stdout, /mode: production/);
  assert.match(stdout, /trusted proxies: 10\.0\.0\.0\/8/);
  assert.match(stdout, /log: info, json/);
  writeFileSync(path.join(dir, 'events.json'), '{"not": "a catalog"');
  const e = await run(BINARY, ['check-config', '--config', file, '--catalog-path', path.join(dir, 'events.json')], { env })
    .then(() => assert.fail('a broken catalog passed'), (x) => x);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /1 configuration error:/);
});

test('Ops.JsonLogs_EveryLineIsOneObject_WithTheTextLinesFields', async () => {
  const child = spawn(BINARY, ['--host', '127.0.0.1', '--port', '0', '--threads', '1'], {
    env: { PATH: process.env.PATH, ZENA_JWT_SECRET: SECRET, ZENA_API_KEY: API_KEY, ZENA_LOG_FORMAT: 'json', ZENA_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = once(child, 'exit');
  try {
    const listening = await waitFor(() => output.split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .find((o) => o.msg === 'listening'), 10000, 'the listening line');
    assert.equal(listening.host, '127.0.0.1');
    assert.match(listening.port, /^\d+$/);
    assert.equal(listening.level, 'info');
    assert.match(listening.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // A line about what a client sent: the same fields as the text line, as strings.
    const url = `ws://127.0.0.1:${listening.port}/ws?token=${mintToken({ sub: 'alice' })}`;
    const ws = new WebSocket(url);
    ws.on('error', () => {});
    await once(ws, 'open');
    ws.send('{not json "quoted" \\ back');
    const ignored = await waitFor(() => output.split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .find((o) => o.msg === 'client message ignored'), 5000, 'the ignored-message line');
    assert.equal(ignored.user, 'alice');
    assert.equal(ignored.level, 'warning');
    assert.match(ignored.conn, /^\d+$/);
    assert.equal(typeof ignored.error, 'string');
    ws.close();
    await once(ws, 'close');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const lines = output.split('\n').filter(Boolean);
  assert.ok(lines.length >= 5, output);
  for (const line of lines) {
    const o = JSON.parse(line); // throws on any line that is not one JSON object
    assert.equal(typeof o.time, 'string', line);
    assert.equal(typeof o.level, 'string', line);
    assert.equal(typeof o.msg, 'string', line);
  }
  const draining = lines.map((l) => JSON.parse(l)).find((o) => o.msg === 'draining');
  assert.ok(draining, 'the drain is logged');
  assert.equal(draining.connections, '0');
});

// Opens an upgrade with the given headers from `localAddress`; resolves with the status.
function handshake(port, { localAddress = '127.0.0.1', headers = {}, user = 'u' } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${mintToken({ sub: user })}`, { localAddress, headers });
    ws.on('upgrade', () => { resolve({ status: 101, ws }); });
    ws.on('unexpected-response', (req, res) => { resolve({ status: res.statusCode }); req.destroy(); });
    ws.on('error', () => {});
  });
}

test('Ops.ForwardedFor_IsBelievedOnlyFromATrustedProxy', async () => {
  const server = await startServer({ env: { ZENA_MAX_CONNECTIONS_PER_ADDRESS: '1', ZENA_TRUSTED_PROXIES: '127.0.0.1' } });
  const open = [];
  try {
    // From the trusted 127.0.0.1: each forwarded client is counted apart.
    const a = await handshake(server.port, { headers: { 'X-Forwarded-For': '198.51.100.1' } });
    const b = await handshake(server.port, { headers: { 'X-Forwarded-For': '198.51.100.2' } });
    assert.equal(a.status, 101);
    assert.equal(b.status, 101);
    open.push(a.ws, b.ws);
    // A second connection of 198.51.100.1, whatever it puts in front, is over its limit.
    const again = await handshake(server.port, { headers: { 'X-Forwarded-For': '203.0.113.9, 198.51.100.1' } });
    assert.equal(again.status, 429);
    await waitFor(() => /handshake refused reason="too many connections[^\n]*address=198\.51\.100\.1/.test(server.output()),
      3000, 'the refusal names the client');
    // From 127.0.0.2, not trusted: the header is ignored and the peer is the client.
    const c = await handshake(server.port, { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '198.51.100.3' } });
    assert.equal(c.status, 101);
    open.push(c.ws);
    const d = await handshake(server.port, { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '198.51.100.4' } });
    assert.equal(d.status, 429, 'a client cannot claim another address to pass its limit');
  } finally {
    for (const ws of open) ws.terminate();
    await server.stop();
  }
});
