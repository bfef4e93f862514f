// RFC 7692 (permessage-deflate) conformance against the echo endpoint: negotiation with the
// parameters browsers send, compressed and fragmented compressed messages in both directions,
// and the errors. The server runs with websocket.permessage_deflate on; a second one, with it
// off (the default), must decline the offer.
import assert from 'node:assert/strict';
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { WebSocket, startServer } from '../e2e/harness.mjs';
import { OP, RawSocket, frame } from './raw_ws.mjs';

const counts = new Map();
function rfcCase(section, name, fn) {
  counts.set(section, (counts.get(section) ?? 0) + 1);
  test(`RFC7692 §${section} ${name}`, fn);
}

let server;
let plain;
before(async () => {
  server = await startServer({ env: { ZENA_TEST_ECHO: '1', ZENA_PERMESSAGE_DEFLATE: 'true' } });
  plain = await startServer({ env: { ZENA_TEST_ECHO: '1' } });
});
after(async () => {
  await server.stop();
  await plain.stop();
  for (const [section, n] of [...counts].sort()) console.log(`RFC 7692 §${section}: ${n} cases`);
  console.log(`RFC 7692 total: ${[...counts.values()].reduce((a, b) => a + b, 0)} cases`);
});

// Compresses one message as RFC 7692 §7.2.1 says: raw DEFLATE, the final empty block's
// 00 00 ff ff removed.
function compress(data) {
  const out = deflateRawSync(Buffer.from(data), { finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}
const decompress = (data) => inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });

const BROWSER_OFFER = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits';
const openDeflate = (offer = BROWSER_OFFER) => RawSocket.open(server.port, { extra: [offer] });

