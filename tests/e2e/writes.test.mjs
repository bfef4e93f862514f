// How the event loops write (server.io_uring): through io_uring by default, 64 connections per
// system call, or one call per connection when turned off or refused by the kernel. Either way
// the start log says which, and every connection gets every frame, in order, large frames (which
// go as iovecs of their own) among small ones (which are copied into one buffer). The API's
// answers join the same writes; one larger than the socket takes at once arrives whole.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import {
  API_KEY, api, connectUser, historyRoute, sleep, startServer, waitFor,
} from './harness.mjs';

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

// Forty events of 200 KB in a channel's history, read back in one answer of 8 MB by a client that
// reads nothing for a while: the kernel takes part of it (about 3.9 MB here; a socket's send buffer
// grows to 4 MiB at most, net.ipv4.tcp_wmem), and the rest follows as the client reads.
async function largeAnswerArrivesWhole(server) {
  const chunks = Array.from({ length: 40 }, (_, i) => `${i}:${String.fromCharCode(97 + (i % 26)).repeat(200000)}`);
  for (const chunk of chunks) {
    const res = await api(server, 'POST', '/api/publish', {
      channel: 'deal:large', type: 'ask.response', payload: { chunk, isComplete: false },
    });
    assert.equal(res.status, 200);
  }
  const socket = net.connect(server.port, '127.0.0.1');
  socket.pause();
  await once(socket, 'connect');
  socket.write(`GET ${historyRoute('deal:large')} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n\r\n`);
  await sleep(300);
  const received = [];
  let text = '';
  socket.on('data', (d) => received.push(d));
  socket.resume();
  await waitFor(() => {
    text = Buffer.concat(received).toString();
    const end = text.indexOf('\r\n\r\n');
    const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
    return end >= 0 && length >= 0 && Buffer.byteLength(text) >= end + 4 + length;
  }, 10000, 'the whole answer');
  socket.destroy();
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
  assert.deepEqual(body.events.map((e) => e.payload.chunk), chunks);
}

for (const ioUring of ['true', 'false']) {
  test(`Writes.ApiAnswerLargerThanOneWrite_ArrivesWhole_IoUring${ioUring === 'true' ? 'On' : 'Off'}`, async () => {
    const server = await startServer({ env: { ZENA_THREADS: '1', ZENA_IO_URING: ioUring } });
    try {
      assert.match(server.output(), new RegExp(`writes io_uring=${ioUring}`));
      await largeAnswerArrivesWhole(server);
    } finally {
      await server.stop();
    }
  });
}
