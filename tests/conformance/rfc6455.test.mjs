// RFC 6455 conformance of the server side, case by case, against the real binary's echo
// endpoint (/echo, enabled with ZENA_TEST_ECHO=1), through raw frames. The count of cases per
// section is printed at the end (docs/conformance.md quotes it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../e2e/harness.mjs';
import { OP, RawSocket, acceptKey, closePayload, frame } from './raw_ws.mjs';

const counts = new Map();
function rfcCase(section, name, fn) {
  counts.set(section, (counts.get(section) ?? 0) + 1);
  test(`RFC6455 §${section} ${name}`, fn);
}

let server;
before(async () => {
  server = await startServer({ env: { ZENA_TEST_ECHO: '1', ZENA_MAX_MESSAGE_BYTES: '200000' } });
});
after(async () => {
  await server.stop();
  for (const [section, n] of [...counts].sort()) console.log(`RFC 6455 §${section}: ${n} cases`);
  console.log(`RFC 6455 total: ${[...counts.values()].reduce((a, b) => a + b, 0)} cases`);
});

const open = (options) => RawSocket.open(server.port, options);
async function expectClose(s, code) {
  const closed = await s.readClose();
  assert.ok(closed, `expected a close frame with ${code}, the connection was dropped`);
  assert.equal(closed.code, code, `close code (reason: ${closed.reason})`);
  s.destroy();
}
async function expectEcho(s, opcode, payload) {
  const f = await s.read();
  assert.ok(f, 'no frame');
  assert.equal(f.opcode, opcode);
  assert.equal(f.masked, false, 'server frames are never masked');
  assert.ok(f.fin);
  assert.deepEqual(f.payload, Buffer.from(payload));
  return f;
}
function handshake(lines) {
  return RawSocket.handshake(server.port, [...lines, '', ''].join('\r\n'));
}
const key = () => randomBytes(16).toString('base64');

