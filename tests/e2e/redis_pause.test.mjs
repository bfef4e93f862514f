// Redis paused and resumed with its data (SIGSTOP for 5 s, then SIGCONT) during a steady stream
// of publishes to three nodes (docs/engine.md, "When Redis fails"). Unlike a restart, nothing is
// lost in Redis and its sockets stay open: a command written before the pause waits in Redis's
// socket and runs when it resumes. So:
//   - during the pause, publishes answer 503 with one of two reasons, "redis unreachable: not
//     published" (nothing was sent: the event must never appear) or "redis did not answer: the
//     publish may have been applied" (written, not answered: it may appear); never a 2xx;
//     /readyz answers 503 on every node, and the clients' connections stay open;
//   - after the resume, /readyz is 200 again on every node within a bound;
//   - every publish carries an idempotency key; after the resume each one answered 503 is
//     retried on another node with the same key, and is accepted: "may have been applied" ones
//     that were applied answer `duplicate: true` with the first publish's seq, "not published"
//     ones never do;
//   - every client holds every accepted event exactly once, in seq order, with no gap, in the
//     epoch it started with (the data was kept), and exactly what the history holds; a client
//     that was away over the pause resumes with `recovered: true`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client, api, connectChannels, historyRoute, mintToken, position, sleep, startNodes, startRedis, waitFor, withTimeout,
  wsUrlSince,
} from './harness.mjs';

const PAUSE_MS = 5000;
const PACE_MS = 40; // one publish every PACE_MS, whatever the answers
const READY_AGAIN_MS = 10000; // after the resume: pipeline backoff (<= 2 s) + a canary period (2 s) + slack
const CHANNEL = 'deal:rp-pause'; // a stored channel (the deal namespace keeps history)
const USERS = ['rp-u0', 'rp-u1', 'rp-u2', 'rp-away', 'rp-back'];
const NOT_SENT = /redis unreachable: not published/;
const MAYBE_APPLIED = /redis did not answer: the publish may have been applied/;
const CLAIMS = { channels: ['deal:*'] };

// The id a publish carries in its payload, and where a received event keeps it.
const idOf = (m) => (m.type === 'deal.risk' ? m.payload.riskReason : m.payload.threadId);
const personal = (user) => `user:${user}`;

/** Every message a client gets from now on (and those it buffered), parsed, in order. */
function record(client) {
  const log = client.messages.splice(0).map((text) => JSON.parse(text));
  client.ws.on('message', (data) => log.push(JSON.parse(data.toString())));
  return log;
}

/** The stored events of `channel` in `log`, in arrival order. */
const eventsOn = (log, channel) => log.filter((m) => m.channel === channel && typeof m.seq === 'number'
  && (m.type === 'deal.risk' || m.type === 'thread.new'));

/** Subscribes to CHANNEL (with `since`, if given) and resolves the answer, read from `log`. */
async function subscribeLogged(client, log, since) {
  client.send({ type: 'subscribe', payload: { channel: CHANNEL, ...(since ? { since } : {}) } });
  return waitFor(() => log.find((m) => (m.type === 'subscribed' || m.type === 'subscribe.error')
    && m.payload.channel === CHANNEL), 5000, `the answer to subscribe ${CHANNEL}`);
}

/** A user's connection on `node`, holding its personal channel and (unless `personalOnly`)
 * CHANNEL, recorded. */
async function holder(node, user, { personalOnly = false } = {}) {
  const client = await connectChannels(node, user, { claims: CLAIMS });
  const log = record(client);
  const subscribed = personalOnly ? { payload: {} } : await subscribeLogged(client, log);
  if (!personalOnly) assert.equal(subscribed.type, 'subscribed', JSON.stringify(subscribed));
  const w = client.welcome.payload;
  let closed = false;
  client.closed.then(() => { closed = true; });
  return {
    user, client, node,
    channels: personalOnly ? [personal(user)] : [personal(user), CHANNEL],
    logs: [log], // one per connection: a client's view across a reconnect
    view() { return this.logs.flat(); },
    isClosed: () => closed,
    // Where each channel's events start for this client: its position when it took the channel.
    starts: { [personal(user)]: { epoch: w.epoch, seq: w.seq }, [CHANNEL]: { epoch: subscribed.payload.epoch, seq: subscribed.payload.seq } },
  };
}

