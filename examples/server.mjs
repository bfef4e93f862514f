// The seed's "Server-Side" snippets, on @zena/realtime-publisher. The one changed line is the
// import: `websocketService` now talks to the gateway. Counts are async (they live there).
//   ZENA_URL=http://localhost:3000 ZENA_API_KEY=... node server.mjs alice
import { createRealtimeService } from '@zena/realtime-publisher';

const websocketService = createRealtimeService({ url: process.env.ZENA_URL ?? 'http://localhost:3000', apiKey: process.env.ZENA_API_KEY });
const userId = process.argv[2] ?? 'alice';

// Broadcast to all connections of a specific user
websocketService.broadcastToUser(userId, 'thread.new', {
  threadId: 'thread-123',
  accountId: 'account-456',
});

// Broadcast to multiple users. (The seed's snippet leaves out riskFlags and riskReason, which its
// own deal.risk type requires; the catalog follows the type.)
websocketService.broadcastToUsers([userId, 'user-2'], 'deal.risk', {
  dealId: 'deal-123',
  riskLevel: 'high',
  riskFlags: ['no-reply-7-days'],
  riskReason: 'The buyer has not answered in 7 days',
});

// Stream an Ask Zena answer: chunks in order, the last one complete.
for (const chunk of ['The ', 'offer ', 'expires ', 'Friday.']) {
  websocketService.broadcastToUser(userId, 'ask.response', { chunk, isComplete: false, streamId: 'q1' });
}
websocketService.broadcastToUser(userId, 'ask.response', { chunk: '', isComplete: true, streamId: 'q1' });

// Get number of connections for a user
const count = await websocketService.getUserConnectionCount(userId);
// Get total connections
const total = await websocketService.getTotalConnectionCount();
console.log(`connections of ${userId}: ${count}, total: ${total}`);
await websocketService.close();
