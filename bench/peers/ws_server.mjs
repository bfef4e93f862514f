// Peer 1 of the benchmark: the seed's design written plainly on Node with the `ws` package.
// A Map of user id to that user's sockets, a `connected` welcome, a 30 s ping sweep, and the
// part of zena-realtime's HTTP API the load generator uses: POST /api/broadcast (users),
// POST /api/broadcast-all and POST /api/batch ({"items": [broadcast bodies]}), with the API key
// as a bearer token.
//   PORT=... JWT_SECRET=... API_KEY=... node ws_server.mjs
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { bearer, envelope, verifyJwt } from './jwt.mjs';

const port = Number(process.env.PORT);
const secret = process.env.JWT_SECRET;
const apiKey = process.env.API_KEY;

const users = new Map(); // userId -> Set<WebSocket>
const all = new Set();

const reply = (res, status, body) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};

const server = http.createServer((req, res) => {
  const routes = ['/api/broadcast', '/api/broadcast-all', '/api/batch'];
  if (req.method !== 'POST' || !routes.includes(req.url)) return reply(res, 404, '{"error":"not found"}');
  if (bearer(req.headers.authorization) !== apiKey) return reply(res, 401, '{"error":"unauthorized"}');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      return reply(res, 400, '{"error":"invalid JSON"}');
    }
    let delivered = 0;
    if (req.url === '/api/broadcast-all') {
      const text = envelope(body.type, body.payload);
      for (const ws of all) { ws.send(text); delivered += 1; }
    } else {
      for (const item of req.url === '/api/batch' ? body.items : [body]) {
        const text = envelope(item.type, item.payload);
        for (const user of item.userIds ?? [item.userId]) {
          for (const ws of users.get(user) ?? []) { ws.send(text); delivered += 1; }
        }
      }
    }
    reply(res, 200, JSON.stringify({ delivered }));
  });
});

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

// A benchmark's publishers pipeline requests on long-lived connections: no idle or request
// timeouts (Node's defaults would cut them mid-run).
server.keepAliveTimeout = 0;
server.headersTimeout = 0;
server.requestTimeout = 0;
server.listen(port, '127.0.0.1', () => console.log(`listening port=${port}`));
