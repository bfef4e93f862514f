// The webhook's throughput through the upstream HTTP client (docs/upstream.md, "The HTTP
// client"): one connection sends N client events, the server POSTs each to a local receiver,
// one at a time, and the time until the receiver has them all is measured. Four runs: http and
// https (a CA and a certificate for 127.0.0.1 made here with the openssl CLI, trusted through
// upstream.tls_ca_file), each with the connection kept alive and with a receiver that closes
// every connection (what a client without keep-alive costs: a connect, and a TLS handshake, per
// event).
//
//   ZENA_BINARY=build/zena-realtime node bench/webhook.mjs [--events 2000]
//
// Prints one line per run: events, milliseconds, events per second, connections the receiver saw.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectUser, startServer, waitFor } from '../tests/e2e/harness.mjs';
import { makeCa, makeLeaf } from '../tests/e2e/test_ca.mjs';

const { values } = parseArgs({ options: { events: { type: 'string', default: '2000' } } });
const events = Math.min(Math.max(Number(values.events) || 2000, 1), 1_000_000);

const dir = mkdtempSync(path.join(tmpdir(), 'zena-bench-webhook-'));
try {
  const ca = makeCa(dir, 'bench-ca');
  const leaf = makeLeaf(dir, 'receiver', 'bench-ca', 'IP:127.0.0.1');

  for (const [scheme, closeEach] of [['http', false], ['https', false], ['http', true], ['https', true]]) {
    let received = 0;
    let connections = 0;
    const handler = (req, res) => {
      req.resume();
      req.on('end', () => {
        received += 1;
        if (closeEach) res.setHeader('connection', 'close');
        res.writeHead(200);
        res.end();
      });
    };
    const receiver = scheme === 'https'
      ? createHttps(leaf, handler)
      : createHttp(handler);
    receiver.on(scheme === 'https' ? 'secureConnection' : 'connection', () => { connections += 1; });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const server = await startServer({
      env: {
        ZENA_LOG_LEVEL: 'info', // the harness waits for the "listening" line
        ZENA_WEBHOOK_URL: `${scheme}://127.0.0.1:${receiver.address().port}/events`,
        ZENA_UPSTREAM_TLS_CA_FILE: ca,
        ZENA_UPSTREAM_ROUTES: 'presence.online=none,presence.offline=none,*=webhook',
        ZENA_WEBHOOK_MAX_QUEUE: String(events),
      },
    });
    try {
      const client = await connectUser(server, 'alice');
      const start = process.hrtime.bigint();
      for (let i = 0; i < events; i += 1) client.send({ type: 'sync.request', payload: {} });
      await waitFor(() => received >= events, 600_000, `${events} events at the receiver`);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      console.log(`${scheme}${closeEach ? ' (receiver closes each connection)' : ' (kept alive)'}: ${events} events in ` +
        `${ms.toFixed(0)} ms = ${Math.round((events / ms) * 1000)}/s over ${connections} connection(s)`);
      await client.close();
    } finally {
      await server.stop();
      receiver.closeAllConnections();
      receiver.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
