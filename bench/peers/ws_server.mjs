// Peer 1 of the benchmark: the seed's design written plainly on Node with the `ws` package.
// A Map of user id to that user's sockets, a `connected` welcome, a 30 s ping sweep, and the
// part of zena-realtime's HTTP API the load generator uses (api.mjs).
//   PORT=... JWT_SECRET=... API_KEY=... [REDIS_URL=redis://127.0.0.1:6379] node ws_server.mjs
// With REDIS_URL, the seed's Scalability section ("Redis pub/sub for cross-server messaging"):
// several such processes share one Redis; each subscribes to one Pub/Sub channel, an HTTP publish
// on any of them is one PUBLISH of the request's messages (answered {"nodes": subscribers} once
// Redis took it), and every process, the one that took it too, delivers them to its own sockets
// (bench/cluster.sh). Without it, a publish is delivered at once, answered {"delivered": n}.
import { WebSocketServer } from 'ws';
import { apiServer } from './api.mjs';
import { bearer, envelope, verifyJwt } from './jwt.mjs';

const port = Number(process.env.PORT);
const secret = process.env.JWT_SECRET;
const apiKey = process.env.API_KEY;
const redisUrl = process.env.REDIS_URL;
const CHANNEL = 'bench-ws:publish';

const users = new Map(); // userId -> Set<WebSocket>
const all = new Set();

// The messages of one publish to this process's sockets; answers how many it reached.
function deliver(messages) {
  let delivered = 0;
  for (const m of messages) {
    const text = envelope(m.type, m.payload);
    if (m.all) {
      for (const ws of all) { ws.send(text); delivered += 1; }
      continue;
    }
    for (const user of m.users) {
      for (const ws of users.get(user) ?? []) { ws.send(text); delivered += 1; }
    }
  }
  return delivered;
}

let publish = (messages) => ({ delivered: deliver(messages) });
if (redisUrl) {
  const { createClient } = await import('redis');
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (e) => console.error('redis:', e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  await sub.subscribe(CHANNEL, (text) => deliver(JSON.parse(text)));
  publish = async (messages) => ({ nodes: await pub.publish(CHANNEL, JSON.stringify(messages)) });
}

const server = apiServer(apiKey, (messages) => publish(messages));

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  const user = verifyJwt(bearer(req.headers.authorization) || url.searchParams.get('token') || '', secret);
  if (url.pathname !== '/ws') return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!user) return ws.close(1008, 'invalid token');
    ws.isAlive = true;
    ws.on('pong', () => { ws.isAlive = true; });
    if (!users.has(user)) users.set(user, new Set());
    users.get(user).add(ws);
    all.add(ws);
    ws.on('close', () => {
      all.delete(ws);
      const set = users.get(user);
      set.delete(ws);
      if (set.size === 0) users.delete(user);
    });
    ws.send(envelope('connected', { userId: user, serverTime: Date.now() }));
  });
});

setInterval(() => {
  for (const ws of all) {
    if (!ws.isAlive) { ws.terminate(); continue; }
    ws.isAlive = false;
    ws.ping();
  }
}, 30000).unref();

// The kernel's accept queue as deep as this machine allows (net.core.somaxconn, 4096), as
// zena-realtime's: Node's default of 511 drops the SYNs of a 1,024-handshake burst.
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => console.log(`listening port=${port}${redisUrl ? ' redis' : ''}`));
