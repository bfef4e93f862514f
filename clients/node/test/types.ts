// Compile-time checks of the typed API (tsc --noEmit, run by npm test).
import { createRealtimeService } from '../src/index.js';

const websocketService = createRealtimeService({ url: 'http://127.0.0.1:3000', apiKey: 'key' });

void websocketService.broadcastToUser('u1', 'thread.new', { threadId: 'thread-123', accountId: 'account-456' });
void websocketService.broadcastToUsers(['u1', 'u2'], 'deal.risk', {
  dealId: 'deal-123',
  riskLevel: 'high',
  riskFlags: [],
  riskReason: 'silent buyer',
});
// @ts-expect-error riskLevel is 'medium' | 'high'
void websocketService.broadcastToUser('u1', 'deal.risk', { dealId: 'd', riskLevel: 'low', riskFlags: [], riskReason: 'r' });
// @ts-expect-error accountId is required
void websocketService.broadcastToUser('u1', 'thread.new', { threadId: 't' });
// @ts-expect-error connected is the server's own message
void websocketService.broadcastToUser('u1', 'connected', {});
const count: Promise<number> = websocketService.getUserConnectionCount('u1');
const total: Promise<number> = websocketService.getTotalConnectionCount();
void [count, total];

// Channels.
void websocketService.publish('deal:123', 'deal.risk', { dealId: 'd', riskLevel: 'medium', riskFlags: [], riskReason: 'r' });
// @ts-expect-error the payload is checked against the type, on channels too
void websocketService.publish('deal:123', 'deal.risk', { dealId: 'd' });
void websocketService.broadcastToUser('u1', 'thread.new', { threadId: 't', accountId: 'a' }).then((r) => {
  const seq: number | undefined = r.seq;
  const epoch: string | undefined = r.epoch;
  void [seq, epoch];
});
void websocketService.history('deal:123', { since: 'e:1', limit: 10 }).then((page) => {
  for (const e of page.events) {
    if (e.type === 'deal.risk') {
      const level: 'medium' | 'high' = e.payload.riskLevel;
      void level;
    }
  }
  const recovered: boolean = page.recovered;
  void recovered;
});
void websocketService.history('deal:123', { since: { epoch: 'e', seq: 1 } });
const subscribed: Promise<{ connections: number }> = websocketService.subscribeUser('u1', 'deal:123');
const removed: Promise<{ connections: number }> = websocketService.unsubscribeUser('u1', 'deal:123');
void [subscribed, removed];

// Presence.
void websocketService.getPresence(['alice', 'bob']).then((byUser) => {
  const online: boolean | undefined = byUser['alice']?.online;
  const lastSeen: number | undefined = byUser['bob']?.lastSeen;
  void [online, lastSeen];
});
void websocketService.channelPresence('thread:9').then((p) => {
  const count: number = p.count;
  const users: string[] | undefined = p.users;
  void [count, users];
});
// @ts-expect-error thread.read is the server's own (sent on thread.view), not published
void websocketService.broadcastToUser('u1', 'thread.read', { threadId: 't', userId: 'u1', readAt: 1 });
// @ts-expect-error typing is the server's own
void websocketService.publish('thread:9', 'typing', { channel: 'thread:9', userId: 'u1', active: true });

// Idempotency: a key per publish, and the duplicate flag of the answer.
void websocketService
  .broadcastToUser('u1', 'thread.new', { threadId: 't', accountId: 'a' }, { idempotencyKey: 'job-42' })
  .then((r) => {
    const duplicate: boolean | undefined = r.duplicate;
    void duplicate;
  });
void createRealtimeService({ url: 'http://127.0.0.1:3000', apiKey: 'key', idempotencyKeys: false });
