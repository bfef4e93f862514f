// Hostile clients against a zena-realtime binary, and what they make the server spend (issue 16):
// it starts the binary on a loopback port, runs N attacking connections of one scenario for a
// bounded time (each reconnects when the server drops it), with one victim user receiving a
// publish every 50 ms, and prints one JSON line: the server's CPU seconds over the attack (utime +
// stime from /proc/<pid>/stat), the attackers' frames and reconnects, the close codes they got,
// and the victim's publish-to-receive latency.
//
//   node bench/hostile.mjs --binary build/zena-realtime --scenario after-close [--connections 2] [--seconds 10]
//
// Scenarios:
//   after-close        a bad token (closed 1008), permessage-deflate on, then compressed binary
//                      frames that each inflate to 60 KB (issue 16, item 1)
//   after-close-plain  the same without deflate: 60 KB masked binary frames
//   continuations      a valid token, a first fragment, then empty continuation frames (item 3)
//   pongs              a valid token, then unsolicited pongs (item 3)
//   binary             a valid token, deflate on, compressed binary messages of 83 bytes that
//                      inflate to 60 KB each (item 2, the session's)
// Only loopback; every loop is bounded by --seconds.
import { spawn } from 'node:child_process';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import { OP, RawSocket, frame } from '../tests/conformance/raw_ws.mjs';
import { cpuSeconds, sleep, token } from './hostile_common.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const binary = args.binary ?? 'build/zena-realtime';
const scenario = args.scenario ?? 'after-close';
const connections = Number(args.connections ?? 2);
const seconds = Number(args.seconds ?? 10);
const threads = Number(args.threads ?? 2);
const SECRET = 'bench-hostile-secret-0123456789abcdef0123456789';
const API_KEY = 'bench-hostile-api-key-0123';



