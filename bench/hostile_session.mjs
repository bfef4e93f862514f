// Issue 16, item 2: what a client with a valid token can make the server spend with binary
// messages that are small on the wire and large once inflated, and what that does to another
// user's latency. Loopback only, bounded in time.
//
//   node bench/hostile_session.mjs [--binary build/zena-realtime] [--clients 2] [--seconds 10]
//                                  [--reconnect] [--threads 2]
//
// It starts the binary on 127.0.0.1 with permessage-deflate on (ZENA_PERMESSAGE_DEFLATE=true)
// and the default message rate (20/s, bursts of 50), connects one victim (a `ws` client) and
// `--clients` attackers (raw sockets that negotiate permessage-deflate). Each attacker sends the
// same 83-byte compressed binary frame, which inflates to 60,000 zero bytes, as fast as its
// socket takes it, for `--seconds`; with `--reconnect` it opens a new connection whenever the
// server ends one. Meanwhile the victim is sent an event through the API every 100 ms, and the
// publish-to-receive latency is recorded. The server's CPU is read from /proc/<pid>/stat
// (utime + stime) at the start and the end of the window. Prints one JSON line.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import { OP, RawSocket, frame } from '../tests/conformance/raw_ws.mjs';
import { cpuSeconds, sleep, token } from './hostile_common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WebSocket = createRequire(path.join(here, '../tests/e2e/package.json'))('ws');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const BINARY = path.resolve(option('binary', path.join(here, '../build/zena-realtime')));
const CLIENTS = Math.min(64, Number(option('clients', '2')));
const SECONDS = Math.min(120, Number(option('seconds', '10')));
const THREADS = option('threads', '2');
const RECONNECT = process.argv.includes('--reconnect');
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const API_KEY = 'bench-api-key-0123456789';




async function startServer() {
  const child = spawn(BINARY, ['--host', '127.0.0.1', '--port', '0'], {
    env: {
      PATH: process.env.PATH,
      ZENA_JWT_SECRET: SECRET,
      ZENA_API_KEY: API_KEY,
      ZENA_THREADS: THREADS,
      ZENA_PERMESSAGE_DEFLATE: 'true',
      ZENA_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 10000);
    const check = (d) => {
      output += d;
      const m = output.match(/listening host=\S+ port=(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${output}`)); });
  });
  child.stdout.resume();
  child.stderr.resume();
  return { child, port };
}

// 60,000 zero bytes, compressed as one RFC 7692 message (the 0x00 0x00 0xff 0xff tail removed).
const BOMB = deflateRawSync(Buffer.alloc(60000), { finishFlush: zlib.Z_SYNC_FLUSH }).subarray(0, -4);
const BURST = Buffer.concat(Array.from({ length: 64 }, () => frame({ opcode: OP.binary, rsv: 4, payload: BOMB })));

// One attacker: sends BURST again and again until `until`; counts connections and closes.
async function attacker(port, n, until, stats) {
  while (Date.now() < until) {
    let s;
    try {
      s = await RawSocket.open(port, {
        path: `/ws?token=${token(SECRET, `hostile-${n}`)}`,
        extra: ['Sec-WebSocket-Extensions: permessage-deflate'],
      });
    } catch {
      await sleep(50);
      if (!RECONNECT) return;
      continue;
    }
    stats.connections += 1;
    if (s.status !== 101) {
      stats.refused += 1;
      s.destroy();
      await sleep(50);
      if (!RECONNECT) return;
      continue;
    }
    const opened = Date.now();
    let closeSeen = false;
    // The server's close, if it sent one: a hostile client goes on sending after it.
    const lookForClose = () => {
      for (let f = s.tryParse(); !closeSeen && f !== undefined; f = s.tryParse()) {
        if (f.opcode !== OP.close) continue;
        closeSeen = true;
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
        stats.closes[code] = (stats.closes[code] ?? 0) + 1;
        stats.closedAfterMs.push(Date.now() - opened);
      }
    };
    while (!s.ended && Date.now() < until) {
      lookForClose();
      stats.framesSent += 64;
      if (!s.socket.write(BURST)) {
        await new Promise((resolve) => {
          const done = () => { clearTimeout(timer); s.socket.off('drain', done); resolve(); };
          const timer = setTimeout(done, 50);
          s.socket.once('drain', done);
        });
      }
      await sleep(1);
    }
    lookForClose();
    if (s.ended) {
      stats.ended += 1;
      stats.endedAfterMs.push(Date.now() - opened);
    }
    s.destroy();
    if (!RECONNECT) {
      // Stay idle until the window ends, as a client that was closed would.
      return;
    }
  }
}

// The victim: an event every 100 ms through the API; publish-to-receive latency in ms.
async function victim(port, until) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['zena-realtime', `bearer.${token(SECRET, 'victim')}`]);
  const pending = new Map();
  const latencies = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    const sent = pending.get(m.payload?.threadId);
    if (sent !== undefined) { latencies.push(performance.now() - sent); pending.delete(m.payload.threadId); }
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let i = 0;
  while (Date.now() < until) {
    const id = `t${i++}`;
    pending.set(id, performance.now());
    fetch(`http://127.0.0.1:${port}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'victim', type: 'thread.new', payload: { threadId: id, accountId: 'a' } }),
    }).catch(() => {});
    await sleep(100);
  }
  await sleep(2000); // late deliveries
  ws.terminate();
  return { published: i, received: latencies.length, latencies: latencies.sort((a, b) => a - b) };
}

const pct = (sorted, p) => (sorted.length ? Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))].toFixed(1)) : null);

const hardStop = setTimeout(() => { console.error('hostile_session: hard time limit'); process.exit(2); }, (SECONDS + 30) * 1000);
const { child, port } = await startServer();
try {
  const stats = { connections: 0, refused: 0, framesSent: 0, ended: 0, closes: {}, closedAfterMs: [], endedAfterMs: [] };
  const cpuStart = cpuSeconds(child.pid);
  const start = Date.now();
  const until = start + SECONDS * 1000;
  const probe = victim(port, until);
  await Promise.all(Array.from({ length: CLIENTS }, (_, n) => attacker(port, n, until, stats)));
  const remaining = until - Date.now();
  if (remaining > 0) await sleep(remaining);
  const cpu = cpuSeconds(child.pid) - cpuStart;
  const wall = (Date.now() - start) / 1000;
  const v = await probe;
  console.log(JSON.stringify({
    binary: BINARY, clients: CLIENTS, seconds: SECONDS, reconnect: RECONNECT, threads: Number(THREADS),
    frameBytes: BOMB.length, inflatedBytes: 60000,
    serverCpuSeconds: Number(cpu.toFixed(2)), wallSeconds: Number(wall.toFixed(2)),
    attacker: { ...stats, closedAfterMs: stats.closedAfterMs.slice(0, 10), endedAfterMs: stats.endedAfterMs.slice(0, 10) },
    victim: { published: v.published, received: v.received, p50Ms: pct(v.latencies, 0.5), p99Ms: pct(v.latencies, 0.99) },
  }));
} finally {
  child.kill('SIGKILL');
  clearTimeout(hardStop);
}
