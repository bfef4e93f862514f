// The typing load of bench/presence.sh (issue 13; docs/presence.md, "Typing indicators"): N
// connections of N users (t0, t1, ...) whose tokens carry "channels":["room:*"] subscribe to one
// channel; then, with --mode typing, the first --typists of them send
// {"type":"typing.start","payload":{"channel":C}} every --interval-ms (staggered), until told to
// stop. The server throttles relays to one `active:true` a second per user and channel, and each
// relay goes to the channel's connections of the other users (N - 1 of them). With --mode idle
// the connections stay open and subscribed but nobody types: the same connection count, no relays.
//
//   node bench/typing.mjs --port P --secret S [--connections 1000] [--typists 100]
//        [--interval-ms 300] [--channel room:typing] [--mode typing|idle] [--max-seconds 300]
//        [--ready-file F] [--window-fifo W]
//
// Once every connection is subscribed and the presence joins of the subscriptions have stopped
// arriving (no message for a second), it writes --ready-file and starts typing. It stops on
// SIGTERM or SIGINT, or after --max-seconds of typing, whichever comes first, and prints one
// JSON line: typing.start frames sent, `typing` relays received (active true and false), per
// connection that does not type (min, max: a connection that was behind gets fewer, relays are
// ephemeral), its own CPU seconds (process.cpuUsage) over the typing phase, and, with
// --window-fifo, the same over the window that zena-loadgen measures: the generator's --perf-ctl
// writes "enable" at its first publish and "disable" at its end into that FIFO, and this script
// snapshots at each.
// Loopback only (127.0.0.1); every phase is bounded in time.
import { createHmac } from 'node:crypto';
import { constants as fsc, openSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// The `ws` package: bench/peers' if installed, else the end-to-end tests'.
const wsDir = [join(here, 'peers'), join(here, '..', 'tests', 'e2e')].find((d) => existsSync(join(d, 'node_modules', 'ws')));
if (!wsDir) throw new Error('no ws package: npm ci in bench/peers or tests/e2e');
const WebSocket = createRequire(join(wsDir, 'package.json'))('ws');

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const port = Number(args.port ?? 3000);
const secret = args.secret;
const connections = Number(args.connections ?? 1000);
const typists = Number(args.typists ?? 100);
const intervalMs = Number(args['interval-ms'] ?? 300);
const channel = args.channel ?? 'room:typing';
const mode = args.mode ?? 'typing';
const maxSeconds = Number(args['max-seconds'] ?? 300);
if (!secret) throw new Error('--secret is required');
if (mode !== 'typing' && mode !== 'idle') throw new Error('--mode is typing or idle');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

// An HS256 token (as tests/e2e/harness.mjs mintToken) for `sub`, valid an hour, granting room:*.
function mintToken(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const t = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: t, exp: t + 3600, channels: ['room:*'] })}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const TYPING = Buffer.from('"type":"typing"');
const ACTIVE_TRUE = Buffer.from('"active":true');
const SUBSCRIBED = Buffer.from('"type":"subscribed"');
const start = JSON.stringify({ type: 'typing.start', payload: { channel } });
const subscribe = JSON.stringify({ type: 'subscribe', payload: { channel } });

const relaysTrue = new Uint32Array(connections);
const relaysFalse = new Uint32Array(connections);
let messages = 0;
let lastMessageAt = now();
let subscribed = 0;
let closed = 0;
let sent = 0;
const sockets = [];

