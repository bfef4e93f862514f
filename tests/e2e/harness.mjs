// Test harness: starts the real zena-realtime binary and talks to it with real clients.
// Tokens are signed here with Node's crypto, independently of the server's own JWT code.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

// For tests outside tests/e2e (tests/conformance), which share this folder's npm packages.
export { WebSocket };

const here = path.dirname(fileURLToPath(import.meta.url));
export const BINARY = process.env.ZENA_BINARY ?? path.resolve(here, '../../build/zena-realtime');
export const SECRET = 'e2e-secret-0123456789abcdef0123456789abcdef';
export const API_KEY = 'e2e-api-key-0123456789';

/** The seed's eight server-to-client events, each with a payload the catalog accepts. */
export const SEED_EVENTS = [
  { type: 'sync.started', payload: { accountId: 'acc-1', provider: 'gmail' } },
  { type: 'sync.progress', payload: { accountId: 'acc-1', totalThreads: 500, processedThreads: 120 } },
  { type: 'sync.completed', payload: { accountId: 'acc-1', threadsProcessed: 500, success: false, error: 'quota' } },
  { type: 'thread.new', payload: { threadId: 'thread-123', accountId: 'account-456' } },
  { type: 'thread.updated', payload: { threadId: 'thread-123', classification: 'offer', category: 'deal', nextActionOwner: 'agent' } },
  { type: 'deal.risk', payload: { dealId: 'deal-123', riskLevel: 'high', riskFlags: ['silent-buyer'], riskReason: 'No reply in 7 days' } },
  { type: 'task.created', payload: { taskId: 'task-1', label: 'Call vendor', dueDate: '2026-12-01T09:00:00.000Z', dealId: 'deal-123', source: 'ai' } },
  { type: 'ask.response', payload: { chunk: 'The offer', isComplete: true, streamId: 'q1',
    sources: [{ type: 'thread', id: 'thread-123', title: 'Offer on 12 Main St' }], suggestedActions: ['Reply'] } },
];

const b64url = (data) => Buffer.from(data).toString('base64url');

/** Signs a JWT. `header` and `claims` override the defaults; `secret`, `alg` choose the HMAC;
 * `sub: null` leaves the subject out. */
