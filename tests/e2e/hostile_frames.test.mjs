// Hostile clients at the frame layer (issue 16, items 1, 3, 7 and 11), against the real binary
// with raw frames: what a client may make the server spend after the server's own close, with
// frames that carry nothing (empty continuations, unasked pongs), with a message it never
// finishes, and how a burst of pings is answered. Each test bounds its own time; run against the
// release before the fix (ZENA_BINARY=a build of dbf428b), each fails.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import { test } from 'node:test';
import { OP, RawSocket, closePayload, frame } from '../conformance/raw_ws.mjs';
import { metric, mintToken, sleep, startServer } from './harness.mjs';

const open = (server, { token = mintToken({ sub: 'hostile' }), extra = [] } = {}) =>
  RawSocket.open(server.port, { path: `/ws?token=${encodeURIComponent(token)}`, extra });

/** Writes `bytes` again and again until the connection ends or `ms` pass; resolves with how long
 * it wrote. It lets the event loop read between two writes: the server drops the TCP connection
 * right after its close frame, and a write that meets the reset would destroy the socket before
 * the close frame already received is read. */
async function flood(s, bytes, ms) {
  const start = Date.now();
  while (!s.ended && Date.now() - start < ms) {
    if (!s.socket.write(bytes)) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 50);
        s.socket.once('drain', () => { clearTimeout(timer); resolve(); });
      });
    }
    await sleep(1);
  }
  return Date.now() - start;
}

/** The first close frame the server sends, skipping others; null when none comes in `ms`. */
async function closeFrame(s, ms = 3000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const f = s.tryParse();
    if (f === undefined) {
      if (s.ended) return null;
      await sleep(5);
      continue;
    }
    if (f.opcode === OP.close) return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2).toString() };
  }
  return null;
}

/** Checks that a flood was cut by the frame budget: a 1008 close frame, counted once. The close
 * frame may be lost to the reset that follows it: the server drops the TCP connection with the
 * flood unread, and the kernel answers the unread bytes with a reset that can discard the frame
 * before this client reads it. Then the connection has ended, and the server's counter says why;
 * either way it closed, for this reason, once. */
async function assertBudgetClose(server, s, writing) {
  const closed = await closeFrame(s, 5000);
  await writing;
  s.destroy();
  if (closed) {
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'too many frames');
  } else {
    assert.ok(s.ended, 'a close frame, or the connection ended, within 5 s');
  }
  assert.equal(await metric(server, 'zena_frame_budget_closes_total'), 1);
}