function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${mintToken(`t${i}`)}` },
      perMessageDeflate: false,
    });
    let welcomed = false;
    let isSubscribed = false;
    const timer = setTimeout(() => reject(new Error(`connection ${i}: no subscribed in 30 s`)), 30000);
    ws.on('message', (data) => {
      ++messages;
      lastMessageAt = now();
      if (!welcomed) {
        welcomed = true;
        ws.send(subscribe);
        return;
      }
      if (!isSubscribed) {
        if (data.indexOf(SUBSCRIBED) >= 0) {
          isSubscribed = true;
          ++subscribed;
          clearTimeout(timer);
          resolve(ws);
        }
        return;
      }
      if (data.indexOf(TYPING) >= 0) {
        if (data.indexOf(ACTIVE_TRUE) >= 0) ++relaysTrue[i];
        else ++relaysFalse[i];
      }
    });
    ws.on('close', () => { ++closed; });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Connect and subscribe, at most 100 handshakes in progress.
const tConnect = now();
for (let i = 0; i < connections; i += 100) {
  const batch = [];
  for (let k = i; k < Math.min(connections, i + 100); ++k) batch.push(open(k));
  sockets.push(...(await Promise.all(batch)));
}
const connectS = (now() - tConnect) / 1000;
// The presence joins of the subscriptions (N(N+1)/2 frames) come after the last `subscribed`:
// wait until a second passes without a message (at most 60 s).
for (let waited = 0; now() - lastMessageAt < 1000 && waited < 600; ++waited) await sleep(100);

const snapshot = () => {
  const cpu = process.cpuUsage();
  let t = 0;
  let f = 0;
  for (let i = 0; i < connections; ++i) { t += relaysTrue[i]; f += relaysFalse[i]; }
  return { at: now(), cpu: (cpu.user + cpu.system) / 1e6, relaysTrue: t, relaysFalse: f, sent };
};
const diff = (a, b) => b && a ? {
  wall_s: +((b.at - a.at) / 1000).toFixed(3),
  cpu_s: +(b.cpu - a.cpu).toFixed(3),
  sent: b.sent - a.sent,
  relays_true: b.relaysTrue - a.relaysTrue,
  relays_false: b.relaysFalse - a.relaysFalse,
} : null;

// The generator's measured window, through its --perf-ctl FIFO (opened read-write so that the
// generator's non-blocking open finds a reader and no end-of-file comes between runs).
let windowStart = null;
let windowEnd = null;
let fifo = null;
if (args['window-fifo']) {
  const fd = openSync(args['window-fifo'], fsc.O_RDWR | fsc.O_NONBLOCK);
  fifo = new Socket({ fd, readable: true, writable: false });
  fifo.setEncoding('utf8');
  fifo.on('data', (text) => {
    for (const line of text.split('\n')) {
      if (line === 'enable' && !windowStart) windowStart = snapshot();
      if (line === 'disable' && windowStart && !windowEnd) windowEnd = snapshot();
    }
  });
}

const timers = [];
let stopping = false;
let stopped;
const done = new Promise((r) => { stopped = r; });
const stop = () => {
  if (stopping) return;
  stopping = true;
  for (const t of timers) { clearTimeout(t); clearInterval(t); }
  stopped();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

const before = snapshot();
if (args['ready-file']) writeFileSync(args['ready-file'], `${process.pid}\n`);
if (mode === 'typing') {
  for (let i = 0; i < Math.min(typists, connections); ++i) {
    const ws = sockets[i];
    const type = () => { if (ws.readyState === WebSocket.OPEN) { ws.send(start); ++sent; } };
    // Staggered over the interval, so that the starts (and the relays) are spread evenly.
    timers.push(setTimeout(() => { type(); timers.push(setInterval(type, intervalMs)); },
      Math.floor((i * intervalMs) / typists)));
  }
}
timers.push(setTimeout(stop, maxSeconds * 1000));
await done;
const after = snapshot();
if (fifo) fifo.destroy();

let min = Infinity;
let max = 0;
// Over the connections that do not type (a typist does not get its own relays).
for (let i = mode === 'typing' ? Math.min(typists, connections - 1) : 0; i < connections; ++i) {
  min = Math.min(min, relaysTrue[i]);
  max = Math.max(max, relaysTrue[i]);
}
const phase = diff(before, after);
console.log(JSON.stringify({
  mode, connections, subscribed, typists: mode === 'typing' ? typists : 0, interval_ms: intervalMs, channel,
  connect_s: +connectS.toFixed(2),
  phase,
  relays_per_s: phase.wall_s > 0 ? Math.round(phase.relays_true / phase.wall_s) : 0,
  relays_true_per_connection: { min, max },
  node_cpu_share: phase.wall_s > 0 ? +(phase.cpu_s / phase.wall_s).toFixed(3) : 0,
  window: diff(windowStart, windowEnd),
  closed_early: closed,
}));
for (const ws of sockets) ws.terminate();
process.exit(0);