describe('4. Opening handshake', () => {
  rfcCase('4.2.2', 'a valid handshake gets 101 with the right Sec-WebSocket-Accept', async () => {
    const s = await open();
    assert.equal(s.status, 101);
    assert.equal(s.headers['sec-websocket-accept'], acceptKey(s.key));
    assert.match(s.headers.upgrade, /^websocket$/i);
    assert.match(s.headers.connection, /upgrade/i);
    s.destroy();
  });
  rfcCase('4.2.1', 'Connection as a token list (keep-alive, Upgrade) is accepted', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: keep-alive, Upgrade',
      `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13']);
    assert.equal(s.status, 101);
    s.destroy();
  });
  rfcCase('4.2.1', 'a method other than GET is not upgraded', async () => {
    const s = await handshake(['POST /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13', 'Content-Length: 0']);
    assert.notEqual(s.status, 101);
    s.destroy();
  });
  rfcCase('4.2.1', 'no Host header: 400', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13']);
    assert.equal(s.status, 400);
    s.destroy();
  });
  rfcCase('4.2.1', 'Upgrade not websocket: not upgraded (426)', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: h2c', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13']);
    assert.equal(s.status, 426);
    s.destroy();
  });
  rfcCase('4.2.1', 'Connection without the upgrade token: not upgraded (426)', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: keep-alive',
      `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13']);
    assert.equal(s.status, 426);
    s.destroy();
  });
  rfcCase('4.2.1', 'no Sec-WebSocket-Key: 400', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Version: 13']);
    assert.equal(s.status, 400);
    s.destroy();
  });
  rfcCase('4.2.1', 'a Sec-WebSocket-Key that is not 16 bytes in base64: 400', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dG9vc2hvcnQ=', 'Sec-WebSocket-Version: 13']);
    assert.equal(s.status, 400);
    s.destroy();
  });
  rfcCase('4.4', 'version 8: 426 naming version 13', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 8']);
    assert.equal(s.status, 426);
    assert.equal(s.headers['sec-websocket-version'], '13');
    s.destroy();
  });
  rfcCase('4.4', 'no version: 426 naming version 13', async () => {
    const s = await handshake(['GET /echo HTTP/1.1', 'Host: h', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key()}`]);
    assert.equal(s.status, 426);
    assert.equal(s.headers['sec-websocket-version'], '13');
    s.destroy();
  });
});

describe('5.1 Masking', () => {
  rfcCase('5.1', 'an unmasked client frame fails the connection with 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: 'hello', mask: false }));
    await expectClose(s, 1002);
  });
  rfcCase('5.1', 'a masked frame is unmasked and echoed unmasked', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: 'hello' }));
    await expectEcho(s, OP.text, 'hello');
    s.destroy();
  });
});

describe('5.2 Base framing', () => {
  for (const rsv of [1, 2, 4]) {
    rfcCase('5.2', `RSV bits ${rsv.toString(2).padStart(3, '0')} without an extension: 1002`, async () => {
      const s = await open();
      s.send(frame({ opcode: OP.text, payload: 'x', rsv }));
      await expectClose(s, 1002);
    });
  }
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    rfcCase('5.2', `reserved opcode 0x${opcode.toString(16)}: 1002`, async () => {
      const s = await open();
      s.send(frame({ opcode, payload: 'x' }));
      await expectClose(s, 1002);
    });
  }
  for (const [size, form] of [[0, 7], [125, 7], [126, 16], [65535, 16], [65536, 64], [150000, 64]]) {
    rfcCase('5.2', `a ${size}-byte message (${form}-bit length) is echoed with the ${form}-bit form`, async () => {
      const s = await open();
      const payload = randomBytes(size);
      s.send(frame({ opcode: OP.binary, payload }));
      const f = await expectEcho(s, OP.binary, payload);
      assert.equal(f.form, form);
      s.destroy();
    });
  }
  rfcCase('5.2', 'a 16-bit length below 126 (not minimal): 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: 'short', lengthForm: 16 }));
    await expectClose(s, 1002);
  });
  rfcCase('5.2', 'a 64-bit length with the most significant bit set: 1002', async () => {
    const s = await open();
    s.send(Buffer.from([0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]));
    await expectClose(s, 1002);
  });
  rfcCase('5.2', 'a 64-bit length below 65536 (not minimal): 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.binary, payload: Buffer.alloc(200), lengthForm: 64 }));
    await expectClose(s, 1002);
  });
  rfcCase('5.2', 'a message over websocket.max_message_bytes: 1009', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.binary, payload: Buffer.alloc(200001) }));
    await expectClose(s, 1009);
  });
});

describe('5.4 Fragmentation', () => {
  rfcCase('5.4', 'a text message in three fragments is echoed whole', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: 'Hel', fin: false }), frame({ opcode: OP.cont, payload: 'lo, ', fin: false }),
      frame({ opcode: OP.cont, payload: 'world' }));
    await expectEcho(s, OP.text, 'Hello, world');
    s.destroy();
  });
  rfcCase('5.4', 'a ping between fragments is answered at once, then the message is echoed', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: 'frag', fin: false }), frame({ opcode: OP.ping, payload: 'p' }),
      frame({ opcode: OP.cont, payload: 'ment' }));
    const pong = await s.read();
    assert.equal(pong.opcode, OP.pong);
    assert.deepEqual(pong.payload, Buffer.from('p'));
    await expectEcho(s, OP.text, 'fragment');
    s.destroy();
  });
  rfcCase('5.4', 'a continuation with no message started: 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.cont, payload: 'orphan' }));
    await expectClose(s, 1002);
  });
  rfcCase('5.4', 'a new data frame inside a fragmented message: 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: 'a', fin: false }), frame({ opcode: OP.text, payload: 'b' }));
    await expectClose(s, 1002);
  });
  rfcCase('5.4', 'a fragmented binary message with an empty final fragment is echoed', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.binary, payload: Buffer.from([1, 2]), fin: false }), frame({ opcode: OP.cont, payload: Buffer.alloc(0) }));
    await expectEcho(s, OP.binary, Buffer.from([1, 2]));
    s.destroy();
  });
});

describe('5.5 Control frames', () => {
  rfcCase('5.5.2', 'a ping with 125 bytes is answered by a pong with the same bytes', async () => {
    const s = await open();
    const payload = randomBytes(125);
    s.send(frame({ opcode: OP.ping, payload }));
    const f = await s.read();
    assert.equal(f.opcode, OP.pong);
    assert.deepEqual(f.payload, payload);
    s.destroy();
  });
  rfcCase('5.5.2', 'ten pings back to back get ten pongs, each with its ping\'s payload (Autobahn 2.10)', async () => {
    const s = await open();
    s.send(...Array.from({ length: 10 }, (_, i) => frame({ opcode: OP.ping, payload: `ping ${i}` })));
    for (let i = 0; i < 10; i += 1) {
      const f = await s.read();
      assert.ok(f, `pong ${i}`);
      assert.equal(f.opcode, OP.pong);
      assert.equal(f.payload.toString(), `ping ${i}`);
    }
    s.destroy();
  });
  rfcCase('5.5', 'a ping with 126 bytes (control payloads are at most 125): 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.ping, payload: Buffer.alloc(126) }));
    await expectClose(s, 1002);
  });
  rfcCase('5.5', 'a fragmented ping: 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.ping, payload: 'p', fin: false }));
    await expectClose(s, 1002);
  });
  rfcCase('5.5.3', 'an unsolicited pong is ignored', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.pong, payload: 'unasked' }), frame({ opcode: OP.text, payload: 'still here' }));
    await expectEcho(s, OP.text, 'still here');
    s.destroy();
  });
});

describe('5.6 / 8.1 Data frames and UTF-8', () => {
  rfcCase('8.1', 'text that is not UTF-8: 1007', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]) }));
    await expectClose(s, 1007);
  });
  rfcCase('8.1', 'a code point split across fragments is accepted', async () => {
    const s = await open();
    const text = Buffer.from('κόσμε €𝄞');
    s.send(frame({ opcode: OP.text, payload: text.subarray(0, 1), fin: false }), frame({ opcode: OP.cont, payload: text.subarray(1, 9), fin: false }),
      frame({ opcode: OP.cont, payload: text.subarray(9) }));
    await expectEcho(s, OP.text, text);
    s.destroy();
  });
  rfcCase('8.1', 'invalid UTF-8 in a first fragment fails before the message ends: 1007', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: Buffer.from([0x61, 0xff]), fin: false }));
    await expectClose(s, 1007);
  });
  rfcCase('8.1', 'a truncated code point at the end of the message: 1007', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: Buffer.from([0x61, 0xe2, 0x82]) }));
    await expectClose(s, 1007);
  });
  rfcCase('8.1', 'an overlong encoding: 1007', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.text, payload: Buffer.from([0xc0, 0xaf]) }));
    await expectClose(s, 1007);
  });
  rfcCase('5.6', 'binary data is not checked as UTF-8', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.binary, payload: Buffer.from([0xff, 0xfe, 0xc0]) }));
    await expectEcho(s, OP.binary, Buffer.from([0xff, 0xfe, 0xc0]));
    s.destroy();
  });
});

describe('5.5.1 / 7.4 Closing', () => {
  rfcCase('5.5.1', 'a close 1000 is answered with a close, then the server ends the TCP connection', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.close, payload: closePayload(1000, 'bye') }));
    const closed = await s.readClose();
    assert.equal(closed.code, 1000);
    await s.until(() => s.ended);
  });
  rfcCase('5.5.1', 'an empty close is answered with a close', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.close }));
    const closed = await s.readClose();
    assert.ok(closed);
    assert.ok(closed.code === null || closed.code === 1000, `got ${closed.code}`);
    s.destroy();
  });
  rfcCase('5.5.1', 'a 1-byte close payload: 1002', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.close, payload: Buffer.from([0x03]) }));
    await expectClose(s, 1002);
  });
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    rfcCase('7.4.1', `close code ${code} is valid and answered with a close`, async () => {
      const s = await open();
      s.send(frame({ opcode: OP.close, payload: closePayload(code) }));
      const closed = await s.readClose();
      assert.ok(closed, 'a close frame came back');
      assert.ok(closed.code === code || closed.code === 1000, `answered with ${closed.code}`);
      s.destroy();
    });
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999]) {
    rfcCase('7.4.1', `close code ${code} is invalid on the wire: 1002`, async () => {
      const s = await open();
      s.send(frame({ opcode: OP.close, payload: closePayload(code) }));
      await expectClose(s, 1002);
    });
  }
  for (const code of [5000, 65535]) {
    rfcCase('7.4.2', `close code ${code} (undefined) fails the connection`, async () => {
      const s = await open();
      s.send(frame({ opcode: OP.close, payload: closePayload(code) }));
      const closed = await s.readClose();
      assert.ok(closed === null || closed.code === 1002, `answered with ${closed?.code}`);
      await s.until(() => s.ended);
    });
  }
  rfcCase('7.4.1', 'a close reason that is not UTF-8: fails the connection', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.close, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }));
    const closed = await s.readClose();
    assert.ok(closed === null || closed.code === 1007 || closed.code === 1002, `got ${closed?.code}`);
    s.destroy();
  });
  rfcCase('5.5.1', 'nothing is echoed after a close', async () => {
    const s = await open();
    s.send(frame({ opcode: OP.close, payload: closePayload(1000) }), frame({ opcode: OP.text, payload: 'late' }));
    const first = await s.read();
    assert.equal(first.opcode, OP.close);
    assert.equal(await s.read(), null, 'no frame after the close');
  });
});
