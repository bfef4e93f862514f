// deploy/nginx/zena-realtime.conf as documented (docs/deployment.md#behind-nginx), run by a real
// nginx in front of two nodes: only the upstream addresses and the listen port are replaced.
// WebSocket clients connect through it and receive events published through Redis on whichever
// node they landed, and the per-address limit counts the browser's address (X-Forwarded-For)
// only when the nodes trust the proxy (server.trusted_proxies).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import WebSocket from 'ws';
import { Client, SEED_EVENTS, freePort, mintToken, startRedis, startServer, waitFor } from './harness.mjs';

const NGINX = process.env.NGINX ?? '/usr/sbin/nginx';
const documented = readFileSync(new URL('../../deploy/nginx/zena-realtime.conf', import.meta.url), 'utf8');

// The documented file with the test's node ports and listen port; everything else as written.
function configFor(ports, listenPort) {
  let upstreams = 0;
  const text = documented
    .replace(/server 127\.0\.0\.1:\d+ /g, () => `server 127.0.0.1:${ports[upstreams++]} `)
    .replace(/listen 80;/, `listen 127.0.0.1:${listenPort};`);
  assert.equal(upstreams, 2, 'the documented upstream has two nodes');
  assert.ok(text.includes(`listen 127.0.0.1:${listenPort};`), 'the listen line was found');
  return text;
}

// nginx as an unprivileged process with its own prefix: `daemon off`, logs and temp files in `dir`.
async function startNginx(ports) {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-nginx-'));
  const port = await freePort();
  for (const sub of ['logs', 'tmp']) mkdirSync(path.join(dir, sub));
  writeFileSync(path.join(dir, 'zena-realtime.conf'), configFor(ports, port));
  writeFileSync(path.join(dir, 'nginx.conf'), `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${dir}/zena-realtime.conf;
}
`);
  // Run as nobody when the tests run as root: nginx needs no privilege here.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    for (const p of [dir, path.join(dir, 'logs'), path.join(dir, 'tmp')]) chownSync(p, 65534, 65534);
    chmodSync(dir, 0o755);
  }
  const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'logs/error.log')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = once(child, 'exit');
  child.once('error', (e) => { output += `cannot run ${NGINX}: ${e.message}`; });
  await waitFor(() => new Promise((resolve) => {
    if (child.exitCode !== null) throw new Error(`nginx exited:\n${output}`);
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 10000, `nginx listening\n${output}`);
  return {
    port,
    wsUrl: (token) => `ws://127.0.0.1:${port}/ws?token=${encodeURIComponent(token)}`,
    errors: () => { try { return readFileSync(path.join(dir, 'logs/error.log'), 'utf8'); } catch { return ''; } },
    async stop() {
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A handshake through the proxy from `localAddress`; resolves { status, ws }.
function handshake(url, localAddress) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { localAddress });
    ws.on('upgrade', () => resolve({ status: 101, ws }));
    ws.on('unexpected-response', (req, res) => { resolve({ status: res.statusCode }); req.destroy(); });
    ws.on('error', () => resolve({ status: 0 }));
  });
}

async function twoNodes(redis, env) {
  const nodes = [];
  for (let i = 0; i < 2; i += 1) {
    nodes.push(await startServer({ env: { ZENA_REDIS_URL: redis.url, ZENA_THREADS: '1', ...env } }));
  }
  return nodes;
}