describe('negotiation', () => {
  rfcCase('5', "a browser's offer (client_max_window_bits) is accepted", async () => {
    const s = await openDeflate();
    assert.equal(s.status, 101);
    assert.match(s.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/);
    s.destroy();
  });
  rfcCase('7.1.1', 'server_no_context_takeover and client_no_context_takeover are accepted', async () => {
    const s = await openDeflate('Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    assert.equal(s.status, 101);
    assert.match(s.headers['sec-websocket-extensions'] ?? '', /server_no_context_takeover/);
    s.destroy();
  });
  rfcCase('7.1.2', 'server_max_window_bits is honoured or the offer declined, never exceeded', async () => {
    const s = await openDeflate('Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10');
    assert.equal(s.status, 101);
    const ext = s.headers['sec-websocket-extensions'] ?? '';
    if (ext) {
      const bits = /server_max_window_bits=(\d+)/.exec(ext);
      assert.ok(bits && Number(bits[1]) <= 10, ext);
    }
    s.destroy();
  });
  rfcCase('5', 'with deflate off (the default) the offer is declined', async () => {
    const s = await RawSocket.open(plain.port, { extra: [BROWSER_OFFER] });
    assert.equal(s.status, 101);
    assert.equal(s.headers['sec-websocket-extensions'], undefined);
    s.destroy();
  });
  rfcCase('6', 'RSV1 without the extension negotiated: 1002', async () => {
    const s = await RawSocket.open(plain.port);
    s.send(frame({ opcode: OP.text, payload: compress('hello'), rsv: 4 }));
    const closed = await s.readClose();
    assert.equal(closed?.code, 1002);
    s.destroy();
  });
});

describe('compressed messages', () => {
  rfcCase('7.2', 'a compressed text message is decompressed and echoed compressed', async () => {
    const s = await openDeflate();
    const text = 'Hello, Zena! '.repeat(50);
    s.send(frame({ opcode: OP.text, payload: compress(text), rsv: 4 }));
    const f = await s.read();
    assert.equal(f.opcode, OP.text);
    assert.equal(f.rsv, 4, 'the echo is compressed');
    assert.equal(decompress(f.payload).toString(), text);
    assert.ok(f.payload.length < text.length / 4, 'and smaller');
    s.destroy();
  });
  rfcCase('7.2', 'an uncompressed message on a deflate connection is still accepted', async () => {
    const s = await openDeflate();
    s.send(frame({ opcode: OP.text, payload: 'plain' }));
    const f = await s.read();
    const body = f.rsv === 4 ? decompress(f.payload) : f.payload;
    assert.equal(body.toString(), 'plain');
    s.destroy();
  });
  rfcCase('6.1', 'a fragmented compressed message (RSV1 on the first fragment only) is echoed', async () => {
    const s = await openDeflate();
    const text = 'fragmented and compressed '.repeat(40);
    const z = compress(text);
    const third = Math.floor(z.length / 3);
    s.send(frame({ opcode: OP.text, payload: z.subarray(0, third), rsv: 4, fin: false }),
      frame({ opcode: OP.cont, payload: z.subarray(third, 2 * third), fin: false }),
      frame({ opcode: OP.cont, payload: z.subarray(2 * third) }));
    const f = await s.read();
    assert.equal(decompress(f.payload).toString(), text);
    s.destroy();
  });
  rfcCase('6.1', 'RSV1 on a continuation frame: 1002', async () => {
    const s = await openDeflate();
    const z = compress('abcdef'.repeat(20));
    s.send(frame({ opcode: OP.text, payload: z.subarray(0, 4), rsv: 4, fin: false }),
      frame({ opcode: OP.cont, payload: z.subarray(4), rsv: 4 }));
    const closed = await s.readClose();
    assert.equal(closed?.code, 1002);
    s.destroy();
  });
  rfcCase('6.1', 'RSV1 on a control frame: 1002', async () => {
    const s = await openDeflate();
    s.send(frame({ opcode: OP.ping, payload: 'p', rsv: 4 }));
    const closed = await s.readClose();
    assert.equal(closed?.code, 1002);
    s.destroy();
  });
  rfcCase('7.1.1', 'the server answers with no context takeover both ways: each message stands alone', async () => {
    const s = await openDeflate();
    const ext = s.headers['sec-websocket-extensions'] ?? '';
    assert.match(ext, /server_no_context_takeover/);
    assert.match(ext, /client_no_context_takeover/);
    const text = 'the same words again and again, longer than the 64-byte threshold. ';
    s.send(frame({ opcode: OP.text, payload: compress(text), rsv: 4 }));
    const first = await s.read();
    s.send(frame({ opcode: OP.text, payload: compress(text), rsv: 4 }));
    const second = await s.read();
    assert.equal(first.rsv, 4);
    assert.equal(second.rsv, 4);
    // Compressed once per message, with nothing carried over: the same bytes, each inflating alone.
    assert.deepEqual(second.payload, first.payload);
    assert.equal(decompress(first.payload).toString(), text);
    assert.equal(decompress(second.payload).toString(), text);
    s.destroy();
  });
  rfcCase('7.1.1.2', 'a client that keeps its context after client_no_context_takeover: 1007', async () => {
    const s = await openDeflate();
    const { createDeflateRaw } = await import('node:zlib');
    const z = createDeflateRaw();
    const chunks = [];
    z.on('data', (d) => chunks.push(d));
    const flush = () => new Promise((r) => z.flush(constants.Z_SYNC_FLUSH, () => r()));
    const take = () => { const b = Buffer.concat(chunks.splice(0)); return b.subarray(0, b.length - 4); };
    const text = 'the same words again and again, longer than the 64-byte threshold. ';
    z.write(text);
    await flush();
    s.send(frame({ opcode: OP.text, payload: take(), rsv: 4 }));
    assert.equal(decompress((await s.read()).payload).toString(), text);
    z.write(text);
    await flush();
    // This one refers back to the first message, which the server was told it need not keep.
    s.send(frame({ opcode: OP.text, payload: take(), rsv: 4 }));
    const closed = await s.readClose();
    assert.equal(closed?.code, 1007);
    s.destroy();
  });
  rfcCase('7.2', 'a client library (ws, perMessageDeflate) round-trips text and binary', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/echo`, { perMessageDeflate: true });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    assert.match(ws.extensions, /permessage-deflate/);
    const next = () => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
    const text = JSON.stringify({ type: 'ask.response', payload: { chunk: 'x'.repeat(5000), isComplete: false } });
    ws.send(text);
    let m = await next();
    assert.equal(m.data.toString(), text);
    const bin = Buffer.alloc(20000, 7);
    ws.send(bin);
    m = await next();
    assert.ok(m.isBinary);
    assert.deepEqual(Buffer.from(m.data), bin);
    ws.close();
  });
});
