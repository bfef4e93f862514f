// The seed's "Client-Side (Example)", on @zena/realtime-client: the same handlers, plus what the
// seed's raw WebSocket lacked (reconnect with backoff, typed payloads, liveness).
//   ZENA_URL=ws://localhost:3000/ws ZENA_TOKEN=$(zena-realtime token --user alice) node client.mjs
import { connect } from '@zena/realtime-client';

// The seed reads the token from localStorage; a function is called again before each reconnect.
const token = () => globalThis.localStorage?.getItem('authToken') ?? process.env.ZENA_TOKEN;
const client = connect({ url: process.env.ZENA_URL ?? 'ws://localhost:3000/ws', token });

client.onState((e) => {
  if (e.state === 'open') console.log('WebSocket connected');
  if (e.state === 'closed') console.log('WebSocket disconnected', e.code, e.reason);
  if (e.state === 'reconnecting') console.log(`Reconnecting in ${e.delayMs} ms`);
});

client.on('sync.started', (payload) => console.log('Sync started:', JSON.stringify(payload)));
client.on('thread.new', (payload) => {
  console.log('New thread:', JSON.stringify(payload));
  // Update UI to show new thread
});
client.on('deal.risk', (payload) => {
  console.log('Deal at risk:', JSON.stringify(payload));
  // Show notification
});
client.on('ask.response', (payload) => {
  if (payload.isComplete) {
    console.log('Response complete');
  } else {
    console.log('Response chunk:', payload.chunk);
    // Append chunk to UI
  }
});

client.onError((error) => console.error('WebSocket error:', error));

// Tell the backend what the user is doing (client events go upstream).
client.send('thread.view', { threadId: 'thread-123' });

process.on('SIGTERM', () => {
  client.close();
  process.exit(0);
});
