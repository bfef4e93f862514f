// MessagePack against JSON end to end (docs/protocol.md#messagepack): the real server binary,
// real `ws` clients. For each format, --connections clients of one user (MessagePack clients
// offer zena-realtime.msgpack) receive --rounds publishes of each seed event and of a 2 KiB
// ask.response chunk; it reports the bytes each delivery took on the wire (frame headers included,
// from the sockets' byte counts, permessage-deflate off unless --deflate) and the server's CPU
// (utime + stime from /proc/<pid>/stat) per delivery over all of them, publishing included.
//
//   node bench/msgpack_wire.mjs [--connections 200] [--rounds 30] [--deflate]
//        (ZENA_BINARY: the server, default build/zena-realtime)
//
// Loopback only; every wait is bounded. The numbers are from whatever machine runs it: on a
// shared one the CPU figures are noisy, the byte counts are exact.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  SEED_EVENTS, WebSocket, keepAlivePublisher, mintToken, startServer, waitFor, withTimeout,
} from '../tests/e2e/harness.mjs';

// The end-to-end tests' packages (ws, @msgpack/msgpack).
const { decode } = createRequire(new URL('../tests/e2e/package.json', import.meta.url))('@msgpack/msgpack');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const connections = option('connections', 200);
const rounds = option('rounds', 30);
const deflate = args.includes('--deflate');

const chunk = { type: 'ask.response', name: 'ask.response 2KiB',
  payload: { chunk: 'The buyer\'s agent replied on Tuesday with a revised offer. '.repeat(40).slice(0, 2048), isComplete: false, streamId: 'q7' } };
const samples = [...SEED_EVENTS.map((e) => ({ ...e, name: e.type })), chunk];

const clockTicks = 100; // USER_HZ on Linux
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime, stime
}

async function connectAll(server, format) {
  const user = `wire-${format}`;
  const token = mintToken({ sub: user });
  const protocols = format === 'msgpack' ? ['zena-realtime.msgpack', `bearer.${token}`] : ['zena-realtime', `bearer.${token}`];
  const clients = [];
  for (let i = 0; i < connections; i += 1) {
    const ws = new WebSocket(server.wsUrl(), protocols, { perMessageDeflate: deflate });
    const c = { ws, received: 0, last: undefined };
    ws.on('message', (data, isBinary) => {
      c.received += 1;
      c.last = isBinary ? decode(data) : JSON.parse(data.toString());
    });
    ws.on('error', () => {});
    clients.push(c);
  }
  await waitFor(() => clients.every((c) => c.received >= 1), 20000, 'every welcome');
  for (const c of clients) if (c.last.type !== 'connected') throw new Error(`expected the welcome, got ${c.last.type}`);
  return { user, clients };
}

async function run(server, publisher, format) {
  const { user, clients } = await connectAll(server, format);
  const bytes = () => clients.reduce((n, c) => n + c.ws._socket.bytesRead, 0);
  const received = () => clients.reduce((n, c) => n + c.received, 0);
  const perEvent = {};
  const cpuBefore = cpuSeconds(server.child.pid);
  let deliveries = 0;
  for (const s of samples) {
    const b0 = bytes();
    const r0 = received();
    for (let i = 0; i < rounds; i += 1) {
      const res = await publisher.post('/api/publish', { channel: `user:${user}`, type: s.type, payload: s.payload });
      if (res.status !== 200) throw new Error(`publish refused: ${JSON.stringify(res.body)}`);
    }
    await waitFor(() => received() - r0 >= rounds * connections, 20000, `${s.name} delivered`);
    deliveries += rounds * connections;
    perEvent[s.name] = (bytes() - b0) / (rounds * connections);
  }
  const cpu = cpuSeconds(server.child.pid) - cpuBefore;
  await Promise.all(clients.map((c) => { c.ws.close(); return withTimeout(new Promise((r) => c.ws.once('close', r)), 5000, 'close'); }));
  return { perEvent, cpuPerDeliveryUs: (cpu / deliveries) * 1e6, cpu, deliveries };
}

const server = await startServer({
  env: { ZENA_CHANNELS_PRESENCE: 'false', ZENA_LOG_LEVEL: 'info', ...(deflate ? { ZENA_PERMESSAGE_DEFLATE: 'true' } : {}) },
});
const publisher = keepAlivePublisher(server, { sockets: 1 });
try {
  const results = {};
  for (const format of ['json', 'msgpack', 'json', 'msgpack']) {
    const r = await run(server, publisher, format);
    // The second run of each is kept (the first warms the server up).
    results[format] = r;
  }
  console.log(`connections=${connections} rounds=${rounds} deflate=${deflate}`);
  console.log('| event | JSON bytes/delivery | MessagePack bytes/delivery | MessagePack/JSON |');
  console.log('|---|---:|---:|---:|');
  for (const s of samples) {
    const j = results.json.perEvent[s.name];
    const m = results.msgpack.perEvent[s.name];
    console.log(`| ${s.name} | ${j.toFixed(1)} | ${m.toFixed(1)} | ${(m / j).toFixed(3)} |`);
  }
  for (const format of ['json', 'msgpack']) {
    const r = results[format];
    console.log(`server CPU ${format}: ${r.cpu.toFixed(2)} s for ${r.deliveries} deliveries = ${r.cpuPerDeliveryUs.toFixed(2)} us/delivery (publishing included)`);
  }
} finally {
  publisher.close();
  await server.stop();
}
