// Request framing (RFC 9112 section 6): a request whose body length cannot be trusted is
// answered and its connection closed, so that bytes sent as its body are never read as a next
// request (request smuggling behind a proxy that frames the body otherwise).
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { API_KEY, SEED_EVENTS, startServer } from './harness.mjs';

// Sends `bytes` on a new connection; resolves with what came back and whether the server closed
// the connection within `timeoutMs` (otherwise it is destroyed here).
function exchange(port, bytes, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (d) => { data += d; });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(bytes);
  });
}

const statuses = (data) => [...data.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));

// A request the body of which hides a second request.
const SMUGGLED = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n';
const post = (framing, body = SMUGGLED, version = '1.1') => `POST /api/broadcast-all HTTP/${version}\r\nHost: localhost\r\n`
  + `Authorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\n${framing}\r\n${body}`;

describe('http request framing', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  for (const coding of ['chunked, identity', 'identity', 'xchunked', 'gzip', 'chunked, gzip']) {
    test(`HttpFraming.TransferEncoding_${coding.replace(/\W+/g, '_')}_Is400AndCloses`, async () => {
      const { data, closed } = await exchange(server.port, post(`Transfer-Encoding: ${coding}\r\n`));
      assert.deepEqual(statuses(data), [400], `one answer, the smuggled request unread:\n${data}`);
      assert.match(data, /Transfer-Encoding must end with chunked/);
      assert.match(data, /Connection: close/i);
      assert.ok(closed, 'the server closed the connection');
    });
  }

  test('HttpFraming.CodingsBeforeChunked_Are501AndClose', async () => {
    const { data, closed } = await exchange(server.port,
      post('Transfer-Encoding: gzip, chunked\r\n', `5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`));
    assert.deepEqual(statuses(data), [501], data);
    assert.ok(closed);
  });

  test('HttpFraming.TransferEncodingOnTwoLines_Is501AndCloses', async () => {
    const { data, closed } = await exchange(server.port,
      post('Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`));
    assert.deepEqual(statuses(data), [501], data);
    assert.ok(closed);
  });

  test('HttpFraming.TransferEncodingInHttp10_Is400AndCloses', async () => {
    const { data, closed } = await exchange(server.port,
      post('Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n', `0\r\n\r\n${SMUGGLED}`, '1.0'));
    assert.deepEqual(statuses(data), [400], data);
    assert.match(data, /Transfer-Encoding in an HTTP\/1\.0 request/);
    assert.ok(closed);
  });

  // The other framing refusals (Beast's) close too.
  for (const [name, framing] of [
    ['ContentLengthAndTransferEncoding', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'],
    ['TransferEncodingAndContentLength', 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n'],
    ['TwoContentLengths', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
    ['ContentLengthNotANumber', 'Content-Length: 5x\r\n'],
    ['BadChunkSize', 'Transfer-Encoding: chunked\r\n'],
  ]) {
    test(`HttpFraming.${name}_Is400AndCloses`, async () => {
      const { data, closed } = await exchange(server.port, post(framing, `zz\r\n${SMUGGLED}`));
      assert.deepEqual(statuses(data), [400], data);
      assert.ok(closed);
    });
  }

  test('HttpFraming.Chunked_KeepsTheConnectionForTheNextRequest', async () => {
    const body = JSON.stringify(SEED_EVENTS[0]);
    const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const { data, closed } = await exchange(server.port, post('Transfer-Encoding: chunked\r\n', chunked + SMUGGLED), 500);
    assert.deepEqual(statuses(data), [200, 200], data);
    assert.match(data, /\{"delivered":0\}[\s\S]*\{"status":"ok"\}/);
    assert.ok(!closed, 'a well-framed request keeps the connection');
  });
});
