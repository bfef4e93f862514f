// The benchmark's load generator (bench/loadgen.cpp) at a small scale against the real server,
// as a correctness check of fan-out under load: every connection gets every message, in order,
// once (fan-out through /api/broadcast-all), an Ask stream to one user arrives whole and in
// order beside it, and targeted publishes (one per request, and in /api/batch requests) each
// reach their one user. The same fan-out runs again with permessage-deflate. Then the publisher
// shapes of issue 17 (bench/shapes.sh): a delivery-gated window, an open loop stepping its rate,
// the mixed load and bursts, each with every delivery counted once. And the pieces of issue 14's
// cluster benchmark (bench/cluster.sh): generator processes that share one run (one publishes,
// the others only receive), and the Socket.IO protocol against the Socket.IO peer.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { API_KEY, BINARY, SECRET, freePort, startServer } from './harness.mjs';

const LOADGEN = path.join(path.dirname(BINARY), 'zena-loadgen');

async function run(server, args) {
  const { stdout } = await promisify(execFile)(LOADGEN, ['--port', String(server.port), '--secret', SECRET,
    '--api-key', API_KEY, '--server-pid', String(server.child.pid), '--timeout-ms', '60000', ...args]);
  return JSON.parse(stdout);
}
const clean = (r) => assert.deepEqual([r.lost, r.duplicates, r.reorders, r.gaps, r.closed_early], [0, 0, 0, 0, 0]);

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

// The publisher shapes (bench/README.md, "Shapes"), small: each must deliver everything exactly
// once and say what it measured.
test('Loadgen.Shapes_DeliveryGatedOpenLoopMixedAndBursts_EveryDeliveryCountedOnce', async () => {
  const server = await startServer({ env: { ZENA_LOG_LEVEL: 'info', ZENA_MAX_CONNECTIONS_PER_ADDRESS: '100000' } });
  try {
    // A window of 4 publishes, each in flight until all 200 connections have it.
    const gated = await run(server, ['--connections', '200', '--messages', '100', '--publishers', '1',
      '--inflight', '4', '--gate', 'delivery']);
    assert.equal(gated.shape, 'window');
    assert.equal(gated.gate, 'delivery');
    assert.match(gated.in_flight, /until every target connection received it/);
    assert.equal(gated.delivered, 100 * 200);
    clean(gated);
    // Targeted, delivery-gated: each publish in flight until its one user has it.
    const targeted = await run(server, ['--mode', 'targeted', '--connections', '200', '--messages', '2000',
      '--publishers', '2', '--inflight', '4', '--gate', 'delivery']);
    assert.equal(targeted.delivered, 2000);
    clean(targeted);
    // Open loop: two steps of Poisson arrivals; each step accounts for its own deliveries.
    const open = await run(server, ['--connections', '200', '--rates', '20,40', '--step-ms', '1000',
      '--publishers', '2']);
    assert.equal(open.shape, 'open');
    assert.equal(open.steps.length, 2);
    for (const step of open.steps) {
      assert.ok(step.messages > 0, `step at ${step.rate}/s sent nothing`);
      assert.equal(step.delivered, step.messages * 200);
      assert.equal(step.lost, 0);
      assert.ok(step.latency_us.p50 <= step.latency_us.p99 && step.latency_us.p99 <= step.latency_us.max);
    }
    assert.equal(open.messages, open.steps[0].messages + open.steps[1].messages);
    assert.equal(open.delivered, open.messages * 200);
    assert.ok([0, 20, 40].includes(open.held_rate), `held_rate ${open.held_rate}`);
    clean(open);
    // Mixed: the fan-out at 10/s with targeted publishes at 100/s beside it, reported apart.
    const mixed = await run(server, ['--connections', '200', '--rates', '10', '--targeted-rate', '100',
      '--step-ms', '1500', '--publishers', '2']);
    assert.equal(mixed.shape, 'mixed');
    assert.ok(mixed.targeted.messages > 50, `${mixed.targeted.messages} targeted publishes`);
    assert.equal(mixed.targeted.delivered, mixed.targeted.messages);
    assert.equal(mixed.delivered, mixed.messages * 200 + mixed.targeted.messages);
    clean(mixed);
    // Bursts: 3 bursts of 20 publishes due at once, 300 ms apart.
    const burst = await run(server, ['--connections', '200', '--burst', '20', '--burst-every-ms', '300',
      '--bursts', '3', '--publishers', '2']);
    assert.equal(burst.shape, 'burst');
    assert.equal(burst.messages, 60);
    assert.equal(burst.delivered, 60 * 200);
    assert.equal(burst.burst.completed, 3);
    assert.deepEqual(burst.steps.map((s) => s.messages), [20, 20, 20]);
    clean(burst);
  } finally {
    await server.stop();
  }
});