/**
 * Connects `user` to `node` presenting `since` until it is welcomed (a node that cannot read the
 * channel yet closes with 1013: try again), at most until `deadline`; resolves { client,
 * welcome, attempts }.
 */
async function comeBack(node, user, since, deadline) {
  for (let attempt = 1; ; attempt += 1) {
    const client = new Client(wsUrlSince(node, mintToken({ sub: user }), since));
    const first = await withTimeout(new Promise((resolve) => {
      client.ws.once('message', (data) => resolve({ welcome: JSON.parse(data.toString()) }));
      client.ws.once('close', (code) => resolve({ code }));
    }), 15000, `${user}'s welcome or close`);
    if (first.welcome) return { client, welcome: first.welcome, attempts: attempt };
    assert.equal(first.code, 1013, `${user} refused with ${first.code}, not 1013 (try again)`);
    assert.ok(Date.now() < deadline, `${user} still refused after ${attempt} attempts`);
    await sleep(250);
  }
}

/** The last position a client holds on `channel`: its last event's, or where it started. */
function lastPosition(h, channel) {
  const events = eventsOn(h.view(), channel);
  const last = events.at(-1);
  return last ? { epoch: last.epoch, seq: last.seq } : h.starts[channel];
}

describe('Redis paused for 5 s and resumed with its data, during a publish stream on three nodes', () => {
  let redis;
  let nodes = [];
  let streaming = false; // the publish stream runs while true
  before(async () => {
    redis = await startRedis();
    nodes = await startNodes([redis.url], ['pa', 'pb', 'pc']);
  });
  after(async () => {
    streaming = false; // a failed test leaves no stream running
    redis?.resume(); // whatever happened, never leave it stopped
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await redis?.stop();
  });

  test('503 with a reason while paused, /readyz fails then recovers, and every client holds exactly the accepted events', async () => {
    // Each user (but the away one) has two connections on two different nodes.
    const holders = [];
    for (let i = 0; i < 3; i += 1) {
      holders.push(await holder(nodes[i], USERS[i]));
      holders.push(await holder(nodes[(i + 1) % 3], USERS[i]));
    }
    const away = await holder(nodes[0], 'rp-away');
    const back = await holder(nodes[1], 'rp-back', { personalOnly: true });

    // The stream: publish k goes to node k % 3; even k to CHANNEL, odd k to a user's personal
    // channel. Each is sent on time, without waiting for the answers before it.
    const sent = []; // { id, channel, at, answer: Promise<{ status, body }> }
    streaming = true;
    const stream = (async () => {
      for (let k = 0; streaming && k < 2000; k += 1) {
        const node = nodes[k % 3];
        const id = `p${k}`;
        const user = USERS[Math.floor(k / 2) % USERS.length];
        const [channel, route, body] = k % 2 === 0
          ? [CHANNEL, '/api/publish', { channel: CHANNEL, type: 'deal.risk', payload: { dealId: 'd-rp', riskLevel: 'high', riskFlags: [], riskReason: id }, idempotencyKey: id }]
          : [personal(user), '/api/broadcast', { userId: user, type: 'thread.new', payload: { threadId: id, accountId: 'a-rp' }, idempotencyKey: id }];
        const answer = withTimeout(api(node, 'POST', route, body), 15000, `the answer to publish ${id}`)
          .catch((e) => ({ status: 0, body: { error: e.message } }));
        sent.push({ id, k, channel, route, request: body, at: Date.now(), answer });
        await sleep(PACE_MS);
      }
    })();

    await waitFor(() => sent.length >= 30, 5000, 'publishes before the pause');
    await waitFor(() => eventsOn(away.view(), CHANNEL).length >= 3, 5000, 'the away client to see events');
    away.client.ws.close();
    await away.client.waitClosed();

    const readyDown = new Map(); // node index -> the 503's reason, seen while paused
    let ready = [];
    let comeback;
    try {
      redis.pause();
      const pausedAt = Date.now();
      // rp-back loses its connection a second into the pause and comes back at once on another
      // node with its position: it must be resumed, never welcomed without its position.
      comeback = (async () => {
        await sleep(1000);
        back.client.ws.close();
        await back.client.waitClosed();
        return comeBack(nodes[2], 'rp-back', position(lastPosition(back, personal('rp-back'))), Date.now() + 20000);
      })();
      comeback.catch(() => {}); // awaited below
      // /readyz on every node, every 100 ms, until the pause ends (bounded by it).
      while (Date.now() < pausedAt + PAUSE_MS) {
        await Promise.all(nodes.map(async (node, i) => {
          if (readyDown.has(i)) return;
          const res = await withTimeout(fetch(node.url('/readyz')), 2000, '/readyz');
          const body = await res.text();
          if (res.status === 503) readyDown.set(i, body);
        }));
        await sleep(100);
      }
      for (const h of holders) assert.equal(h.client.ws.readyState, 1, `${h.user}'s connection stays open while Redis is paused`);
    } finally {
      redis.resume();
    }
    const resumedAt = Date.now();
    assert.equal(readyDown.size, 3, `/readyz answered 503 on every node while paused: ${JSON.stringify([...readyDown])}`);
    for (const [, reason] of readyDown) assert.match(reason, /redis/i);

    // Ready again on every node, within the bound.
    ready = await Promise.all(nodes.map(async (node) => {
      await waitFor(async () => (await fetch(node.url('/readyz'))).status === 200, READY_AGAIN_MS, '/readyz 200 after the resume');
      return Date.now() - resumedAt;
    }));

    // Carry on for a while, then stop and collect every answer.
    await sleep(1500);
    streaming = false;
    await stream;
    const answers = await Promise.all(sent.map(async (s) => ({ ...s, ...(await s.answer) })));
    const firstAccepted = answers.filter((a) => a.status >= 200 && a.status < 300);
    const notSent = answers.filter((a) => a.status === 503 && NOT_SENT.test(a.body?.error));
    const maybe = answers.filter((a) => a.status === 503 && MAYBE_APPLIED.test(a.body?.error));
    const other = answers.filter((a) => !firstAccepted.includes(a) && !notSent.includes(a) && !maybe.includes(a));
    assert.deepEqual(other.map((a) => [a.id, a.status, a.body]), [], 'every publish is accepted or answered 503 with one of the two reasons');
    assert.ok(notSent.length + maybe.length > 0, 'the pause was felt: some publishes answered 503');
    const notSentIds = new Set(notSent.map((a) => a.id));

    // Each publish answered 503 is retried on the next node with its idempotency key, in the
    // order it was first sent: accepted now, and published once whatever became of the first try.
    const retried = [];
    for (const a of [...notSent, ...maybe].sort((x, y) => x.k - y.k)) {
      const res = await withTimeout(api(nodes[(a.k + 1) % 3], 'POST', a.route, a.request), 15000, `the retry of ${a.id}`);
      assert.equal(res.status, 200, `the retry of ${a.id}: ${JSON.stringify(res.body)}`);
      if (notSentIds.has(a.id)) assert.notEqual(res.body.duplicate, true, `${a.id} was "not published", and yet its retry is a duplicate`);
      retried.push({ ...a, ...res });
    }
    const duplicates = retried.filter((a) => a.body.duplicate === true);
    const accepted = [...firstAccepted, ...retried];
    const acceptedIds = new Set(accepted.map((a) => a.id));
    assert.equal(acceptedIds.size, sent.length, 'every publish accepted, first or on its retry');
    for (const a of accepted) {
      assert.equal(a.body.channel, a.channel, JSON.stringify(a.body));
      assert.equal(typeof a.body.seq, 'number', JSON.stringify(a.body));
    }
    const seqOfAccepted = new Map(accepted.map((a) => [a.id, a.body.seq]));

    // The away client comes back on another node with its positions: recovered, as the epoch
    // is the same.
    const awayLast = { [personal('rp-away')]: lastPosition(away, personal('rp-away')), [CHANNEL]: lastPosition(away, CHANNEL) };
    const returned = await connectChannels(nodes[2], 'rp-away', { claims: CLAIMS, since: position(awayLast[personal('rp-away')]) });
    assert.equal(returned.welcome.payload.recovered, true, `the away client's personal channel: ${JSON.stringify(returned.welcome)}`);
    const backLog = record(returned);
    const resubscribed = await subscribeLogged(returned, backLog, position(awayLast[CHANNEL]));
    assert.equal(resubscribed.type, 'subscribed', JSON.stringify(resubscribed));
    assert.equal(resubscribed.payload.recovered, true, `the away client's ${CHANNEL}: ${JSON.stringify(resubscribed)}`);
    away.logs.push(backLog);

    // The client that came back during the pause was resumed with what it missed.
    const cameBack = await comeback;
    assert.equal(cameBack.welcome.type, 'connected', JSON.stringify(cameBack.welcome));
    assert.equal(cameBack.welcome.payload.recovered, true, `rp-back came back during the pause: ${JSON.stringify(cameBack.welcome)}`);
    back.logs.push(record(cameBack.client));

    // Each channel's last accepted seq, which every holder must reach.
    const lastAccepted = new Map();
    for (const a of accepted) lastAccepted.set(a.channel, Math.max(lastAccepted.get(a.channel) ?? 0, a.body.seq));
    const everyone = [...holders, away, back];
    for (const h of everyone) {
      for (const channel of h.channels) {
        const target = lastAccepted.get(channel) ?? 0;
        await waitFor(() => (eventsOn(h.view(), channel).at(-1)?.seq ?? 0) >= target, 10000,
          `${h.user} on ${h.node.port} to reach seq ${target} of ${channel}`);
      }
    }
    await sleep(300); // a duplicate would come now

    const appeared = new Set();
    for (const h of everyone) {
      for (const channel of h.channels) {
        const start = h.starts[channel];
        const events = eventsOn(h.view(), channel);
        const where = `${h.user} (node ${h.node.port}) on ${channel}`;
        assert.deepEqual(events.map((m) => m.seq), Array.from({ length: events.length }, (_, i) => start.seq + 1 + i),
          `${where}: each seq once, in order, no gap`);
        assert.ok(events.every((m) => m.epoch === start.epoch), `${where}: the epoch it started with (Redis kept its data)`);
        for (const m of events) {
          const id = idOf(m);
          appeared.add(id);
          assert.ok(acceptedIds.has(id), `${where}: ${id} was never accepted`);
          assert.equal(m.seq, seqOfAccepted.get(id), `${where}: ${id} at the seq its answer named`);
        }
        const ids = new Set(events.map(idOf));
        assert.equal(ids.size, events.length, `${where}: no event twice (a retry applied again)`);
        const missing = accepted.filter((a) => a.channel === channel && a.body.seq > start.seq && !ids.has(a.id));
        assert.deepEqual(missing.map((a) => a.id), [], `${where}: every accepted event`);
        // What the client holds is what the history holds.
        const history = await api(nodes[0], 'GET', historyRoute(channel, { since: position(start), limit: 1000 }));
        assert.equal(history.status, 200, JSON.stringify(history.body));
        assert.equal(history.body.recovered, true);
        assert.deepEqual(events.map((m) => [m.seq, idOf(m)]), history.body.events.map((e) => [e.seq, idOf(e)]),
          `${where}: exactly the history`);
      }
    }
    for (const h of holders) assert.equal(h.isClosed(), false, `${h.user}'s connection stayed open`);

    // A connection that stayed resumes anywhere with what it holds: recovered, nothing missed.
    const h0 = holders[0];
    const again = await connectChannels(nodes[1], h0.user, { since: position(lastPosition(h0, personal(h0.user))) });
    assert.equal(again.welcome.payload.recovered, true);
    assert.equal(again.welcome.payload.missed, 0);
    again.ws.close();

    console.log(`redis pause: ${answers.length} publishes, ${firstAccepted.length} accepted, ${notSent.length} "not published", `
      + `${maybe.length} "may have been applied" (${duplicates.length} of them applied: their retry was a duplicate); `
      + `${appeared.size} events delivered; `
      + `/readyz 200 again after ${ready.map((ms) => `${ms} ms`).join(', ')}; `
      + `rp-back welcomed at attempt ${cameBack.attempts}, ${cameBack.welcome.payload.missed} missed`);
    for (const h of holders) h.client.ws.close();
    returned.ws.close();
    cameBack.client.ws.close();
  });
});