describe('nginx in front of two nodes', () => {
  let redis;
  let rc;
  before(async () => {
    redis = await startRedis();
    rc = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
    rc.on('error', () => {});
    await rc.connect();
  });
  after(async () => {
    await rc.quit();
    await redis.stop();
  });

  test('Nginx.ClientsThroughTheProxy_LandOnBothNodes_AndReceivePublishedEvents', async () => {
    const nodes = await twoNodes(redis, { ZENA_TRUSTED_PROXIES: '127.0.0.1' });
    const proxy = await startNginx(nodes.map((n) => n.port));
    const clients = [];
    try {
      await waitFor(async () => (await rc.pubSubNumSub('zena:publish'))['zena:publish'] === 2, 5000, 'both nodes subscribed');
      for (let i = 0; i < 4; i += 1) {
        const c = new Client(proxy.wsUrl(mintToken({ sub: `user${i}` })));
        c.welcome = await c.next(5000);
        assert.equal(c.welcome.type, 'connected');
        clients.push(c);
      }
      // least_conn spreads them: each node holds some.
      for (const node of nodes) {
        await waitFor(async () => /zena_connections (\d+)/.exec(await (await fetch(node.url('/metrics'))).text())?.[1] === '2',
          3000, 'two connections on each node');
      }
      for (const [i, c] of clients.entries()) {
        const event = SEED_EVENTS[i % SEED_EVENTS.length];
        await rc.publish('zena:publish', JSON.stringify({ userId: `user${i}`, ...event }));
        assert.deepEqual(await c.nextSeed(5000), event, `user${i} got its event through the proxy`);
      }
      // /metrics is not served through the proxy.
      assert.equal((await fetch(`http://127.0.0.1:${proxy.port}/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${proxy.port}/healthz`)).status, 200);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      for (const c of clients) c.ws.terminate();
      await proxy.stop();
      for (const n of nodes) await n.stop();
    }
  });

  test('Nginx.TrustedProxy_LimitsCountTheBrowsersAddress', async () => {
    const nodes = await twoNodes(redis, { ZENA_TRUSTED_PROXIES: '127.0.0.1', ZENA_MAX_CONNECTIONS_PER_ADDRESS: '1' });
    const proxy = await startNginx(nodes.map((n) => n.port));
    const open = [];
    try {
      // Three browsers on three addresses: each is its own client on whichever node.
      for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
        const r = await handshake(proxy.wsUrl(mintToken({ sub: 'u' })), address);
        assert.equal(r.status, 101, `${address} connects`);
        open.push(r.ws);
      }
      // With the limit at 1, two nodes could not have held three connections from nginx's own
      // address: the nodes counted the browsers. 127.0.0.2 again, twice (one connection per node
      // at most): at least one is refused, under the browser's address.
      const second = await handshake(proxy.wsUrl(mintToken({ sub: 'u' })), '127.0.0.2');
      if (second.ws) open.push(second.ws);
      const third = await handshake(proxy.wsUrl(mintToken({ sub: 'u' })), '127.0.0.2');
      if (third.ws) open.push(third.ws);
      // Which node takes each depends on least_conn; the node that holds 127.0.0.2 refuses it.
      assert.ok([second.status, third.status].includes(429), `statuses ${second.status}, ${third.status}`);
      assert.ok([second.status, third.status].every((st) => st === 101 || st === 429));
      await waitFor(() => /handshake refused reason="too many connections from this address" address=127\.0\.0\.2/
        .test(nodes.map((n) => n.output()).join('\n')), 3000, 'the refusal names the browser');
      assert.doesNotMatch(nodes.map((n) => n.output()).join('\n'), /address=127\.0\.0\.1\b/);
    } finally {
      for (const ws of open) ws.terminate();
      await proxy.stop();
      for (const n of nodes) await n.stop();
    }
  });

  test('Nginx.UntrustedProxy_EveryBrowserSharesTheProxysAddress', async () => {
    const nodes = await twoNodes(redis, { ZENA_MAX_CONNECTIONS_PER_ADDRESS: '1' });
    const proxy = await startNginx(nodes.map((n) => n.port));
    const open = [];
    try {
      const statuses = [];
      for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
        const r = await handshake(proxy.wsUrl(mintToken({ sub: 'u' })), address);
        statuses.push(r.status);
        if (r.ws) open.push(r.ws);
      }
      // Each node sees only 127.0.0.1 (nginx): one connection per node, then 429.
      assert.deepEqual(statuses, [101, 101, 429]);
      const logs = () => nodes.map((n) => n.output()).join('\n');
      await waitFor(() => /handshake refused reason="too many connections from this address" address=127\.0\.0\.1\b/
        .test(logs()), 3000, 'the refusal names the proxy');
      assert.doesNotMatch(logs(), /address=127\.0\.0\.[234]/);
    } finally {
      for (const ws of open) ws.terminate();
      await proxy.stop();
      for (const n of nodes) await n.stop();
    }
  });

  test('Nginx.RollingRestart_ClientsOfTheStoppedNodeReconnectThroughTheProxy_AndReceiveEvents', async () => {
    const nodes = await twoNodes(redis, { ZENA_TRUSTED_PROXIES: '127.0.0.1', ZENA_SHUTDOWN_DRAIN_MS: '2000' });
    const proxy = await startNginx(nodes.map((n) => n.port));
    const clients = [];
    try {
      await waitFor(async () => (await rc.pubSubNumSub('zena:publish'))['zena:publish'] === 2, 5000, 'both nodes subscribed');
      for (const user of ['ann', 'bob']) {
        const c = new Client(proxy.wsUrl(mintToken({ sub: user })));
        c.welcome = await c.next(5000);
        clients.push(c);
      }
      const onFirst = /connection opened conn=\d+ user=(\w+)/.exec(nodes[0].output())[1];
      const moved = clients.find((c) => c.welcome.payload.userId === onFirst);
      // Step 1 of docs/deployment.md#rolling-restart-without-losing-events: SIGTERM drains the node.
      const port = nodes[0].port;
      await nodes[0].stop('SIGTERM');
      assert.equal((await moved.waitClosed(5000)).code, 1001);
      // Step 2: the client reconnects through the proxy, which sends it to the running node.
      const back = new Client(proxy.wsUrl(mintToken({ sub: onFirst })));
      back.welcome = await back.next(5000);
      assert.equal(back.welcome.type, 'connected');
      await rc.publish('zena:publish', JSON.stringify({ userId: onFirst, ...SEED_EVENTS[0] }));
      assert.deepEqual(await back.nextSeed(5000), SEED_EVENTS[0], 'delivered by the node that kept running');
      // The node comes back on its port and takes connections again.
      nodes[0] = await startServer({ env: { ZENA_REDIS_URL: redis.url, ZENA_THREADS: '1', ZENA_TRUSTED_PROXIES: '127.0.0.1' },
        args: ['--port', String(port)] });
      await waitFor(async () => (await fetch(nodes[0].url('/readyz'))).status === 200, 5000, 'the restarted node ready');
      clients.push(back);
    } finally {
      for (const c of clients) c.ws.terminate();
      await proxy.stop();
      for (const n of nodes) await n.stop();
    }
  });
});