export function mintToken({ sub = 'alice', ttl = 3600, claims = {}, header = {}, secret = SECRET, alg } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const h = { alg: alg ?? 'HS256', typ: 'JWT', ...header };
  const c = { sub, iat: now, exp: now + ttl, ...claims };
  if (sub === null) delete c.sub;
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(c))}`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg ?? 'HS256'] ?? 'sha256';
  const signature = createHmac(hash, secret).update(input).digest('base64url');
  return `${input}.${signature}`;
}

/**
 * Starts the server on a free loopback port and resolves once it listens.
 * Returns { port, url(path), wsUrl(token), stop(signal), exited, output() }.
 */
export async function startServer({ env = {}, args = [], timeoutMs = 10000, wrapper = [] } = {}) {
  // `wrapper`: a command that runs the binary (e.g. ['taskset', '-c', '0']). An `env` value of
  // undefined removes a default below (e.g. ZENA_THREADS, to let the server choose).
  const command = [...wrapper, BINARY, '--host', '127.0.0.1', '--port', '0', ...args];
  const environment = Object.fromEntries(Object.entries({
      PATH: process.env.PATH,
      ZENA_JWT_SECRET: SECRET,
      ZENA_API_KEY: API_KEY,
      ZENA_THREADS: '2',
      ZENA_LOG_LEVEL: 'debug',
      // Every test comes from 127.0.0.1 and some flood on purpose: the abuse limits are lifted
      // here and tested on their own (limits.test.mjs).
      ZENA_HANDSHAKES_PER_ADDRESS_PER_SECOND: '1000000',
      ZENA_CLIENT_MESSAGES_PER_SECOND: '1000000',
      ZENA_CLIENT_MESSAGES_BURST: '100000',
      ZENA_MAX_CONNECTIONS_PER_USER: '100000',
      ...(process.env.ASAN_OPTIONS ? { ASAN_OPTIONS: process.env.ASAN_OPTIONS } : {}),
      ...(process.env.UBSAN_OPTIONS ? { UBSAN_OPTIONS: process.env.UBSAN_OPTIONS } : {}),
      ...env,
  }).filter(([, value]) => value !== undefined));
  const child = spawn(command[0], command.slice(1), { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), timeoutMs);
    const check = () => {
      const m = output.match(/listening host=\S+ port=(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${output}`)); });
  });

  return {
    port,
    child,
    exited,
    output: () => output,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    wsUrl: (token) => `ws://127.0.0.1:${port}/ws${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const result = await exited;
      // Sanitizer reports go to stderr; a test run under ASan/UBSan fails on any.
      if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(output)) {
        throw new Error(`sanitizer report in server output:\n${output}`);
      }
      return result;
    },
  };
}

/** A WebSocket client that buffers messages so tests can await them in order. */
export class Client {
  /** `protocols`: the Sec-WebSocket-Protocol list to offer, if any. */
  constructor(url, options = {}, protocols = undefined) {
    this.ws = protocols === undefined ? new WebSocket(url, options) : new WebSocket(url, protocols, options);
    this.messages = [];
    this.waiters = [];
    this.pings = 0;
    this.ws.on('message', (data, isBinary) => {
      const text = isBinary ? data : data.toString();
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(text); else this.messages.push(text);
    });
    this.ws.on('ping', () => { this.pings += 1; });
    const closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.closed = closed;
    this.ws.on('error', () => {});
    this.opened = withTimeout(once(this.ws, 'open'), 5000, 'open');
    this.opened.catch(() => {}); // awaited only by tests that expect an open

  }

  /** Next message as parsed JSON; rejects after `timeoutMs`. */
  next(timeoutMs = 3000) {
    if (this.messages.length) return Promise.resolve(JSON.parse(this.messages.shift()));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (text) => { clearTimeout(timer); resolve(JSON.parse(text)); },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error('no message within timeout'));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Next message as a seed client reads it: `type` and `payload` only (the channel, epoch and
   * seq of docs/channels.md left out). */
  async nextSeed(timeoutMs = 3000) {
    const { type, payload } = await this.next(timeoutMs);
    return { type, payload };
  }

  /** Resolves { code, reason } when the connection closes; rejects after `timeoutMs`. */
  waitClosed(timeoutMs = 3000) { return withTimeout(this.closed, timeoutMs, 'close'); }

  send(value) { this.ws.send(typeof value === 'string' ? value : JSON.stringify(value)); }
  close() { this.ws.close(); return this.waitClosed(); }
}

/** Connects a user and resolves after the welcome message, which it returns as `welcome`. */
export async function connectUser(server, user, options = {}) {
  const client = new Client(server.wsUrl(mintToken({ sub: user })), options);
  client.welcome = await client.next();
  return client;
}

/** Calls the server API; resolves { status, body, headers }. */
export async function api(server, method, route, body, { key = API_KEY, raw } = {}) {
  const res = await fetch(server.url(route), {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** The value of one Prometheus metric from /metrics, or undefined when it is absent. */
export async function metric(server, name) {
  const text = await (await fetch(server.url('/metrics'))).text();
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); // labels: name{sink="webhook"}
  const m = text.match(new RegExp(`^${escaped} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

/** Polls `fn` until it returns truthy or `timeoutMs` passes. */
export async function waitFor(fn, timeoutMs = 3000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Rejects when `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref(); // a pending wait must not keep the test process alive
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free loopback TCP port (bound and released at once). */
export async function freePort() {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  probe.close();
  await once(probe, 'close');
  return port;
}

/**
 * Starts a real redis-server (Debian's, installed by scripts/install-deps.sh --test) on a
 * loopback port, with no persistence. `port` reuses a given port (to restart one). Returns
 * { port, pid, url, pause(), resume(), stop() }: pause() stops the process (SIGSTOP: its data
 * stays, its sockets stay open and unanswered) until resume() (SIGCONT). stop() ends it, paused
 * or not, and the process is killed when the test process exits without stopping it.
 */
export async function startRedis({ port, timeoutMs = 10000 } = {}) {
  const redisPort = port ?? (await freePort());
  const child = spawn(process.env.REDIS_SERVER ?? 'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = once(child, 'exit');
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), timeoutMs);
    const check = () => { if (/Ready to accept connections/.test(output)) { clearTimeout(timer); resolve(); } };
    child.stdout.on('data', check);
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run redis-server: ${e.message}`)); });
    exited.then(() => { clearTimeout(timer); reject(new Error(`redis-server exited:\n${output}`)); });
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const killOnExit = () => { if (running()) child.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  return {
    port: redisPort,
    pid: child.pid,
    url: `redis://127.0.0.1:${redisPort}`,
    pause() { if (running()) child.kill('SIGSTOP'); },
    resume() { if (running()) child.kill('SIGCONT'); },
    async stop() {
      if (running()) {
        child.kill('SIGCONT'); // a paused server would hold SIGTERM until continued
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => { if (running()) child.kill('SIGKILL'); }, 5000);
      await exited;
      clearTimeout(timer);
      process.off('exit', killOnExit);
    },
  };
}