/** The server's CPU seconds so far (utime + stime, at 100 ticks a second). */
function cpuSeconds(server) {
  const stat = readFileSync(`/proc/${server.child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function ended(s, ms) {
  const deadline = Date.now() + ms;
  while (!s.ended && Date.now() < deadline) await sleep(10);
  return s.ended;
}

test('HostileFrames.AfterItsOwnClose_TheServerReadsNoFurtherAndDropsTheTcp', async () => {
  // Item 1: refused with 1008 (a bad token), permessage-deflate on, then compressed frames that
  // inflate to 60 KB each, never a close.
  const server = await startServer({ env: { ZENA_PERMESSAGE_DEFLATE: '1' } });
  try {
    const s = await open(server, { token: 'not-a-token', extra: ['Sec-WebSocket-Extensions: permessage-deflate'] });
    assert.equal(s.status, 101);
    assert.match(s.headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
    const bomb = deflateRawSync(Buffer.alloc(60000), { finishFlush: zlib.Z_SYNC_FLUSH }).subarray(0, -4);
    const frames = Buffer.concat(Array.from({ length: 64 }, () => frame({ opcode: OP.binary, rsv: 4, payload: bomb })));
    const start = Date.now();
    const cpuBefore = cpuSeconds(server);
    const writing = flood(s, frames, 5000);
    const closed = await closeFrame(s);
    assert.ok(closed, 'a close frame');
    assert.equal(closed.code, 1008);
    assert.ok(await ended(s, 3000), 'the server dropped the TCP connection');
    const took = Date.now() - start;
    const cpu = cpuSeconds(server) - cpuBefore;
    await writing;
    s.destroy();
    // After 4 KiB the server reads nothing more, and drops the TCP at the close timeout (1 s).
    assert.ok(took < 2500, `dropped after ${took} ms (the release before the fix: 10 s)`);
    assert.ok(cpu < 0.3, `the server spent ${cpu} CPU-s on it (the release before the fix: about 1 a second)`);
  } finally {
    await server.stop();
  }
});

test('HostileFrames.CloseNotAnswered_TheTcpGoesAtTheCloseTimeout', async () => {
  const server = await startServer({ env: { ZENA_CLOSE_TIMEOUT_MS: '300' } });
  try {
    const s = await open(server, { token: 'not-a-token' });
    const start = Date.now();
    assert.equal((await closeFrame(s)).code, 1008);
    // Silent: neither data nor a close.
    assert.ok(await ended(s, 3000), 'dropped');
    const took = Date.now() - start;
    assert.ok(took >= 250 && took < 1500, `dropped after ${took} ms (websocket.close_timeout_ms: 300)`);
    s.destroy();
  } finally {
    await server.stop();
  }
});

test('HostileFrames.EmptyContinuationFlood_IsClosedWith1008AndCounted', async () => {
  // Item 3, with the default budget: a first fragment, then empty continuations.
  const server = await startServer();
  try {
    const s = await open(server);
    s.send(frame({ opcode: OP.text, payload: 'a', fin: false }));
    const empty = frame({ opcode: OP.cont, fin: false });
    const writing = flood(s, Buffer.concat(Array.from({ length: 4096 }, () => empty)), 5000);
    await assertBudgetClose(server, s, writing);
  } finally {
    await server.stop();
  }
});

test('HostileFrames.UnsolicitedPongFlood_IsClosedWith1008', async () => {
  const server = await startServer();
  try {
    const s = await open(server);
    const pong = frame({ opcode: OP.pong, payload: 'unasked' });
    const writing = flood(s, Buffer.concat(Array.from({ length: 4096 }, () => pong)), 5000);
    await assertBudgetClose(server, s, writing);
  } finally {
    await server.stop();
  }
});

test('HostileFrames.AClientWithinTheBudget_IsNotClosed', async () => {
  // 50 messages of 16 fragments each and 50 pings at once: more than a browser sends.
  const server = await startServer({ env: { ZENA_TEST_ECHO: '1' } });
  try {
    const s = await RawSocket.open(server.port);
    const frames = [];
    for (let m = 0; m < 50; m += 1) {
      for (let i = 0; i < 16; i += 1) frames.push(frame({ opcode: i === 0 ? OP.text : OP.cont, payload: 'x', fin: i === 15 }));
      frames.push(frame({ opcode: OP.ping, payload: String(m) }));
    }
    s.send(...frames);
    let echoes = 0;
    let pongs = 0;
    while (echoes < 50 || pongs < 50) {
      const f = await s.read();
      assert.ok(f, `a frame (${echoes} echoes, ${pongs} pongs so far)`);
      assert.notEqual(f.opcode, OP.close, `closed: ${f.payload.subarray(2)}`);
      if (f.opcode === OP.text) echoes += 1;
      if (f.opcode === OP.pong) pongs += 1;
    }
    s.destroy();
  } finally {
    await server.stop();
  }
});

test('HostileFrames.MessageNeverFinished_IsClosedWith1008AfterTheMessageTimeout', async () => {
  // Item 7: a first fragment of 60 KB, then silence but for answering the server's pings.
  const server = await startServer({ env: { ZENA_MESSAGE_TIMEOUT_MS: '500', ZENA_HEARTBEAT_INTERVAL_MS: '300' } });
  try {
    const s = await open(server);
    const start = Date.now();
    s.send(frame({ opcode: OP.binary, payload: Buffer.alloc(60000, 7), fin: false }));
    let closed = null;
    let pings = 0;
    while (!closed && Date.now() - start < 4000) {
      const f = await s.read(4000 - (Date.now() - start)).catch(() => null);
      if (!f) break;
      if (f.opcode === OP.ping) {
        pings += 1;
        s.send(frame({ opcode: OP.pong, payload: f.payload }));
      } else if (f.opcode === OP.close) {
        closed = { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
      }
    }
    const took = Date.now() - start;
    s.send(frame({ opcode: OP.close, payload: closePayload(1008) }));
    s.destroy();
    assert.ok(closed, `closed within 4 s (${pings} pings answered)`);
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'message not finished in time');
    // The deadline (500 ms), found by the next heartbeat (every 300 ms).
    assert.ok(took >= 450 && took < 1500, `closed after ${took} ms`);
    assert.equal(await metric(server, 'zena_message_timeout_closes_total'), 1);
  } finally {
    await server.stop();
  }
});

test('HostileFrames.TenPingsBackToBack_GetTenPongs', async () => {
  // Item 11, as Autobahn's case 2.10: one pong per ping, each with its ping's payload, in order.
  const server = await startServer();
  try {
    const s = await open(server);
    s.send(...Array.from({ length: 10 }, (_, i) => frame({ opcode: OP.ping, payload: `ping ${i}` })));
    const pongs = [];
    while (pongs.length < 10) {
      const f = await s.read(2000).catch(() => null);
      if (!f) break;
      if (f.opcode === OP.pong) pongs.push(f.payload.toString());
    }
    s.destroy();
    assert.deepEqual(pongs, Array.from({ length: 10 }, (_, i) => `ping ${i}`));
  } finally {
    await server.stop();
  }
});
