// Many nodes on Redis (engine.type = redis, docs/engine.md): real redis-server processes and
// three real server processes, each on free loopback ports. Any node publishes, every node
// delivers once; history and positions are shared, so a client resumes on any node; a node
// killed mid-stream costs its clients nothing once they reconnect elsewhere; Redis away answers
// 503 and /readyz fails, and when it returns the nodes carry on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api, connectChannels, nextN, position, sleep, startNodes, startRedis, subscribe, waitFor,
  httpCall as call, mintToken, httpReceiver, CLUSTER_ADMIN_PASSWORD as ADMIN_PASSWORD,
} from './harness.mjs';
import { connect } from '../../clients/js/dist/index.js';

const publish = (node, userId, type, payload) => api(node, 'POST', '/api/broadcast', { userId, type, payload });
const thread = (n) => ({ threadId: `t${n}`, accountId: 'a1' });

// The seq of each message, in order.
const seqsOf = (messages) => messages.map((m) => m.seq);

describe('three nodes on one Redis', () => {
  let redis;
  let nodes;
  before(async () => {
    redis = await startRedis();
    nodes = await startNodes([redis.url], ['a', 'b', 'c']);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await redis.stop();
  });

  test('a publish on A reaches the user on B and on C, once each, with one position', async () => {
    const [a, b, c] = nodes;
    const onB = await connectChannels(b, 'cl-u1');
    const onC = await connectChannels(c, 'cl-u1');
    assert.equal(onB.welcome.payload.epoch, onC.welcome.payload.epoch, 'one epoch for the channel on every node');
    const res = await publish(a, 'cl-u1', 'thread.new', thread(1));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.delivered, 0, 'A holds none of the connections');
    assert.equal(res.body.seq, 1);
    for (const client of [onB, onC]) {
      const got = await client.next();
      assert.equal(got.type, 'thread.new');
      assert.equal(got.channel, 'user:cl-u1');
      assert.equal(got.seq, 1);
      assert.equal(got.epoch, res.body.epoch);
      await assert.rejects(client.next(300), /no message/, 'once, not twice');
    }
    onB.ws.close();
    onC.ws.close();
  });

  test('the publishing node counts its own connections, as one node does', async () => {
    const [a] = nodes;
    const onA = await connectChannels(a, 'cl-u2');
    const res = await publish(a, 'cl-u2', 'thread.new', { threadId: 't1', accountId: 'a1' });
    assert.equal(res.status, 200);
    assert.equal(res.body.delivered, 1);
    assert.equal((await onA.next()).type, 'thread.new');
    onA.ws.close();
  });

  test('a channel published on A reaches subscribers on B and C in seq order', async () => {
    const [a, b, c] = nodes;
    const claims = { channels: ['deal:*'] };
    const onB = await connectChannels(b, 'cl-s1', { claims });
    const onC = await connectChannels(c, 'cl-s2', { claims });
    assert.equal((await subscribe(onB, 'deal:cl1')).type, 'subscribed');
    assert.equal((await subscribe(onC, 'deal:cl1')).type, 'subscribed');
    const answers = [];
    for (let i = 1; i <= 20; i += 1) {
      answers.push(api(a, 'POST', '/api/publish', { channel: 'deal:cl1', type: 'deal.risk', payload: { dealId: 'd1', riskLevel: 'high', riskFlags: [], riskReason: `r${i}` } }));
    }
    const reasonAt = new Map();
    (await Promise.all(answers)).forEach((r, i) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      reasonAt.set(r.body.seq, `r${i + 1}`);
    });
    for (const client of [onB, onC]) {
      // The channel's stored events; presence.join of the other subscriber travels too, unstored.
      const got = [];
      while (got.length < 20) {
        const m = await client.next();
        if (m.type === 'deal.risk') got.push(m);
      }
      assert.deepEqual(seqsOf(got), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.deepEqual(got.map((m) => m.payload.riskReason), got.map((m) => reasonAt.get(m.seq)),
        'each seq is the publish the API answered with it');
    }
    onB.ws.close();
    onC.ws.close();
  });

  test('a client resumes on another node from its position: exactly what it missed', async () => {
    const [a, b, c] = nodes;
    const first = await connectChannels(b, 'cl-r1');
    for (let i = 1; i <= 3; i += 1) assert.equal((await publish(a, 'cl-r1', 'thread.new', thread(i))).status, 200);
    const seen = await nextN(first, 3);
    first.ws.close();
    await first.waitClosed();
    for (let i = 4; i <= 7; i += 1) assert.equal((await publish(a, 'cl-r1', 'thread.new', thread(i))).status, 200);
    const back = await connectChannels(c, 'cl-r1', { since: position(seen[2]) });
    assert.equal(back.welcome.payload.recovered, true);
    assert.equal(back.welcome.payload.missed, 4);
    const missed = await nextN(back, 4);
    assert.deepEqual(seqsOf(missed), [4, 5, 6, 7]);
    assert.equal((await publish(a, 'cl-r1', 'thread.new', thread(8))).status, 200);
    assert.equal((await back.next()).seq, 8);
    await assert.rejects(back.next(300), /no message/);
    back.ws.close();
  });

  test('an announcement to everyone reaches every node', async () => {
    const [a, b, c] = nodes;
    const clients = [await connectChannels(a, 'cl-e1'), await connectChannels(b, 'cl-e2'), await connectChannels(c, 'cl-e3')];
    const res = await api(b, 'POST', '/api/broadcast-all', { type: 'sync.started', payload: { accountId: 'everyone', provider: 'gmail' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const client of clients) {
      const got = await client.next();
      assert.equal(got.type, 'sync.started');
      assert.equal(got.payload.accountId, 'everyone');
    }
    for (const client of clients) client.ws.close();
  });

  test('counts, stats, presence and nodes asked from any node are the deployment\'s', async () => {
    const [a, b, c] = nodes;
    const clients = [await connectChannels(b, 'cl-n1'), await connectChannels(c, 'cl-n1'), await connectChannels(c, 'cl-n2')];
    for (const node of nodes) {
      const count = await api(node, 'GET', '/api/users/cl-n1/connections');
      assert.deepEqual(count.body, { userId: 'cl-n1', connections: 2 });
      const presence = await api(node, 'GET', '/api/presence?userIds=cl-n1,cl-n2,cl-nobody');
      assert.deepEqual(presence.body['cl-n1'], { online: true, connections: 2 });
      assert.deepEqual(presence.body['cl-n2'], { online: true, connections: 1 });
      assert.equal(presence.body['cl-nobody'].online, false);
    }
    const stats = await api(a, 'GET', '/api/stats');
    assert.equal(stats.status, 200);
    assert.equal(stats.body.nodes.length, 3, JSON.stringify(stats.body));
    assert.deepEqual(stats.body.nodes.map((n) => n.node).sort(), ['a', 'b', 'c']);
    assert.equal(stats.body.connections, stats.body.nodes.reduce((sum, n) => sum + n.connections, 0));
    assert.ok(stats.body.connections >= 3);
    const listed = await waitFor(async () => {
      const r = await api(a, 'GET', '/api/nodes');
      return r.body.nodes?.length === 3 ? r.body.nodes : null;
    }, 6000, 'three nodes in the registry');
    for (const n of listed) {
      assert.match(n.address, /^127\.0\.0\.1:\d+$/);
      assert.ok(n.uptimeMs >= 0);
    }
    assert.deepEqual(listed.map((n) => n.id).sort(), ['a', 'b', 'c']);
    for (const client of clients) client.ws.close();
  });

  test('a disconnect asked of A closes the user on B and C with 4001', async () => {
    const [a, b, c] = nodes;
    const onB = await connectChannels(b, 'cl-x1');
    const onC = await connectChannels(c, 'cl-x1');
    const res = await api(a, 'DELETE', '/api/users/cl-x1/connections');
    assert.deepEqual(res.body, { userId: 'cl-x1', closed: 2 });
    assert.equal((await onB.waitClosed()).code, 4001);
    assert.equal((await onC.waitClosed()).code, 4001);
  });

  test('a server-side subscription asked of A takes the user\'s connections on B and C', async () => {
    const [a, b, c] = nodes;
    const onB = await connectChannels(b, 'cl-ss1');
    const onC = await connectChannels(c, 'cl-ss1');
    const res = await api(a, 'POST', '/api/users/cl-ss1/subscriptions', { channel: 'deal:ss1' });
    assert.equal(res.status, 200, `${JSON.stringify(res.body)}`);
    assert.equal(res.body.connections, 2);
    for (const client of [onB, onC]) assert.equal((await client.next()).type, 'subscribed');
    const pub = await api(a, 'POST', '/api/publish', { channel: 'deal:ss1', type: 'deal.risk', payload: { dealId: 'd', riskLevel: 'medium', riskFlags: [], riskReason: 'x' } });
    assert.equal(pub.status, 200, JSON.stringify(pub.body));
    for (const client of [onB, onC]) assert.equal((await client.next()).channel, 'deal:ss1');
    onB.ws.close();
    onC.ws.close();
  });

  test('channel presence is the deployment\'s: a join on C is announced on B, asked from A', async () => {
    const [a, b, c] = nodes;
    const claims = { channels: ['thread:*'] };
    const onB = await connectChannels(b, 'cl-p1', { claims });
    const onC = await connectChannels(c, 'cl-p2', { claims });
    assert.equal((await subscribe(onB, 'thread:clp')).type, 'subscribed');
    assert.equal((await subscribe(onC, 'thread:clp')).type, 'subscribed');
    let joined = await onB.next();
    if (joined.payload.userId === 'cl-p1') joined = await onB.next();  // its own arrival first
    assert.deepEqual([joined.type, joined.payload.userId], ['presence.join', 'cl-p2']);
    onB.send({ type: 'presence.get', payload: { channel: 'thread:clp' } });
    const state = await onB.next();
    assert.equal(state.type, 'presence.state');
    assert.deepEqual(state.payload.users.sort(), ['cl-p1', 'cl-p2']);
    const viaA = await api(a, 'GET', `/api/channels/${encodeURIComponent('thread:clp')}/presence`);
    assert.deepEqual(viaA.body.users.sort(), ['cl-p1', 'cl-p2']);
    // A second tab of cl-p2 on B: no second join, and leaving one tab is no leave.
    const tab = await connectChannels(b, 'cl-p2', { claims });
    assert.equal((await subscribe(tab, 'thread:clp')).type, 'subscribed');
    await assert.rejects(onB.next(400), /no message/, 'no join for a second tab');
    tab.ws.close();
    await tab.waitClosed();
    await assert.rejects(onB.next(400), /no message/, 'no leave while a tab remains');
    onC.ws.close();
    const left = await onB.next();
    assert.deepEqual([left.type, left.payload.userId], ['presence.leave', 'cl-p2']);
    onB.ws.close();
  });

  test('the page at / lists every node of the deployment', async () => {
    const [a] = nodes;
    const origin = `http://127.0.0.1:${a.port}`;
    const login = await call(a, 'POST', '/admin/api/login', { body: { password: ADMIN_PASSWORD }, headers: { origin } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const cookie = login.headers['set-cookie'][0].split(';')[0];
    const rows = await waitFor(async () => {
      const r = await call(a, 'GET', '/admin/api/stats', { headers: { cookie, origin } });
      return r.body?.nodes?.length === 3 ? r.body.nodes : null;
    }, 6000, 'three nodes in the live view');
    assert.deepEqual(rows.map((n) => n.node).sort(), ['a', 'b', 'c']);
    assert.equal(rows.filter((n) => n.self).length, 1);
  });

  test('the canary measures the Pub/Sub round trip on every node', async () => {
    for (const node of nodes) {
      await waitFor(async () => {
        const text = await (await fetch(node.url('/metrics'))).text();
        const m = text.match(/^zena_engine_roundtrip_seconds ([0-9.]+)$/m);
        return m && Number(m[1]) > 0;
      }, 6000, 'a canary round trip');
    }
  });

  test('kill -9 of a node mid-stream: its clients resume on another node with no gap and no duplicate', async () => {
    const [a, b, c] = nodes;
    const onB = await connectChannels(b, 'cl-k1');
    const received = [];
    onB.ws.on('message', (d) => { received.push(JSON.parse(d.toString())); });
    let stop = false;
    const accepted = [];
    const publisher = (async () => {
      for (let i = 1; i <= 400 && !stop; i += 1) {
        const r = await publish(a, 'cl-k1', 'thread.new', thread(i));
        if (r.status === 200) accepted.push(r.body.seq);
        await sleep(2);
      }
    })();
    await waitFor(() => received.length >= 20, 5000, 'events before the kill');
    b.child.kill('SIGKILL');
    await b.exited;
    const last = received.filter((m) => m.seq !== undefined).at(-1);
    const back = await connectChannels(c, 'cl-k1', { since: position(last) });
    assert.equal(back.welcome.payload.recovered, true);
    const after = [];
    back.ws.on('message', (d) => { after.push(JSON.parse(d.toString())); });
    for (const m of back.messages.splice(0)) after.push(JSON.parse(m));
    await sleep(300);
    stop = true;
    await publisher;
    await waitFor(() => (after.at(-1)?.seq ?? 0) >= accepted.at(-1), 5000, 'the last accepted event');
    const all = [...received.filter((m) => m.seq !== undefined), ...after].map((m) => m.seq);
    assert.deepEqual(all, Array.from({ length: accepted.at(-1) }, (_, i) => i + 1), 'every event once, in order');
    back.ws.close();
    nodes[1] = await startNodes([redis.url], ['b2']).then((n) => n[0]);
  });

  test('the client SDK given the nodes\' URLs moves to the next node when its node dies, and misses nothing', async () => {
    const [a, b2, c] = nodes;
    const client = connect({ url: [b2.wsUrl(), c.wsUrl()], token: mintToken({ sub: 'cl-sdk' }), backoff: { initialMs: 50, maxMs: 200 } });
    const seen = [];
    client.on('thread.new', (p) => seen.push(p.threadId));
    await waitFor(() => client.welcome, 5000, 'the welcome');
    for (let i = 1; i <= 5; i += 1) assert.equal((await publish(a, 'cl-sdk', 'thread.new', thread(i))).status, 200);
    await waitFor(() => seen.length === 5, 5000, 'five events on b2');
    b2.child.kill('SIGKILL');
    await b2.exited;
    for (let i = 6; i <= 10; i += 1) assert.equal((await publish(a, 'cl-sdk', 'thread.new', thread(i))).status, 200);
    await waitFor(() => seen.length >= 10, 10000, 'the events published while it moved');
    await sleep(200);
    assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `t${i + 1}`), 'each once, in order');
    client.close();
    nodes[1] = await startNodes([redis.url], ['b3']).then((n) => n[0]);
  });
});

describe('presence.online and .offline are the deployment\'s, not each node\'s', () => {
  const GRACE_MS = 600;
  let redis;
  let hook;
  let nodes;
  before(async () => {
    redis = await startRedis();
    hook = await httpReceiver();
    nodes = await startNodes([redis.url], ['pa', 'pb', 'pc'], {
      ZENA_WEBHOOK_URL: hook.url('/zena/events'),
      ZENA_UPSTREAM_ROUTES: 'presence.online=webhook,presence.offline=webhook,*=none',
      ZENA_PRESENCE_OFFLINE_GRACE_MS: String(GRACE_MS),
    });
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await hook.close();
    await redis.stop();
  });
  const noticesOf = (user) => hook.received.map((r) => ({ ...JSON.parse(r.body), at: r.at }))
    .filter((b) => b.userId === user).map((b) => b.type);

  test('one online for tabs on two nodes, one offline after the grace from the last, none for a reload elsewhere', async () => {
    const [a, b, c] = nodes;
    const onA = await connectChannels(a, 'cl-on1');
    const onB = await connectChannels(b, 'cl-on1');
    await waitFor(() => noticesOf('cl-on1').length >= 1, 5000, 'presence.online');
    onA.ws.close();
    await onA.waitClosed();
    await sleep(GRACE_MS * 2 + 1200);
    assert.deepEqual(noticesOf('cl-on1'), ['presence.online'], 'the tab on B keeps the user online: no offline, no second online');

    // A reload that lands on another node inside the grace announces nothing.
    onB.ws.close();
    await onB.waitClosed();
    const onC = await connectChannels(c, 'cl-on1');
    await sleep(GRACE_MS * 2 + 1200);
    assert.deepEqual(noticesOf('cl-on1'), ['presence.online']);

    const closed = Date.now();
    onC.ws.close();
    await onC.waitClosed();
    await waitFor(() => noticesOf('cl-on1').length >= 2, 5000, 'presence.offline');
    assert.ok(Date.now() - closed >= GRACE_MS, 'offline only after the grace');
    await sleep(1500);
    assert.deepEqual(noticesOf('cl-on1'), ['presence.online', 'presence.offline'], 'one offline for the deployment');
  });
});

describe('Redis away and back', () => {
  let redis;
  let nodes;
  before(async () => {
    redis = await startRedis();
    nodes = await startNodes([redis.url], ['x', 'y']);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await redis.stop();
  });

  test('publishes answer 503, /readyz fails on every node, connections stay; afterwards delivery goes on', async () => {
    const [x, y] = nodes;
    const client = await connectChannels(y, 'cl-d1');
    assert.equal((await publish(x, 'cl-d1', 'thread.new', thread(1))).status, 200);
    assert.equal((await client.next()).seq, 1);
    await redis.stop();
    const refused = await waitFor(async () => {
      const r = await publish(x, 'cl-d1', 'thread.new', thread(2));
      return r.status === 503 ? r : null;
    }, 5000, 'a 503');
    assert.match(JSON.stringify(refused.body), /redis/i);
    for (const node of nodes) {
      await waitFor(async () => (await fetch(node.url('/readyz'))).status === 503, 5000, '/readyz 503');
    }
    assert.equal(client.ws.readyState, 1, 'the connection stays open');
    await sleep(1500);
    redis = await startRedis({ port: redis.port });
    for (const node of nodes) {
      await waitFor(async () => (await fetch(node.url('/readyz'))).status === 200, 10000, '/readyz 200 again');
    }
    const res = await publish(x, 'cl-d1', 'thread.new', thread(3));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const got = await client.next(5000);
    assert.equal(got.payload.threadId, 't3', 'the accepted event, and none of the refused ones');
    assert.notEqual(got.epoch, client.welcome.payload.epoch, 'Redis lost its data: a new epoch, never a silent gap');
    client.ws.close();
  });
});

describe('two Redis instances (sharded)', () => {
  let redises;
  let nodes;
  before(async () => {
    redises = [await startRedis(), await startRedis()];
    nodes = await startNodes(redises.map((r) => r.url), ['p', 'q']);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await Promise.all(redises.map((r) => r.stop()));
  });

  test('channels spread over both; every user gets their events from either node', async () => {
    const [p, q] = nodes;
    const users = Array.from({ length: 16 }, (_, i) => `cl-sh${i}`);
    const clients = await Promise.all(users.map((u, i) => connectChannels(i % 2 ? q : p, u)));
    const res = await api(p, 'POST', '/api/broadcast', { userIds: users, type: 'thread.new', payload: { threadId: 't9', accountId: 'a1' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const client of clients) assert.equal((await client.next()).type, 'thread.new');
    // Both instances hold some of the channels.
    const { createClient } = await import('redis');
    const counts = [];
    for (const r of redises) {
      const rc = createClient({ url: r.url });
      await rc.connect();
      counts.push((await rc.keys('zena:{user:cl-sh*}:m')).length);
      await rc.quit();
    }
    assert.equal(counts[0] + counts[1], users.length);
    assert.ok(counts[0] > 0 && counts[1] > 0, `both shards used: ${counts}`);
    for (const client of clients) client.ws.close();
  });
});
