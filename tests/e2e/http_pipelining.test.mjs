// HTTP/1.1 pipelining on the API: requests sent together in one write are all handled, and
// answered in the order they came, with the events delivered in that order too. A request that
// is not for the API (here /healthz) waits for the answers before it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { API_KEY, connectUser, startServer, withTimeout } from './harness.mjs';

function post(route, body) {
  const text = JSON.stringify(body);
  return `POST ${route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}

// Reads `count` responses (status and body) from the socket.
function readResponses(socket, count) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const out = [];
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer += chunk.toString();
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        out.push({ status: Number(head.split(' ')[1]), body: buffer.slice(end + 4, end + 4 + length) });
        buffer = buffer.slice(end + 4 + length);
        if (out.length === count) return resolve(out);
      }
    });
  });
}

test('HttpPipelining.RequestsSentTogether_AreAnsweredInOrder', async () => {
  const server = await startServer();
  try {
    const alice = await connectUser(server, 'alice');
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const requests = [];
    for (let i = 0; i < 20; i += 1) {
      requests.push(post('/api/broadcast', { userId: 'alice', type: 'thread.new', payload: { threadId: String(i), accountId: 'a' } }));
    }
    requests.push('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    requests.push(post('/api/broadcast', { userId: 'nobody', type: 'thread.new', payload: { threadId: 'x', accountId: 'a' } }));
    const answers = readResponses(socket, requests.length);
    socket.write(requests.join(''));
    const responses = await withTimeout(answers, 5000, 'the pipelined answers');
    for (let i = 0; i < 20; i += 1) {
      assert.equal(responses[i].status, 200);
      assert.equal(JSON.parse(responses[i].body).delivered, 1);
    }
    assert.deepEqual(JSON.parse(responses[20].body), { status: 'ok' });
    assert.equal(JSON.parse(responses[21].body).delivered, 0);
    for (let i = 0; i < 20; i += 1) {
      const event = await alice.next(2000);
      assert.equal(event.payload.threadId, String(i));
    }
    socket.destroy();
    await alice.close();
  } finally {
    await server.stop();
  }
});

// Each /healthz waits for the answer before it, and is answered from the write of that answer:
// the event loop must write those answers without waiting for another event. One thread, so
// nothing but its once-a-second timer would wake it: twenty answers each left for the next event
// take about ten seconds, against milliseconds.
test('HttpPipelining.RequestsThatWaitForTheAnswersBefore_AreAllAnswered', async () => {
  const server = await startServer({ env: { ZENA_THREADS: '1' } });
  try {
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const healthz = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const requests = [
      post('/api/broadcast', { userId: 'nobody', type: 'thread.new', payload: { threadId: 'x', accountId: 'a' } }),
      ...Array(20).fill(healthz),
    ];
    const answers = readResponses(socket, requests.length);
    socket.write(requests.join(''));
    const responses = await withTimeout(answers, 5000, 'the answers');
    assert.equal(JSON.parse(responses[0].body).delivered, 0);
    for (const r of responses.slice(1)) assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
    socket.destroy();
  } finally {
    await server.stop();
  }
});
