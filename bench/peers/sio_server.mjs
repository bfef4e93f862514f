// Peer 3 of the benchmark (bench/cluster.sh, issue 14): Socket.IO 4 with its Redis adapter
// (@socket.io/redis-adapter on the `redis` client), set up for several nodes the way its
// documentation does: one pub and one sub connection to a shared Redis per process; io.emit on
// one node reaches every node's sockets. WebSocket transport only (no HTTP long-polling, so no
// sticky sessions are needed), no compression, as the other peers. The JWT comes in Socket.IO's
// CONNECT packet (the client's `auth: {token}`) and a middleware checks it as jwt.mjs does for
// every peer; each socket joins the room `user:<id>`. The same HTTP API (api.mjs):
// /api/broadcast-all is io.emit(type, payload), /api/broadcast and /api/batch
// io.to(`user:<id>`).emit; answered {"ok": true} once handed to the adapter (Socket.IO does not
// say how many sockets a cluster-wide emit reached).
//   PORT=... JWT_SECRET=... API_KEY=... REDIS_URL=redis://127.0.0.1:6379 node sio_server.mjs
// Without REDIS_URL it runs alone (Socket.IO's in-memory adapter).
import { Server } from 'socket.io';
import { apiServer } from './api.mjs';
import { verifyJwt } from './jwt.mjs';

const port = Number(process.env.PORT);
const secret = process.env.JWT_SECRET;
const apiKey = process.env.API_KEY;
const redisUrl = process.env.REDIS_URL;

const server = apiServer(apiKey, (messages) => {
  for (const m of messages) {
    if (m.all) io.emit(m.type, m.payload);
    else io.to(m.users.map((u) => `user:${u}`)).emit(m.type, m.payload);
  }
  return { ok: true };
});

const options = {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  pingInterval: 30000, // the heartbeat of zena-realtime and the ws peer
  pingTimeout: 20000,
};
if (redisUrl) {
  const { createClient } = await import('redis');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (e) => console.error('redis:', e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  options.adapter = createAdapter(pub, sub);
}
const io = new Server(server, options);

io.use((socket, next) => {
  const user = verifyJwt(String(socket.handshake.auth?.token ?? ''), secret);
  if (!user) return next(new Error('invalid token'));
  socket.data.user = user;
  next();
});
io.on('connection', (socket) => socket.join(`user:${socket.data.user}`));

// The kernel's accept queue as deep as this machine allows (net.core.somaxconn, 4096), as
// zena-realtime's: Node's default of 511 drops the SYNs of a 1,024-handshake burst.
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => console.log(`listening port=${port}${redisUrl ? ' redis' : ''}`));