async function startServer() {
  const child = spawn(binary, ['--host', '127.0.0.1', '--port', '0'], {
    env: {
      PATH: process.env.PATH,
      ZENA_JWT_SECRET: SECRET,
      ZENA_API_KEY: API_KEY,
      ZENA_THREADS: String(threads),
      ZENA_LOG_LEVEL: 'info',
      ZENA_PERMESSAGE_DEFLATE: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 10000);
    let found = false;
    const onData = (d) => {
      if (found) return; // drained, not kept: a refused connection logs a line
      output += d;
      const m = output.match(/listening host=\S+ port=(\d+)/);
      if (m) { found = true; clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${output}`)); });
  });
  return { child, port };
}

// What each attacking connection sends, again and again, after its opening.
const bomb = deflateRawSync(Buffer.alloc(60000), { finishFlush: zlib.Z_SYNC_FLUSH }).subarray(0, -4);
const batches = {
  'after-close': () => Buffer.concat(Array.from({ length: 256 }, () => frame({ opcode: OP.binary, rsv: 4, payload: bomb }))),
  'after-close-plain': () => Buffer.concat(Array.from({ length: 4 }, () => frame({ opcode: OP.binary, payload: Buffer.alloc(60000, 1) }))),
  continuations: () => Buffer.concat(Array.from({ length: 4096 }, () => frame({ opcode: OP.cont, fin: false }))),
  pongs: () => Buffer.concat(Array.from({ length: 4096 }, () => frame({ opcode: OP.pong, payload: 'x' }))),
  binary: () => Buffer.concat(Array.from({ length: 256 }, () => frame({ opcode: OP.binary, rsv: 4, payload: bomb }))),
};
if (!batches[scenario]) throw new Error(`unknown scenario ${scenario}`);
const deflate = scenario === 'after-close' || scenario === 'binary';
const badToken = scenario.startsWith('after-close');
const perBatch = { 'after-close': 256, 'after-close-plain': 4, continuations: 4096, pongs: 4096, binary: 256 }[scenario];

const stats = { frames: 0, connects: 0, refused: 0, closes: {} };

async function attacker(port, until) {
  const batch = batches[scenario]();
  while (Date.now() < until) {
    let s;
    try {
      s = await RawSocket.open(port, {
        path: `/ws?token=${badToken ? 'not-a-token' : token(SECRET, `attacker-${Math.random()}`)}`,
        extra: deflate ? ['Sec-WebSocket-Extensions: permessage-deflate'] : [],
      });
    } catch {
      await sleep(50);
      continue;
    }
    if (s.status !== 101) {
      stats.refused += 1; // 429: the per-address handshake rate
      s.destroy();
      await sleep(50);
      continue;
    }
    stats.connects += 1;
    if (scenario === 'continuations') s.send(frame({ opcode: OP.text, payload: 'a', fin: false }));
    while (!s.ended && Date.now() < until) {
      // As fast as the server reads: the next batch only once the last one left Node's buffer.
      s.socket.write(batch);
      stats.frames += perBatch;
      while (s.socket.writableNeedDrain && !s.ended && Date.now() < until) await sleep(2);
      await new Promise(setImmediate);
    }
    let f;
    while ((f = s.tryParse()) !== undefined) {
      if (f.opcode === OP.close) {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'none';
        stats.closes[code] = (stats.closes[code] ?? 0) + 1;
      }
    }
    s.destroy();
  }
}

// One legitimate user, published to every 50 ms: how long a publish takes to reach it.
async function victim(port, until) {
  const s = await RawSocket.open(port, { path: `/ws?token=${token(SECRET, 'victim')}` });
  if (s.status !== 101) throw new Error(`victim refused: ${s.status}`);
  const sent = new Map();
  const latencies = [];
  let seq = 0;
  let answered = 0;
  const grace = 3000; // after the attack, for what is still on its way
  const reader = (async () => {
    while (Date.now() < until + grace) {
      const f = await s.read(until + grace - Date.now()).catch(() => null);
      if (!f) break;
      if (f.opcode === OP.ping) { s.send(frame({ opcode: OP.pong, payload: f.payload })); continue; }
      if (f.opcode !== OP.text) continue;
      const m = JSON.parse(f.payload.toString());
      if (m.type !== 'thread.new') continue;
      const at = sent.get(m.payload.threadId);
      if (at !== undefined) latencies.push(Number(process.hrtime.bigint() - at) / 1e6);
    }
  })();
  while (Date.now() < until) {
    const id = `t-${seq++}`;
    sent.set(id, process.hrtime.bigint());
    fetch(`http://127.0.0.1:${port}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'victim', type: 'thread.new', payload: { threadId: id, accountId: 'a' } }),
    }).then((r) => { if (r.status === 200 && Date.now() < until) answered += 1; }, () => {});
    await sleep(50);
  }
  await reader.catch(() => {});
  s.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2)) : null);
  // received: within the attack and the 3 s after it; answered: API answers during the attack.
  return { published: seq, api_answered_during_attack: answered, received: latencies.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) };
}

const { child, port } = await startServer();
try {
  await sleep(200);
  const startCpu = cpuSeconds(child.pid);
  const startAttackerCpu = process.cpuUsage();
  const until = Date.now() + seconds * 1000;
  const victimRun = victim(port, until);
  await Promise.all(Array.from({ length: connections }, () => attacker(port, until)));
  const serverCpu = cpuSeconds(child.pid) - startCpu;
  const attackerCpu = process.cpuUsage(startAttackerCpu);
  const victimResult = await victimRun;
  console.log(JSON.stringify({
    binary, scenario, connections, seconds, server_threads: threads,
    server_cpu_s: Number(serverCpu.toFixed(2)),
    server_cpu_s_per_connection: Number((serverCpu / connections).toFixed(2)),
    attacker_cpu_s: Number(((attackerCpu.user + attackerCpu.system) / 1e6).toFixed(2)),
    frames_written: stats.frames, connects: stats.connects, handshakes_refused: stats.refused, closes: stats.closes,
    victim: victimResult,
  }));
} finally {
  child.kill('SIGTERM');
}
