// The part of zena-realtime's HTTP API the load generator uses, for the Node peers (ws_server.mjs,
// sio_server.mjs): POST /api/broadcast ({userId} or {userIds}), /api/broadcast-all and /api/batch
// ({"items": [broadcast bodies]}), with the API key as a bearer token. Each request becomes a list
// of messages, {all: true, type, payload} or {users: [...], type, payload}, handed to
// `publish(messages)`, which answers (or resolves to) the reply's body.
import http from 'node:http';
import { bearer } from './jwt.mjs';

const ROUTES = ['/api/broadcast', '/api/broadcast-all', '/api/batch'];

const reply = (res, status, body) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};

export function apiServer(apiKey, publish) {
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || !ROUTES.includes(req.url)) return reply(res, 404, '{"error":"not found"}');
    if (bearer(req.headers.authorization) !== apiKey) return reply(res, 401, '{"error":"unauthorized"}');
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        return reply(res, 400, '{"error":"invalid JSON"}');
      }
      const messages = req.url === '/api/broadcast-all'
        ? [{ all: true, type: body.type, payload: body.payload }]
        : (req.url === '/api/batch' ? body.items : [body])
          .map((item) => ({ users: item.userIds ?? [item.userId], type: item.type, payload: item.payload }));
      try {
        reply(res, 200, JSON.stringify(await publish(messages)));
      } catch (e) {
        reply(res, 503, JSON.stringify({ error: String(e?.message ?? e) }));
      }
    });
  });
  // A benchmark's publishers pipeline requests on long-lived connections: no idle or request
  // timeouts (Node's defaults would cut them mid-run).
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  return server;
}