/** The admin password of the nodes startNodes starts (their page at / is enabled). */
export const CLUSTER_ADMIN_PASSWORD = 'cluster admin password';

/**
 * Starts one node per name, on engine redis with the Redis instances of `redisUrls` (one:
 * ZENA_REDIS_URL; several: ZENA_REDIS_URLS), each with that node id, a 500 ms Redis timeout and
 * its admin page enabled; `extra` adds to (or overrides) their environment.
 */
export async function startNodes(redisUrls, names, extra = {}) {
  const env = (name) => ({
    ZENA_ENGINE: 'redis',
    ...(redisUrls.length === 1 ? { ZENA_REDIS_URL: redisUrls[0] } : { ZENA_REDIS_URLS: redisUrls.join(',') }),
    ZENA_NODE_ID: name,
    ZENA_REDIS_TIMEOUT_MS: '500',
    ZENA_ADMIN_ENABLED: 'true',
    ZENA_ADMIN_PASSWORD: CLUSTER_ADMIN_PASSWORD,
    ...extra,
  });
  return Promise.all(names.map((name) => startServer({ env: env(name) })));
}

// ---- Channels, history and recovery (docs/channels.md)

/** `<epoch>:<seq>`, the wire form of a position. */
export const position = (p) => `${p.epoch}:${p.seq}`;

/** The history route of a channel, its name percent-encoded. `query`: e.g. { since, limit }. */
export function historyRoute(channel, query = {}) {
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined)).toString();
  return `/api/channels/${encodeURIComponent(channel)}/history${qs ? `?${qs}` : ''}`;
}

/** The WebSocket URL for a token, with `?since=` when given. */
export function wsUrlSince(server, token, since) {
  const base = server.wsUrl(token);
  return since === undefined ? base : `${base}&since=${encodeURIComponent(since)}`;
}

/**
 * Connects `sub` with a token carrying `claims` (e.g. { channels: ['deal:*'] }), presenting
 * `since` when given; resolves after the welcome, which it keeps as `welcome`.
 */
export async function connectChannels(server, sub, { claims = {}, since, options = {} } = {}) {
  const client = new Client(wsUrlSince(server, mintToken({ sub, claims }), since), options);
  client.welcome = await client.next(5000);
  if (client.welcome.type !== 'connected') throw new Error(`expected the welcome, got ${JSON.stringify(client.welcome)}`);
  return client;
}

