// A property test under chaos (docs/channels.md): 100 clients, each on its personal channel and
// 3 of 20 shared channels, while a publisher sends 10,000 events (ordered thread.new, latest
// sync.progress keyed by accountId) and a chaos loop cuts sockets, and stalls readers until the
// server closes them with 4000 (slow consumer). Every client resumes with its positions (the
// personal channel by ?since=, the others by subscribe since). At the end each client holds
// exactly the ordered events of its channels, in order, with no gap and no duplicate, every
// latest key at its newest value, and recovered:false never happened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket, keepAlivePublisher, mintToken, position, sleep, startServer, waitFor, withTimeout, wsUrlSince } from './harness.mjs';

// Channel presence (docs/presence.md, tested in presence.test.mjs) is off here: its join and leave
// messages would interleave with the exact sequences these tests check.
const QUIET = { ZENA_CHANNELS_PRESENCE: 'false' };

const USERS = 100;
const SHARED = 20;
const PER_USER = 3;
const EVENTS = Number(process.env.CHAOS_EVENTS ?? 10000);
const RATE = Number(process.env.CHAOS_RATE ?? 800); // events a second, so the chaos has time to act
const CONCURRENCY = Number(process.env.CHAOS_CONCURRENCY ?? 8); // publisher connections (on both server threads)
const KEYS = ['acc-0', 'acc-1', 'acc-2', 'acc-3', 'acc-4'];
const MAX_PAUSES = 12;
const FILLER = 'f'.repeat(32 * 1024);
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 100000);
// The share of latest (sync.progress) events; 0 leaves only ordered ones (to tell a failure of
// the ordered path from one of coalescing).
const LATEST_SHARE = Number(process.env.CHAOS_LATEST_SHARE ?? 0.25);

// A small deterministic PRNG (mulberry32), so a failing run can be repeated with CHAOS_SEED.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const pick = (list) => list[Math.floor(random() * list.length)];
// A wait that does not keep the process alive once the test is over.
const timeout = (ms, value) => new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());

const idOf = (type, payload) => {
  if (type === 'thread.new') return payload.threadId;
  if (type === 'sync.progress') return `p${payload.processedThreads}`;
  return payload.streamId;
};

// What the publisher's API answers said: per channel, seq -> { type, id, key }.
class Ledger {
  constructor() { this.channels = new Map(); }
  add(channel, seq, type, payload) {
    if (!this.channels.has(channel)) this.channels.set(channel, new Map());
    const map = this.channels.get(channel);
    assert.ok(!map.has(seq), `the server gave ${channel} seq ${seq} twice`);
    map.set(seq, { type, id: idOf(type, payload), key: type === 'sync.progress' ? payload.accountId : undefined });
  }
  top(channel) { return Math.max(0, ...(this.channels.get(channel)?.keys() ?? [])); }
  ordered(channel) {
    return [...(this.channels.get(channel) ?? new Map()).entries()].filter(([, e]) => !e.key).map(([s]) => s).sort((a, b) => a - b);
  }
  newest(channel) {
    const out = new Map();
    for (const [seq, e] of this.channels.get(channel) ?? new Map()) {
      if (e.key && (!out.has(e.key) || out.get(e.key).seq < seq)) out.set(e.key, { seq, id: e.id });
    }
    return out;
  }
}

// One user's client: a real WebSocket, reconnected with its positions after every end.
class ChaosClient {
  constructor(server, index, stats) {
    this.server = server;
    this.user = `u${index}`;
    this.own = `user:${this.user}`;
    const shared = new Set();
    while (shared.size < PER_USER) shared.add(`room:${Math.floor(random() * SHARED)}`);
    this.shared = [...shared];
    this.channels = [this.own, ...this.shared];
    this.positions = {};
    this.log = Object.fromEntries(this.channels.map((c) => [c, []])); // [seq, type, id, key]
    this.violations = [];
    this.stats = stats;
    this.state = 'new';
    this.connections = 0;
  }

  violation(text) {
    if (this.violations.length < 20) this.violations.push(`${this.user}: ${text}`);
  }

