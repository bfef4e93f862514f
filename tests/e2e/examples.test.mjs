// The examples (examples/: the seed's client example and server snippets on the SDKs) run as
// real processes against the real server: the server snippets publish, the client example
// prints what the seed's handlers print.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { API_KEY, mintToken, startServer, waitFor } from './harness.mjs';

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

function run(script, args, env) {
  const child = spawn(process.execPath, [path.join(examples, script), ...args], {
    cwd: examples,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return { child, output: () => output, exited: once(child, 'exit') };
}

test('Examples.SeedClientAndServerSnippets_RunOnTheSdks', async () => {
  const server = await startServer();
  const client = run('client.mjs', [], { ZENA_URL: server.wsUrl(), ZENA_TOKEN: mintToken({ sub: 'alice' }) });
  try {
    await waitFor(() => client.output().includes('WebSocket connected'), 5000, 'the client example to connect');
    const publisher = run('server.mjs', ['alice'], { ZENA_URL: server.url('/'), ZENA_API_KEY: API_KEY });
    const [code] = await publisher.exited;
    assert.equal(code, 0, publisher.output());
    assert.match(publisher.output(), /connections of alice: 1, total: 1/);
    await waitFor(() => client.output().includes('Response complete'), 5000, 'the streamed answer');
    const lines = client.output().trim().split('\n');
    assert.deepEqual(lines, [
      'WebSocket connected',
      'New thread: {"threadId":"thread-123","accountId":"account-456"}',
      'Deal at risk: {"dealId":"deal-123","riskLevel":"high","riskFlags":["no-reply-7-days"],"riskReason":"The buyer has not answered in 7 days"}',
      'Response chunk: The ',
      'Response chunk: offer ',
      'Response chunk: expires ',
      'Response chunk: Friday.',
      'Response complete',
    ]);
  } finally {
    client.child.kill('SIGTERM');
    await client.exited;
    await server.stop();
  }
});
