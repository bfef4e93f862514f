// Graceful shutdown: on SIGTERM or SIGINT the server stops accepting, closes every connection
// with 1001 after the close handshake, and exits 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, connectUser, mintToken, startServer, withTimeout } from './harness.mjs';

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`Shutdown.${signal}_ClosesEveryoneWith1001AndExits0`, async () => {
    const server = await startServer();
    const clients = await Promise.all(['a', 'a', 'b', 'c'].map((u) => connectUser(server, u)));
    server.child.kill(signal);
    for (const client of clients) {
      const { code } = await client.waitClosed(5000);
      assert.equal(code, 1001);
    }
    const { code } = await withTimeout(server.exited, 5000, 'exit');
    assert.equal(code, 0);
    assert.match(server.output(), /draining connections=4/);
    await server.stop();
  });
}

test('Shutdown.ClientThatNeverCloses_DoesNotHoldTheServerPastTheDrain', async () => {
  const server = await startServer({ env: { ZENA_SHUTDOWN_DRAIN_MS: '500' } });
  // A client that stops reading never answers the close frame.
  const stuck = new Client(server.wsUrl(mintToken({ sub: 'stuck' })));
  await stuck.next();
  stuck.ws._socket.pause();
  const started = Date.now();
  server.child.kill('SIGTERM');
  const { code } = await withTimeout(server.exited, 5000, 'exit');
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 2500, 'exited soon after the drain deadline');
  await server.stop();
});
