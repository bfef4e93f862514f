// The benchmark's load generator (bench/loadgen.cpp) at a small scale against the real server,
// as a correctness check of fan-out under load: every connection gets every message, in order,
// once (fan-out through /api/broadcast-all), an Ask stream to one user arrives whole and in
// order beside it, and targeted publishes (one per request, and in /api/batch requests) each
// reach their one user. The same fan-out runs again with permessage-deflate.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { API_KEY, BINARY, SECRET, startServer } from './harness.mjs';

const LOADGEN = path.join(path.dirname(BINARY), 'zena-loadgen');

async function run(server, args) {
  const { stdout } = await promisify(execFile)(LOADGEN, ['--port', String(server.port), '--secret', SECRET,
    '--api-key', API_KEY, '--server-pid', String(server.child.pid), '--timeout-ms', '60000', ...args]);
  return JSON.parse(stdout);
}

test('Loadgen.FanoutAndTargeted_NoLossNoDuplicateNoReorder', async () => {
  const server = await startServer({ env: { ZENA_LOG_LEVEL: 'info', ZENA_MAX_CONNECTIONS_PER_ADDRESS: '100000' } });
  try {
    const fanout = await run(server, ['--connections', '300', '--messages', '300', '--publishers', '2', '--inflight', '4',
      '--ask-chunks', '200']);
    assert.equal(fanout.welcomed, 300);
    // The fan-out goes on until the Ask stream ends: at least the 300 messages asked for.
    assert.ok(fanout.messages >= 300, `${fanout.messages} fan-out messages`);
    assert.equal(fanout.delivered, fanout.messages * 300);
    assert.deepEqual([fanout.lost, fanout.duplicates, fanout.reorders, fanout.gaps, fanout.closed_early], [0, 0, 0, 0, 0]);
    assert.equal(fanout.ask.delivered, 200);
    assert.equal(fanout.ask.out_of_order, 0);
    const targeted = await run(server, ['--mode', 'targeted', '--connections', '300', '--messages', '3000']);
    assert.equal(targeted.delivered, 3000);
    assert.deepEqual([targeted.lost, targeted.duplicates, targeted.reorders], [0, 0, 0]);
    const batched = await run(server, ['--mode', 'targeted', '--connections', '300', '--messages', '3000', '--batch', '10']);
    assert.equal(batched.delivered, 3000);
    assert.deepEqual([batched.lost, batched.duplicates, batched.reorders], [0, 0, 0]);
  } finally {
    await server.stop();
  }
});

// The broadcast compressed once and sent to every connection that negotiated permessage-deflate:
// the generator insists on the extension and inflates each message before checking it.
test('Loadgen.FanoutWithPermessageDeflate_NoLossNoDuplicateNoReorder', async () => {
  const server = await startServer({
    env: { ZENA_LOG_LEVEL: 'info', ZENA_MAX_CONNECTIONS_PER_ADDRESS: '100000', ZENA_PERMESSAGE_DEFLATE: 'true' },
  });
  try {
    const fanout = await run(server, ['--connections', '200', '--messages', '200', '--publishers', '2', '--inflight', '4',
      '--deflate', '1']);
    assert.equal(fanout.welcomed, 200);
    assert.equal(fanout.delivered, 200 * 200);
    assert.ok(fanout.compressed >= 200 * 200, `${fanout.compressed} compressed messages`);
    assert.deepEqual([fanout.lost, fanout.duplicates, fanout.reorders, fanout.gaps, fanout.closed_early], [0, 0, 0, 0, 0]);
  } finally {
    await server.stop();
  }
});
