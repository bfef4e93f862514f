// Peer 2 of the benchmark: Bun.serve, whose WebSocket server is uWebSockets, used the way Bun
// documents it: every connection subscribes to its user's topic and to one for everyone, and a
// publish is server.publish(topic) (uWS's pub/sub fan-out). Same `connected` welcome, same JWT
// check, same HTTP API as the ws peer. Bun pings idle connections itself (idleTimeout 120 s).
// With DEFLATE=1 it negotiates permessage-deflate and publishes compressed (the benchmark's
// fanout_deflate scenario); otherwise it runs as Bun does by default, without compression.
//   PORT=... JWT_SECRET=... API_KEY=... [DEFLATE=1] bun bun_server.mjs
import { bearer, envelope, verifyJwt } from './jwt.mjs';

const port = Number(process.env.PORT);
const secret = process.env.JWT_SECRET;
const apiKey = process.env.API_KEY;
const deflate = process.env.DEFLATE === '1';
const json = (status, body) => new Response(body, { status, headers: { 'Content-Type': 'application/json' } });

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  async fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname === '/ws') {
      const user = verifyJwt(bearer(req.headers.get('authorization')) || url.searchParams.get('token') || '', secret);
      if (!user) return json(401, '{"error":"invalid token"}');
      return srv.upgrade(req, { data: { user } }) ? undefined : json(400, '{"error":"upgrade failed"}');
    }
    const routes = ['/api/broadcast', '/api/broadcast-all', '/api/batch'];
    if (req.method !== 'POST' || !routes.includes(url.pathname)) return json(404, '{"error":"not found"}');
    if (bearer(req.headers.get('authorization')) !== apiKey) return json(401, '{"error":"unauthorized"}');
    const body = await req.json();
    let delivered = 0;
    if (url.pathname === '/api/broadcast-all') {
      srv.publish('all', envelope(body.type, body.payload), deflate);
      delivered = srv.subscriberCount('all');
    } else {
      for (const item of url.pathname === '/api/batch' ? body.items : [body]) {
        const text = envelope(item.type, item.payload);
        for (const user of item.userIds ?? [item.userId]) {
          srv.publish(`user:${user}`, text, deflate);
          delivered += 1;
        }
      }
    }
    return json(200, JSON.stringify({ delivered }));
  },
  websocket: {
    idleTimeout: 120,
    perMessageDeflate: deflate,
    sendPings: true,
    open(ws) {
      ws.subscribe('all');
      ws.subscribe(`user:${ws.data.user}`);
      ws.send(envelope('connected', { userId: ws.data.user, serverTime: Date.now() }));
    },
    message() {},
  },
});
console.log(`listening port=${server.port}`);
