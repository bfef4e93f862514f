// The command line: --help, configuration precedence and checks, dev mode and `token`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BINARY, Client, api, startServer } from './harness.mjs';

const run = promisify(execFile);
const runExpectingFailure = (args, env = {}) =>
  run(BINARY, args, { env: { PATH: process.env.PATH, ...env } }).then(
    () => assert.fail('expected a non-zero exit'),
    (e) => e,
  );

test('Cli.Help_ExplainsEveryEnvironmentVariable', async () => {
  const { stdout } = await run(BINARY, ['--help']);
  for (const name of ['ZENA_PORT', 'ZENA_JWT_SECRET', 'ZENA_API_KEY', 'ZENA_HEARTBEAT_INTERVAL_MS', '--config']) {
    assert.ok(stdout.includes(name), `--help mentions ${name}`);
  }
});

test('Cli.ConfigDocs_MatchDocsFile', async () => {
  const { stdout } = await run(BINARY, ['config-docs']);
  const file = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(file, stdout, 'docs/configuration.md is regenerated with `zena-realtime config-docs`');
});

test('Cli.BadValue_FailsAtStartNamingTheOption', async () => {
  const e = await runExpectingFailure(['--port', 'abc'], { ZENA_JWT_SECRET: 'x'.repeat(32), ZENA_API_KEY: 'k'.repeat(16) });
  assert.equal(e.code, 2);
  assert.match(e.stderr, /--port.*whole number/);
  const e2 = await runExpectingFailure([], { ZENA_HEARTBEAT_INTERVAL_MS: '5', ZENA_MODE: 'dev' });
  assert.match(e2.stderr, /ZENA_HEARTBEAT_INTERVAL_MS.*out of range/);
  const e3 = await runExpectingFailure(['--no-such-flag', '1']);
  assert.match(e3.stderr, /unknown option --no-such-flag/);
});

test('Cli.Production_WithoutSecret_RefusesToStart', async () => {
  const e = await runExpectingFailure(['--mode', 'production']);
  assert.match(e.stderr, /jwt_secret.*required/);
  const e2 = await runExpectingFailure([], { ZENA_API_KEY: 'k'.repeat(16) });
  assert.match(e2.stderr, /jwt_secret.*required/);
  const e3 = await runExpectingFailure([], { ZENA_JWT_SECRET: 'short', ZENA_API_KEY: 'k'.repeat(16) });
  assert.match(e3.stderr, /at least 32/);
});

test('Cli.ConfigFile_IsOverriddenByEnvironmentThenFlags', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-cli-'));
  const file = path.join(dir, 'zena.toml');
  writeFileSync(file, '[websocket]\nheartbeat_interval_ms = 1111\nmax_message_bytes = 2048\n[log]\nlevel = "debug"\n');
  const server = await startServer({
    args: ['--config', file, '--max-message-bytes', '4096'],
    env: { ZENA_MAX_MESSAGE_BYTES: '3000' },
  });
  try {
    const { body } = await api(server, 'GET', '/api/stats');
    assert.equal(body.connections, 0);
    const client = new Client(server.wsUrl((await import('./harness.mjs')).mintToken()));
    const welcome = await client.next();
    assert.equal(welcome.payload.heartbeatIntervalMs, 1111, 'from the file');
    client.send(JSON.stringify({ type: 'thread.view', payload: { threadId: 'x'.repeat(3500) } }));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(client.ws.readyState, client.ws.OPEN, 'flag (4096) beats env (3000) and file (2048)');
    await client.close();
  } finally {
    await server.stop();
  }
  writeFileSync(file, '[websocket]\nheartbeat_intervall_ms = 5\n');
  const e = await runExpectingFailure(['--config', file]);
  assert.match(e.stderr, /unknown option 'websocket.heartbeat_intervall_ms'/);
});

test('Cli.DevMode_GeneratesCredentialsAndTokenCommandUsesThem', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-dev-'));
  const state = path.join(dir, 'dev.toml');
  const server = await startServer({ env: { ZENA_JWT_SECRET: '', ZENA_API_KEY: '', ZENA_DEV_STATE_FILE: state } });
  try {
    assert.match(server.output(), /DEV MODE/);
    assert.equal(statSync(state).mode & 0o777, 0o600, 'dev credentials are private');
    const apiKey = readFileSync(state, 'utf8').match(/api_key = "([^"]+)"/)[1];
    assert.ok(server.output().includes(apiKey), 'the API key is printed for the walk-through');
    const { stdout } = await run(BINARY, ['token', '--user', 'alice'], {
      env: { PATH: process.env.PATH, ZENA_DEV_STATE_FILE: state },
    });
    const client = new Client(server.wsUrl(stdout.trim()));
    const welcome = await client.next();
    assert.equal(welcome.payload.userId, 'alice');
    const res = await api(server, 'POST', '/api/broadcast',
      { userId: 'alice', type: 'thread.new', payload: { threadId: 't1', accountId: 'a1' } }, { key: apiKey });
    assert.equal(res.body.delivered, 1);
    assert.deepEqual(await client.nextSeed(), { type: 'thread.new', payload: { threadId: 't1', accountId: 'a1' } });
    await client.close();
  } finally {
    await server.stop();
  }
});

test('Cli.Codes_PrintsTheCloseCodeTable', async () => {
  const { stdout } = await run(BINARY, ['codes']);
  const codes = JSON.parse(stdout);
  const byCode = Object.fromEntries(codes.map((c) => [c.code, c]));
  assert.equal(byCode[1008].name, 'policy_violation');
  assert.equal(byCode[1001].reconnect, true);
  assert.equal(byCode[4000].name, 'slow_consumer');
  assert.equal(byCode[4001].name, 'disconnected');
});

test('Cli.SampleConfig_LoadsAsShipped', async () => {
  const sample = new URL('../../config/zena-realtime.toml', import.meta.url).pathname;
  const server = await startServer({ args: ['--config', sample] });
  try {
    assert.equal((await api(server, 'GET', '/api/stats')).status, 200);
  } finally {
    await server.stop();
  }
});
