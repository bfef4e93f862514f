// How the event loops write (server.io_uring): through io_uring by default, 64 connections per
// system call, or one call per connection when turned off or refused by the kernel. Either way
// the start log says which, and every connection gets every frame, in order, large frames (which
// go as iovecs of their own) among small ones (which are copied into one buffer).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, connectUser, startServer } from './harness.mjs';

const USERS = 150; // more than two batches of 64

async function fanOutAndCheck(server) {
  const clients = await Promise.all(Array.from({ length: USERS }, (_, i) => connectUser(server, `w${i}`)));
  const sizes = [10, 3000, 20, 70000, 5, 2100, 300];
  for (const [i, size] of sizes.entries()) {
    const res = await api(server, 'POST', '/api/broadcast-all', {
      type: 'ask.response', payload: { chunk: `${i}:${'x'.repeat(size)}`, isComplete: false },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.delivered, USERS);
  }
  for (const client of clients) {
    for (const [i, size] of sizes.entries()) {
      const m = await client.next(5000);
      assert.equal(m.payload.chunk, `${i}:${'x'.repeat(size)}`);
    }
  }
  await Promise.all(clients.map((c) => c.close()));
}

test('Writes.ThroughIoUring_ByDefault_EveryFrameArrivesInOrder', async () => {
  const server = await startServer({ env: { ZENA_THREADS: '1' } });
  try {
    assert.match(server.output(), /writes io_uring=true per_call=64/);
    await fanOutAndCheck(server);
  } finally {
    await server.stop();
  }
});

test('Writes.OneCallPerConnection_WhenTurnedOff_EveryFrameArrivesInOrder', async () => {
  const server = await startServer({ env: { ZENA_THREADS: '1', ZENA_IO_URING: 'false' } });
  try {
    assert.match(server.output(), /writes io_uring=false loops_with_io_uring=0 reason="server.io_uring"/);
    await fanOutAndCheck(server);
  } finally {
    await server.stop();
  }
});