/** Sends a subscribe and resolves the answer (the next message). */
export async function subscribe(client, channel, extra = {}, timeoutMs = 3000) {
  client.send({ type: 'subscribe', payload: { channel, ...extra } });
  return client.next(timeoutMs);
}

/** Resolves the next `count` messages, in order. */
export async function nextN(client, count, timeoutMs = 3000) {
  const out = [];
  for (let i = 0; i < count; i += 1) out.push(await client.next(timeoutMs));
  return out;
}

/** A catalog file: the shipped one, changed by `mutate(catalog)`; returns its path. */
export function writeCatalog(mutate) {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-catalog-'));
  const catalog = JSON.parse(readFileSync(path.resolve(here, '../../catalog/events.json'), 'utf8'));
  mutate(catalog);
  const file = path.join(dir, 'events.json');
  writeFileSync(file, JSON.stringify(catalog));
  return file;
}

/** A config file with `text` as its TOML; returns its path. */
export function writeConfig(text) {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-config-'));
  const file = path.join(dir, 'zena.toml');
  writeFileSync(file, text);
  return file;
}

/**
 * A real HTTP server on loopback that records every request ({ method, url, headers, body }) and
 * answers with `respond(request)` → { status, body, delayMs } (or nothing: 200), or never when it
 * returns { hang: true }. Returns { url(path), received, close() }.
 */
export async function httpReceiver(respond = () => ({ status: 200 })) {
  const received = [];
  const hanging = new Set();
  const server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const request = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
      received.push(request);
      const answer = respond(request) ?? {};
      if (answer.hang) { hanging.add(res); return; }
      setTimeout(() => {
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
        res.end(answer.body ?? '');
      }, answer.delayMs ?? 0);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    port,
    received,
    url: (p = '/') => `http://127.0.0.1:${port}${p}`,
    close: () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A publisher over HTTP/1.1 keep-alive with at most `sockets` requests in flight (node:http, one
 * Agent): `post(route, body)` resolves { status, body }. `close()` ends its sockets.
 */
export function keepAlivePublisher(server, { sockets = 4, key = API_KEY } = {}) {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: sockets });
  const post = (route, value, method = 'POST') => new Promise((resolve, reject) => {
    const data = value === undefined ? undefined : Buffer.from(JSON.stringify(value));
    const req = httpRequest({
      host: '127.0.0.1', port: server.port, path: route, method, agent,
      headers: { authorization: `Bearer ${key}`, ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body;
        try { body = JSON.parse(text); } catch { body = text; }
        resolve({ status: res.statusCode, body });
      });
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${route} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
  return { post, close: () => agent.destroy() };
}

/** HMAC-SHA256 signature header value of `body` with `secret`, as the server signs. */
export const signature = (body, secret) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** Serves `html()` at / and the built client SDK (clients/js/dist) under /sdk/, on loopback, for
 * the headless-browser tests. Resolves { url, close }. */
export async function sdkPageServer(html) {
  const sdkDir = path.resolve(here, '../../clients/js/dist');
  const server = createHttpServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(html());
    }
    const file = path.join(sdkDir, path.normalize(req.url.replace(/^\/sdk\//, '')));
    if (!req.url.startsWith('/sdk/') || !file.startsWith(sdkDir)) { res.writeHead(404); return res.end(); }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/**
 * An HTTP call through node:http, which (unlike fetch) sends the headers it is given as they are
 * (Origin, Cookie); resolves { status, body (parsed JSON, or the text), headers }.
 */
export function httpCall(server, method, route, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = httpRequest(server.url(route), {
      method,
      headers: { ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let parsed;
        try { parsed = JSON.parse(text); } catch { parsed = text; }
        resolve({ status: res.statusCode, body: parsed, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    if (data !== undefined) req.write(data);
    req.end();
  });
}
