// websocket.handshake_timeout_ms: a new connection must send its first request in time (a socket
// that says nothing is dropped), while later requests on a kept-alive connection have
// http.request_timeout_ms.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { API_KEY, startServer } from './harness.mjs';

// Opens a socket, writes `first` (if any) and resolves with the milliseconds until the server
// closed it, or null when it was still open after `limitMs`.
function closedAfter(port, limitMs, first) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => finish(null), limitMs);
    socket.on('close', () => finish(Date.now() - started));
    socket.on('error', () => finish(Date.now() - started));
    socket.on('data', () => {});
    if (first) socket.write(first);
  });
}

test('HandshakeTimeout_ASilentSocketIsDroppedButAKeptAliveOneWaitsForItsNextRequest', async () => {
  const server = await startServer({
    env: { ZENA_HANDSHAKE_TIMEOUT_MS: '400', ZENA_HTTP_REQUEST_TIMEOUT_MS: '3000' },
  });
  try {
    const silent = await closedAfter(server.port, 2500);
    assert.ok(silent !== null, 'a socket that sends nothing is dropped');
    assert.ok(silent >= 300 && silent < 1500, `dropped after the handshake timeout, not the request one: ${silent} ms`);

    // After a whole first request, the connection is kept for the next one past 400 ms.
    const request = `GET /api/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n\r\n`;
    const kept = await closedAfter(server.port, 1500, request);
    assert.equal(kept, null, 'kept alive past the handshake timeout once its first request came');
  } finally {
    await server.stop();
  }
});
