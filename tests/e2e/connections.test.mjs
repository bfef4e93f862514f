// The seed's getUserConnectionCount / getTotalConnectionCount, and disconnecting a user.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, connectUser, startServer, waitFor } from './harness.mjs';

describe('connection counts', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  const userCount = async (user) => (await api(server, 'GET', `/api/users/${encodeURIComponent(user)}/connections`)).body;
  const stats = async () => (await api(server, 'GET', '/api/stats')).body;

  test('Counts.FollowConnectsAndDisconnects', async () => {
    assert.deepEqual(await userCount('alice'), { userId: 'alice', connections: 0 });
    const a1 = await connectUser(server, 'alice');
    const a2 = await connectUser(server, 'alice');
    const b1 = await connectUser(server, 'bob');
    assert.deepEqual(await userCount('alice'), { userId: 'alice', connections: 2 });
    let s = await stats();
    assert.equal(s.connections, 3);
    assert.equal(s.users, 2);

    await a1.close();
    await waitFor(async () => (await userCount('alice')).connections === 1, 3000, 'alice at 1');
    b1.ws.terminate(); // abrupt: no close handshake
    await waitFor(async () => (await stats()).users === 1, 3000, 'bob gone');
    await a2.close();
    await waitFor(async () => (await stats()).connections === 0, 3000, 'no connections');
    s = await stats();
    assert.equal(s.users, 0);
  });

  test('Counts.UserIdWithSpecialCharacters_IsDecoded', async () => {
    const user = 'user@example.com:42';
    const client = await connectUser(server, user);
    assert.equal(client.welcome.payload.userId, user);
    assert.deepEqual(await userCount(user), { userId: user, connections: 1 });
    await client.close();
  });

  test('Counts.UserIdWithASlash_IsCountedAndDisconnectedWith4001', async () => {
    // Any id a token can carry: '/' (sent as %2F), '%', '?', '#', spaces, non-ASCII.
    for (const user of ['tenant/42', 'a/b/c%2F?x=1#frag é']) {
      const [c1, c2] = await Promise.all([connectUser(server, user), connectUser(server, user)]);
      const other = await connectUser(server, 'tenant');
      assert.deepEqual(await userCount(user), { userId: user, connections: 2 });
      const res = await api(server, 'DELETE', `/api/users/${encodeURIComponent(user)}/connections`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { userId: user, closed: 2 });
      for (const client of [c1, c2]) assert.equal((await client.waitClosed()).code, 4001);
      await waitFor(async () => (await userCount(user)).connections === 0, 3000, 'the user closed');
      assert.equal((await userCount('tenant')).connections, 1, 'another user untouched');
      await other.close();
    }
  });

  test('Counts.PathThatCannotBeAUserId_Is400', async () => {
    for (const encoded of ['a%2', 'a%zz', '%FF%FE', 'x'.repeat(257)]) {
      for (const method of ['GET', 'DELETE']) {
        const res = await api(server, method, `/api/users/${encoded}/connections`);
        assert.equal(res.status, 400, `${method} ${encoded}`);
        assert.equal(res.body.field, 'userId');
      }
    }
  });

  test('Disconnect.User_ClosesEachConnectionWith4001', async () => {
    const [a1, a2, b1] = await Promise.all([
      connectUser(server, 'alice'), connectUser(server, 'alice'), connectUser(server, 'bob'),
    ]);
    const res = await api(server, 'DELETE', '/api/users/alice/connections');
    assert.deepEqual(res.body, { userId: 'alice', closed: 2 });
    for (const client of [a1, a2]) {
      const { code } = await client.waitClosed();
      assert.equal(code, 4001);
    }
    await waitFor(async () => (await userCount('alice')).connections === 0, 3000, 'alice closed');
    assert.equal((await userCount('bob')).connections, 1, 'bob untouched');
    await b1.close();
  });

  test('Disconnect.UnknownUser_ClosesNothing', async () => {
    assert.deepEqual((await api(server, 'DELETE', '/api/users/ghost/connections')).body, { userId: 'ghost', closed: 0 });
  });
});
