// Grants (docs/channels.md): no grant, no events. The token's `channels` claim (exact names and
// trailing-* prefixes), channel tokens (and every way one is not valid), `user:` channels that
// are never granted, and the subscribe proxy (signed POST; 200 / 4xx / 5xx / no answer).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client, api, connectChannels, httpReceiver, mintToken, signature, sleep, startServer, subscribe,
} from './harness.mjs';

// Channel presence (docs/presence.md, tested in presence.test.mjs) is off here: its join and leave
// messages would interleave with the exact sequences these tests check.
const QUIET = { ZENA_CHANNELS_PRESENCE: 'false' };

const NEW = (threadId) => ({ type: 'thread.new', payload: { threadId, accountId: 'acc' } });
const WEBHOOK_SECRET = 'proxy-secret-0123456789abcdef';

const forbidden = (channel) => ({ type: 'subscribe.error', payload: { channel, reason: 'forbidden' } });
const invalid = (channel) => ({ type: 'subscribe.error', payload: { channel, reason: 'invalid_channel' } });

// The marker published to `user`'s own channel is the next message `client` gets: nothing of a
// channel it was refused arrived before it (a publish is delivered in order, per publisher).
async function assertNothingBefore(server, client, user) {
  const marker = NEW(`marker-${user}-${Math.random()}`);
  await api(server, 'POST', '/api/broadcast', { userId: user, ...marker });
  const next = await client.next();
  assert.deepEqual({ type: next.type, payload: next.payload }, marker, `got ${JSON.stringify(next)} before the marker`);
}

// Publishes to `channel` and checks that exactly the `granted` clients receive it (and report
// `delivered` = their count), and that the `refused` ones got nothing, also after waiting well
// past the granted ones' delivery.
async function assertOnlyGrantedReceive(server, channel, granted, refused) {
  const event = NEW(`on-${channel}-${Math.random()}`);
  const res = await api(server, 'POST', '/api/publish', { channel, ...event });
  assert.equal(res.status, 200);
  assert.equal(res.body.delivered, granted.length, `${channel}: delivered to the granted connections only`);
  for (const { client } of granted) {
    const got = await client.next();
    assert.deepEqual({ type: got.type, payload: got.payload, channel: got.channel }, { ...event, channel });
  }
  await sleep(150); // several times what the granted clients needed
  for (const { client, user } of refused) {
    assert.deepEqual(client.messages, [], `${user} got nothing of ${channel}`);
    await assertNothingBefore(server, client, user);
  }
}