// A shape asked for wrongly is refused at once with a clear message (exit 2), not run half-way.
test('Loadgen.ShapeFlags_Contradictory_RefusedWithMessage', async () => {
  const refused = async (args, message) => {
    await assert.rejects(promisify(execFile)(LOADGEN, ['--secret', SECRET, '--api-key', API_KEY, ...args]),
      (err) => err.code === 2 && message.test(err.stderr));
  };
  await refused(['--rates', '10,abc'], /--rates is a list of rates/);
  await refused(['--rates', '10', '--burst', '5'], /one schedule at a time/);
  await refused(['--gate', 'sometimes'], /--gate is answer or delivery/);
  await refused(['--mode', 'targeted', '--gate', 'delivery', '--batch', '10'], /no --batch/);
  await refused(['--targeted-rate', '100'], /--targeted-rate goes beside an open-loop fan-out/);
  await refused(['--protocol', 'socketio', '--mode', 'channel'], /--protocol socketio is for --mode fanout or targeted/);
  await refused(['--cluster', os.tmpdir(), '--publishers', '2'], /--cluster is for a --mode fanout window/);
});

// bench/cluster.sh's split, small, on one server: two generator processes share a directory; one
// publishes, the other only receives; each message is in flight until the connections of both
// have it (--gate delivery), and each process checks its own deliveries.
test('Loadgen.ClusterSplit_PublisherAndReceiver_EveryConnectionOfBothGetsEveryMessageOnce', async () => {
  const server = await startServer({ env: { ZENA_LOG_LEVEL: 'info', ZENA_MAX_CONNECTIONS_PER_ADDRESS: '100000' } });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zena-loadgen-cluster-'));
  try {
    // No script reads the counters in between here: start at once, and end at once.
    await writeFile(path.join(dir, 'go'), '');
    await writeFile(path.join(dir, 'end'), '');
    const common = ['--connections', '150', '--messages', '40', '--publishers', '1', '--inflight', '4',
      '--gate', 'delivery', '--cluster', dir, '--cluster-processes', '2'];
    const [publisher, receiver] = await Promise.all([
      run(server, [...common, '--cluster-role', 'publish']),
      run(server, [...common, '--cluster-role', 'receive', '--first-user', '150']),
    ]);
    assert.ok(existsSync(path.join(dir, 'ready')), 'the publisher said when both were ready');
    for (const r of [publisher, receiver]) {
      assert.equal(r.welcomed, 150);
      assert.equal(r.messages, 40);
      assert.equal(r.delivered, 40 * 150);
      clean(r);
      assert.equal(r.cluster.targets, 300, 'every connection of both processes');
      assert.equal(r.cluster.latency_hist.reduce((n, [, count]) => n + count, 0), 40 * 150);
    }
    assert.equal(publisher.cluster.role, 'publish');
    assert.equal(receiver.cluster.role, 'receive');
    assert.equal(receiver.cluster.t_start_ns, publisher.cluster.t_start_ns, 'one start, on one clock');
    assert.match(publisher.in_flight, /every generator process/);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

// --protocol socketio against bench/peers/sio_server.mjs alone (no Redis): Engine.IO's open, the
// CONNECT with the token, pings answered, events as 42[...] checked like any delivery. Needs the
// peers installed (npm ci in bench/peers: scripts/install-deps.sh --test does it); missing, it fails.
test('Loadgen.SocketIoProtocol_AgainstTheSocketIoPeer_NoLossNoDuplicateNoReorder', async () => {
  const peers = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bench/peers');
  assert.ok(existsSync(path.join(peers, 'node_modules/socket.io')),
    'bench/peers is not installed: run npm ci in bench/peers (scripts/install-deps.sh --test does)');
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(peers, 'sio_server.mjs')], {
    env: { PATH: process.env.PATH, PORT: String(port), JWT_SECRET: SECRET, API_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Socket.IO peer did not start:\n${output}`)), 10000);
    const check = (d) => {
      output += d;
      if (output.includes('listening')) { clearTimeout(timer); resolve(); }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
  });
  const server = { port, child };
  try {
    const fanout = await run(server, ['--protocol', 'socketio', '--connections', '200', '--messages', '50',
      '--publishers', '1', '--inflight', '4', '--gate', 'delivery']);
    assert.equal(fanout.protocol, 'socketio');
    assert.equal(fanout.welcomed, 200);
    assert.equal(fanout.delivered, 50 * 200);
    clean(fanout);
    const targeted = await run(server, ['--protocol', 'socketio', '--mode', 'targeted', '--connections', '200',
      '--messages', '500', '--publishers', '2', '--inflight', '4', '--gate', 'delivery']);
    assert.equal(targeted.delivered, 500);
    clean(targeted);
  } finally {
    child.kill('SIGTERM');
  }
});