  onEvent(m) {
    const log = this.log[m.channel];
    if (!log) return this.violation(`an event of ${m.channel}, not one of its channels`);
    if (typeof m.seq !== 'number' || typeof m.epoch !== 'string') return this.violation(`no position: ${JSON.stringify(m).slice(0, 200)}`);
    const p = this.positions[m.channel];
    if (p && p.epoch !== m.epoch) this.violation(`${m.channel}: epoch ${m.epoch} after ${p.epoch}`);
    if (p && m.seq <= p.seq) {
      const before = log.at(-1);
      this.violation(`${m.channel}: ${m.type} seq ${m.seq} after ${before?.[1]} seq ${p.seq} (duplicate or out of order)`);
    }
    log.push([m.seq, m.type, idOf(m.type, m.payload), m.type === 'sync.progress' ? m.payload.accountId : undefined]);
    // The position is the last event the client has (docs/channels.md).
    this.positions[m.channel] = { epoch: m.epoch, seq: m.seq };
  }

  // Connects with its positions and subscribes its shared channels; resolves once every answer
  // is in. `first`: nothing is known yet (before the publisher starts).
  async connect() {
    this.state = 'connecting';
    const since = this.positions[this.own] && position(this.positions[this.own]);
    const ws = new WebSocket(wsUrlSince(this.server, mintToken({ sub: this.user, claims: { channels: ['room:*'] } }), since));
    this.ws = ws;
    this.connections += 1;
    const pending = new Set(this.shared);
    const seen = []; // the first messages, for a connection that never gets ready
    const opened = Date.now();
    let ready;
    const subscribedAll = new Promise((resolve) => { ready = resolve; });
    ws.on('message', (data) => {
      if (this.ws !== ws) return; // a socket the client has given up on (it resumes from its positions)
      const m = JSON.parse(data.toString());
      if (seen.length < 8) seen.push(m.type === 'subscribed' ? `subscribed ${m.payload.channel}` : m.type);
      switch (m.type) {
        case 'connected':
          if (since) {
            this.stats.resumes += 1;
            this.stats.replayed += m.payload.missed ?? 0;
            if (m.payload.recovered !== true) { this.stats.lost += 1; this.violation(`welcome not recovered: ${JSON.stringify(m.payload)}`); }
          } else {
            if (m.payload.seq !== 0) this.violation(`first welcome at seq ${m.payload.seq}`);
            this.positions[this.own] = { epoch: m.payload.epoch, seq: m.payload.seq };
          }
          for (const channel of this.shared) {
            const p = this.positions[channel];
            ws.send(JSON.stringify({ type: 'subscribe', payload: { channel, ...(p ? { since: position(p) } : {}) } }));
          }
          break;
        case 'subscribed':
          if (this.positions[m.payload.channel]) {
            this.stats.resumes += 1;
            this.stats.replayed += m.payload.missed ?? 0;
            if (m.payload.recovered !== true) { this.stats.lost += 1; this.violation(`subscribe not recovered: ${JSON.stringify(m.payload)}`); }
          } else {
            if (m.payload.seq !== 0) this.violation(`first subscribe at seq ${m.payload.seq}`);
            this.positions[m.payload.channel] = { epoch: m.payload.epoch, seq: m.payload.seq };
          }
          pending.delete(m.payload.channel);
          if (pending.size === 0) ready();
          break;
        case 'subscribe.error':
          this.violation(`subscribe refused: ${JSON.stringify(m.payload)}`);
          break;
        case 'unsubscribed':
          this.violation(`unsubscribed: ${JSON.stringify(m.payload)}`);
          break;
        case 'connection.behind':
          this.stats.behind += 1;
          break;
        default:
          this.onEvent(m);
      }
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    this.closed.then((code) => {
      if (this.ws !== ws) return;
      this.stats.closes[code] = (this.stats.closes[code] ?? 0) + 1;
      this.state = 'closed';
    });
    const outcome = await Promise.race([
      subscribedAll.then(() => 'ready'),
      this.closed.then(() => 'closed'),
      timeout(10000, 'timeout'),
    ]);
    if (outcome === 'ready') this.state = 'open';
    else {
      this.stats.stuck.push(`${this.user} ${outcome} after ${Date.now() - opened} ms, readyState ${ws.readyState}, since ${since}, got ${JSON.stringify(seen)}, waiting for ${JSON.stringify([...pending])}`);
      ws.terminate();
    }
    return outcome === 'ready';
  }

  // Connects, retrying a bounded number of times.
  async reconnect() {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      if (await this.connect()) return;
      this.stats.failedConnects += 1;
      await sleep(50 * (attempt + 1));
    }
    throw new Error(`${this.user} could not reconnect`);
  }
}

test('Chaos.EveryClientEndsWithExactlyItsEvents_InOrder_NoGapNoDuplicate', { timeout: 150000 }, async () => {
  const started = Date.now();
  const server = await startServer({
    env: {
      ...QUIET,
      ZENA_LOG_LEVEL: 'info',
      ZENA_THREADS: '2',
      ZENA_CHANNELS_HISTORY_SIZE: '20000',
      ZENA_CHANNELS_HISTORY_MAX_BYTES: String(1 << 30),
      ZENA_SEND_QUEUE_MAX_BYTES: '65536',
      ZENA_HTTP_MAX_BODY_BYTES: String(8 << 20),
      ZENA_CLOSE_TIMEOUT_MS: '500',
    },
  });
  const stats = { resumes: 0, replayed: 0, lost: 0, behind: 0, closes: {}, terminations: 0, graceful: 0, pauses: 0, floodEvents: 0, failedConnects: 0, stuck: [] };
  const ledger = new Ledger();
  const publisher = keepAlivePublisher(server, { sockets: CONCURRENCY });
  const clients = Array.from({ length: USERS }, (_, i) => new ChaosClient(server, i, stats));
  try {
    await Promise.all(clients.map((c) => c.reconnect()));
    assert.ok(clients.every((c) => c.state === 'open'));
    const setupMs = Date.now() - started;

    // The publisher: EVENTS publishes, CONCURRENCY at a time over keep-alive, paced to RATE.
    const sharedNames = Array.from({ length: SHARED }, (_, i) => `room:${i}`);
    let next = 0;
    let refused = 0;
    const publishStart = Date.now();
    const worker = async () => {
      for (;;) {
        const i = next;
        next += 1;
        if (i >= EVENTS) return;
        const wait = publishStart + (i * 1000) / RATE - Date.now();
        if (wait > 0) await sleep(wait);
        const channel = random() < 0.4 ? `user:u${Math.floor(random() * USERS)}` : pick(sharedNames);
        const event = random() >= LATEST_SHARE
          ? { type: 'thread.new', payload: { threadId: `e${i}`, accountId: pick(KEYS) } }
          : { type: 'sync.progress', payload: { accountId: pick(KEYS), totalThreads: EVENTS, processedThreads: i } };
        const res = await publisher.post('/api/publish', { channel, ...event });
        if (res.status !== 200) { refused += 1; continue; }
        ledger.add(res.body.channel, res.body.seq, event.type, event.payload);
      }
    };
    let publishing = true;
    const publishers = Promise.all(Array.from({ length: CONCURRENCY }, worker)).finally(() => { publishing = false; });

    // A stalled reader: pause it, fill its personal channel past what the kernel buffers until
    // the server gives up on it (delivered 0), then let it read what it had and reconnect.
    let floods = 0;
    const stall = async (client) => {
      stats.pauses += 1;
      client.state = 'paused';
      client.ws._socket.pause();
      let closedByServer = false;
      for (let batch = 0; batch < 30 && !closedByServer; batch += 1) {
        const items = Array.from({ length: 16 }, () => {
          floods += 1;
          return { channel: client.own, type: 'ask.response', payload: { chunk: FILLER, isComplete: false, streamId: `f${floods}` } };
        });
        const res = await publisher.post('/api/batch', { items });
        assert.equal(res.status, 200);
        for (const [k, r] of res.body.results.entries()) {
          ledger.add(r.channel, r.seq, items[k].type, items[k].payload);
          stats.floodEvents += 1;
          if (r.delivered === 0) closedByServer = true;
        }
      }
      client.ws._socket.resume();
      const code = await Promise.race([client.closed, timeout(8000, 'still open')]);
      if (code === 'still open') client.ws.terminate();
      await client.closed;
      await client.reconnect();
    };
    const cut = async (client, graceful) => {
      client.state = 'cutting';
      if (graceful) { stats.graceful += 1; client.ws.close(); } else { stats.terminations += 1; client.ws.terminate(); }
      await Promise.race([client.closed, timeout(3000)]);
      await sleep(Math.floor(random() * 150)); // away for a while
      await client.reconnect();
    };

    // The chaos loop, while the publisher runs: bounded by the publisher's end.
    const actions = [];
    let stalling = null;
    while (publishing) {
      await sleep(40 + Math.floor(random() * 60));
      const open = clients.filter((c) => c.state === 'open');
      if (!open.length) continue;
      const roll = random();
      if (roll < 0.12 && !stalling && stats.pauses < MAX_PAUSES) {
        stalling = stall(pick(open)).finally(() => { stalling = null; });
        actions.push(stalling);
      } else if (roll < 0.85) {
        actions.push(cut(pick(open), false));
      } else {
        actions.push(cut(pick(open), true));
      }
    }
    await withTimeout(publishers, 60000, 'the publisher');
    const publishMs = Date.now() - publishStart;
    await withTimeout(Promise.all(actions), 30000, 'the chaos actions');

    // Drain: every client reaches the top of each of its channels.
    const drained = () => clients.every((c) => c.state === 'open'
      && c.channels.every((ch) => (c.positions[ch]?.seq ?? 0) === ledger.top(ch)));
    await waitFor(drained, 30000, 'every client at the top of its channels').catch(() => {});
    await sleep(300); // anything extra (a duplicate) would arrive now

    const report = {
      seed: SEED, events: EVENTS, refused, floodEvents: stats.floodEvents, connections: clients.reduce((n, c) => n + c.connections, 0),
      terminations: stats.terminations, graceful: stats.graceful, pauses: stats.pauses, closes: stats.closes,
      behind: stats.behind, resumes: stats.resumes, replayed: stats.replayed, lost: stats.lost, failedConnects: stats.failedConnects, stuck: stats.stuck,
      setupMs, publishMs, totalMs: Date.now() - started,
    };
    console.log(`chaos: ${JSON.stringify(report)}`);

    // The properties.
    assert.equal(refused, 0, 'every publish was accepted');
    const problems = clients.flatMap((c) => c.violations);
    for (const c of clients) {
      for (const ch of c.channels) {
        const log = c.log[ch];
        const ordered = log.filter(([, , , key]) => !key).map(([seq]) => seq);
        const expected = ledger.ordered(ch);
        if (JSON.stringify(ordered) !== JSON.stringify(expected)) {
          const missing = expected.filter((s) => !ordered.includes(s));
          const extra = ordered.length - new Set(ordered).size;
          const at = ordered.findIndex((s, k) => s !== expected[k]);
          problems.push(`${c.user} ${ch}: ${ordered.length} ordered events, expected ${expected.length}; missing ${JSON.stringify(missing.slice(0, 10))}, duplicates ${extra}, first difference at #${at}: got ${JSON.stringify(ordered.slice(at, at + 3))}, expected ${JSON.stringify(expected.slice(at, at + 3))}`);
        }
        // Every event is the one the publisher was told it got, seq for seq.
        const published = ledger.channels.get(ch) ?? new Map();
        for (const [seq, type, id] of log) {
          const p = published.get(seq);
          if (!p || p.type !== type || p.id !== id) { problems.push(`${c.user} ${ch} seq ${seq}: got ${type} ${id}, published ${JSON.stringify(p)}`); break; }
        }
        // Each latest key at its newest value.
        const last = new Map();
        for (const [seq, , id, key] of log) if (key) last.set(key, { seq, id });
        for (const [key, newest] of ledger.newest(ch)) {
          const got = last.get(key);
          if (!got || got.seq !== newest.seq || got.id !== newest.id) {
            const seen = log.some(([seq]) => seq === newest.seq);
            problems.push(`${c.user} ${ch} ${key}: ends at ${JSON.stringify(got)}, newest ${JSON.stringify(newest)} (${seen ? 'received, then an older one' : 'never received'})`);
          }
        }
      }
    }
    assert.deepEqual(problems.slice(0, 30), [], `${problems.length} problems (seed ${SEED})`);
    assert.equal(stats.lost, 0, 'recovered:false never happened');
    // The chaos did what it was meant to.
    assert.ok(stats.terminations >= 20, `terminations: ${stats.terminations}`);
    assert.ok((stats.closes[4000] ?? 0) >= 1, `4000 closes: ${JSON.stringify(stats.closes)}`);
    assert.ok(stats.replayed > 0, 'resumes replayed events');
    assert.ok(Date.now() - started < 120000, `took ${Date.now() - started} ms`);
  } finally {
    publisher.close();
    for (const c of clients) c.ws?.terminate();
    await server.stop();
  }
});