describe('grants', () => {
  let server;
  before(async () => { server = await startServer({ env: QUIET }); });
  after(async () => { await server.stop(); });

  test('Grants.NoGrant_IsForbidden_AndNoEventEverArrives', async () => {
    const eve = await connectChannels(server, 'eve');
    const gina = await connectChannels(server, 'gina', { claims: { channels: ['deal:g1'] } });
    assert.deepEqual(await subscribe(eve, 'deal:g1'), forbidden('deal:g1'));
    assert.equal((await subscribe(gina, 'deal:g1')).type, 'subscribed');
    // The channel token of another user, or for another channel, does not help eve either.
    assert.deepEqual(await subscribe(eve, 'deal:g1', { token: mintToken({ sub: 'gina', claims: { channel: 'deal:g1' } }) }), forbidden('deal:g1'));
    await assertOnlyGrantedReceive(server, 'deal:g1', [{ client: gina, user: 'gina' }], [{ client: eve, user: 'eve' }]);
    // A refused subscribe with since replays nothing either.
    eve.send({ type: 'subscribe', payload: { channel: 'deal:g1', since: `${gina.welcome.payload.epoch}:0` } });
    assert.deepEqual(await eve.next(), forbidden('deal:g1'));
    await assertNothingBefore(server, eve, 'eve');
    await Promise.all([eve.close(), gina.close()]);
  });

  test('Grants.ChannelsClaim_ExactAndTrailingStarPrefix', async () => {
    const client = await connectChannels(server, 'claims', { claims: { channels: ['deal:*', 'thread:7', 42, null, { x: 1 }, 'a*b'] } });
    const cases = [
      ['deal:1', 'subscribed'],
      ['deal:xyz.9', 'subscribed'],
      ['dealer:1', 'forbidden'],
      ['deal', 'forbidden'],
      ['thread:7', 'subscribed'],
      ['thread:77', 'forbidden'],
      ['thread:', 'forbidden'],
      ['axb', 'forbidden'], // only a trailing * is special
      ['ab', 'forbidden'],
      ['other:1', 'forbidden'],
    ];
    const got = [];
    for (const [channel] of cases) {
      const answer = await subscribe(client, channel);
      got.push([channel, answer.type === 'subscribed' ? 'subscribed' : answer.payload.reason]);
    }
    assert.deepEqual(got, cases);
    await client.close();
  });

  test('Grants.StarAlone_GrantsEveryChannelButUserOnes', async () => {
    const all = await connectChannels(server, 'star', { claims: { channels: ['*'] } });
    const bob = await connectChannels(server, 'bob');
    for (const channel of ['anything:1', 'x', 'deal:2', 'a.b@c=d']) {
      assert.equal((await subscribe(all, channel)).type, 'subscribed', channel);
    }
    assert.deepEqual(await subscribe(all, 'user:bob'), invalid('user:bob'));
    assert.deepEqual(await subscribe(all, 'user:star'), invalid('user:star'));
    const res = await api(server, 'POST', '/api/broadcast', { userId: 'bob', ...NEW('for-bob') });
    assert.equal(res.body.delivered, 1, 'bob\'s own connection only');
    assert.equal((await bob.next()).payload.threadId, 'for-bob');
    await assertNothingBefore(server, all, 'star');
    await Promise.all([all.close(), bob.close()]);
  });

  test('Grants.UserChannelOfAnotherUser_NeverGranted_NeverReceives', async () => {
    // Every grant naming user:bob, and still alice never gets bob's events.
    const alice = await connectChannels(server, 'alice', { claims: { channels: ['user:bob', 'user:*'] } });
    const bob = await connectChannels(server, 'bob');
    assert.deepEqual(await subscribe(alice, 'user:bob'), invalid('user:bob'));
    assert.deepEqual(await subscribe(alice, 'user:bob', { token: mintToken({ sub: 'alice', claims: { channel: 'user:bob' } }) }), invalid('user:bob'));
    assert.deepEqual(await subscribe(alice, 'user:alice'), invalid('user:alice'), 'not even its own');
    // The backend cannot hand it out either.
    const server_side = await api(server, 'POST', '/api/users/alice/subscriptions', { channel: 'user:bob' });
    assert.equal(server_side.status, 400);
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await api(server, 'POST', '/api/broadcast', { userId: 'bob', ...NEW(`b${i}`) })).body.delivered, 1);
      assert.equal((await bob.next()).payload.threadId, `b${i}`);
    }
    const direct = await api(server, 'POST', '/api/publish', { channel: 'user:bob', ...NEW('b3') });
    assert.equal(direct.body.delivered, 1);
    assert.equal((await bob.next()).payload.threadId, 'b3');
    await sleep(100);
    assert.deepEqual(alice.messages, []);
    await assertNothingBefore(server, alice, 'alice');
    await Promise.all([alice.close(), bob.close()]);
  });

  test('Grants.ChannelToken_GrantsThatChannelForThatUser', async () => {
    const client = await connectChannels(server, 'ct');
    const other = await connectChannels(server, 'ct-other');
    const token = mintToken({ sub: 'ct', claims: { channel: 'deal:t1' } });
    const sub = await subscribe(client, 'deal:t1', { token });
    assert.equal(sub.type, 'subscribed');
    assert.equal(sub.payload.channel, 'deal:t1');
    assert.deepEqual(await subscribe(client, 'deal:t2', { token }), forbidden('deal:t2'), 'that one channel only');
    assert.deepEqual(await subscribe(other, 'deal:t1', { token }), forbidden('deal:t1'), 'that one user only');
    await assertOnlyGrantedReceive(server, 'deal:t1', [{ client, user: 'ct' }], [{ client: other, user: 'ct-other' }]);
    await assertOnlyGrantedReceive(server, 'deal:t2', [], [{ client, user: 'ct' }]);
    await Promise.all([client.close(), other.close()]);
  });

  const badTokens = [
    ['Expired', () => mintToken({ sub: 'bt', ttl: -3600, claims: { channel: 'deal:bt' } })],
    ['OtherUser', () => mintToken({ sub: 'someone-else', claims: { channel: 'deal:bt' } })],
    ['OtherChannel', () => mintToken({ sub: 'bt', claims: { channel: 'deal:other' } })],
    ['NoChannelClaim', () => mintToken({ sub: 'bt' })],
    ['ChannelClaimNotAString', () => mintToken({ sub: 'bt', claims: { channel: ['deal:bt'] } })],
    ['WithoutExp', () => mintToken({ sub: 'bt', claims: { channel: 'deal:bt', exp: undefined } })],
    ['BadlySigned', () => mintToken({ sub: 'bt', claims: { channel: 'deal:bt' }, secret: 'another-secret-0123456789abcdef0123' })],
    ['OtherAlgorithm', () => mintToken({ sub: 'bt', claims: { channel: 'deal:bt' }, alg: 'HS512' })],
    ['AlgNone', () => {
      const b = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${b({ alg: 'none', typ: 'JWT' })}.${b({ sub: 'bt', channel: 'deal:bt', exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    }],
    ['Garbage', () => 'not.a.jwt'],
    ['NotYetValid', () => mintToken({ sub: 'bt', claims: { channel: 'deal:bt', nbf: Math.floor(Date.now() / 1000) + 3600 } })],
  ];
  for (const [name, make] of badTokens) {
    test(`Grants.ChannelToken${name}_IsForbidden_AndDeliversNothing`, async () => {
      const client = await connectChannels(server, 'bt');
      assert.deepEqual(await subscribe(client, 'deal:bt', { token: make() }), forbidden('deal:bt'));
      await assertOnlyGrantedReceive(server, 'deal:bt', [], [{ client, user: 'bt' }]);
      await client.close();
    });
  }

  test('Grants.ChannelTokenWithinLeeway_IsAccepted_AndTheSubscriptionOutlivesIt', async () => {
    // exp 27 s ago is inside the default 30 s leeway, for 3 s more.
    const client = await connectChannels(server, 'leeway');
    const token = mintToken({ sub: 'leeway', ttl: -27, claims: { channel: 'deal:lw' } });
    assert.equal((await subscribe(client, 'deal:lw', { token })).type, 'subscribed');
    await assertOnlyGrantedReceive(server, 'deal:lw', [{ client, user: 'leeway' }], []);
    // Past exp + leeway the token is refused, but the subscription it made lasts.
    await sleep(3500);
    const late = await connectChannels(server, 'leeway');
    assert.deepEqual(await subscribe(late, 'deal:lw', { token }), forbidden('deal:lw'), 'now expired');
    await assertOnlyGrantedReceive(server, 'deal:lw', [{ client, user: 'leeway' }], [{ client: late, user: 'leeway' }]);
    await Promise.all([client.close(), late.close()]);
  });

  test('Grants.RefusedSubscribe_DoesNotEndAnExistingSubscription', async () => {
    const client = await connectChannels(server, 'keep', { claims: { channels: ['deal:k1'] } });
    assert.equal((await subscribe(client, 'deal:k1')).type, 'subscribed');
    assert.deepEqual(await subscribe(client, 'deal:k2'), forbidden('deal:k2'));
    await assertOnlyGrantedReceive(server, 'deal:k1', [{ client, user: 'keep' }], []);
    await client.close();
  });
});

describe('grants: the subscribe proxy', () => {
  let server;
  let proxy;
  const TIMEOUT_MS = 400;
  before(async () => {
    // The backend's answer by channel name.
    proxy = await httpReceiver(({ body }) => {
      const { channel } = JSON.parse(body);
      if (channel.startsWith('ok:')) return { status: 200, body: '{}' };
      if (channel.startsWith('no:')) return { status: 403 };
      if (channel.startsWith('gone:')) return { status: 404 };
      if (channel.startsWith('err:')) return { status: 500 };
      if (channel.startsWith('busy:')) return { status: 503 };
      if (channel.startsWith('late:')) return { status: 200, delayMs: TIMEOUT_MS * 3 };
      return { hang: true };
    });
    server = await startServer({
      env: {
        ...QUIET,
        ZENA_CHANNELS_SUBSCRIBE_PROXY_URL: proxy.url('/zena/subscribe'),
        ZENA_CHANNELS_SUBSCRIBE_PROXY_TIMEOUT_MS: String(TIMEOUT_MS),
        ZENA_WEBHOOK_SECRET: WEBHOOK_SECRET,
      },
    });
  });
  after(async () => {
    await server.stop();
    await proxy.close();
  });

  test('Grants.Proxy_IsAskedWithASignedBody_200Subscribes', async () => {
    const client = await connectChannels(server, 'px');
    const before = proxy.received.length;
    const sub = await subscribe(client, 'ok:1');
    assert.equal(sub.type, 'subscribed');
    assert.equal(sub.payload.channel, 'ok:1');
    assert.equal(proxy.received.length, before + 1, 'one call');
    const call = proxy.received.at(-1);
    assert.equal(call.method, 'POST');
    assert.equal(call.url, '/zena/subscribe');
    assert.equal(call.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(call.body), { userId: 'px', channel: 'ok:1' });
    assert.equal(call.headers['x-zena-signature'], signature(call.body, WEBHOOK_SECRET), 'HMAC-SHA256 of the exact body');
    await assertOnlyGrantedReceive(server, 'ok:1', [{ client, user: 'px' }], []);
    await client.close();
  });

  test('Grants.Proxy_UserIdNeedingEscapes_IsSentAsJson', async () => {
    const user = 'weird "user" \\ ü';
    const client = new Client(server.wsUrl(mintToken({ sub: user })));
    await client.next();
    assert.equal((await subscribe(client, 'ok:2')).type, 'subscribed');
    const call = proxy.received.at(-1);
    assert.deepEqual(JSON.parse(call.body), { userId: user, channel: 'ok:2' });
    assert.equal(call.headers['x-zena-signature'], signature(call.body, WEBHOOK_SECRET));
    await client.close();
  });

  const refusals = [
    ['403', 'no:1', 'forbidden'],
    ['404', 'gone:1', 'forbidden'],
    ['500', 'err:1', 'unavailable'],
    ['503', 'busy:1', 'unavailable'],
  ];
  for (const [status, channel, reason] of refusals) {
    test(`Grants.Proxy${status}_Is${reason}_AndDeliversNothing`, async () => {
      const client = await connectChannels(server, `p${status}`);
      assert.deepEqual(await subscribe(client, channel), { type: 'subscribe.error', payload: { channel, reason } });
      assert.deepEqual(JSON.parse(proxy.received.at(-1).body), { userId: `p${status}`, channel });
      await assertOnlyGrantedReceive(server, channel, [], [{ client, user: `p${status}` }]);
      await client.close();
    });
  }

  for (const [name, channel] of [['NoAnswer', 'hang:1'], ['LateAnswer', 'late:1']]) {
    test(`Grants.Proxy${name}_IsUnavailableAtTheDeadline`, async () => {
      const client = await connectChannels(server, `p${name}`);
      const started = Date.now();
      assert.deepEqual(await subscribe(client, channel, {}, 5000), { type: 'subscribe.error', payload: { channel, reason: 'unavailable' } });
      const took = Date.now() - started;
      assert.ok(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 1500, `answered after ${took} ms (deadline ${TIMEOUT_MS})`);
      // The late 200 that arrives after the deadline subscribes nothing.
      await sleep(TIMEOUT_MS * 3);
      await assertOnlyGrantedReceive(server, channel, [], [{ client, user: `p${name}` }]);
      await client.close();
    });
  }

  test('Grants.ProxyStalled_DoesNotHoldOtherMessagesOfTheConnection', async () => {
    const client = await connectChannels(server, 'px-busy');
    client.send({ type: 'subscribe', payload: { channel: 'hang:2' } });
    // While the proxy hangs, live events still reach the connection.
    const res = await api(server, 'POST', '/api/broadcast', { userId: 'px-busy', ...NEW('live') });
    assert.equal(res.body.delivered, 1);
    const first = await client.next();
    assert.equal(first.payload.threadId, 'live', 'the personal event before the proxy answer');
    assert.deepEqual(await client.next(5000), { type: 'subscribe.error', payload: { channel: 'hang:2', reason: 'unavailable' } });
    await client.close();
  });

  test('Grants.TokenClaim_IsEnoughWithoutAskingTheProxy_OrTheProxyAnswers', async () => {
    // Any one grant is enough: with the claim the subscribe succeeds whatever the proxy says.
    const client = await connectChannels(server, 'px-claim', { claims: { channels: ['no:*'] } });
    assert.equal((await subscribe(client, 'no:9')).type, 'subscribed');
    await client.close();
  });
});

describe('grants: a proxy that refuses connections', () => {
  let server;
  before(async () => {
    // Port 1 on loopback: nothing listens.
    server = await startServer({ env: { ...QUIET, ZENA_CHANNELS_SUBSCRIBE_PROXY_URL: 'http://127.0.0.1:1/subscribe' } });
  });
  after(async () => { await server.stop(); });

  test('Grants.ProxyRefused_IsUnavailable', async () => {
    const client = await connectChannels(server, 'refused');
    assert.deepEqual(await subscribe(client, 'deal:r', {}, 5000), { type: 'subscribe.error', payload: { channel: 'deal:r', reason: 'unavailable' } });
    await assertOnlyGrantedReceive(server, 'deal:r', [], [{ client, user: 'refused' }]);
    await client.close();
  });
});
