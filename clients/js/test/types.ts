// Compile-time checks of the typed API (tsc --noEmit, run by npm test): what the catalog allows
// compiles, and what it does not is an error (each @ts-expect-error must find one).
import {
  connect,
  localStoragePositions,
  PresenceError,
  type ChannelPresence,
  memoryPositions,
  SubscribeError,
  type DealRiskPayload,
  type Position,
  type PositionStore,
  type SubscribedPayload,
} from '../src/index.js';

const client = connect({ url: 'ws://127.0.0.1:1/ws', token: () => 'token' });

client.on('deal.risk', (p) => {
  const level: 'medium' | 'high' = p.riskLevel;
  const flags: string[] = p.riskFlags;
  // @ts-expect-error riskLevel is 'medium' | 'high', never 'low'
  const low: typeof p.riskLevel = 'low';
  void [level, flags, low];
});
client.on('ask.response', (p) => {
  const chunk: string = p.chunk;
  const done: boolean = p.isComplete;
  const firstSource = p.sources?.[0]?.title;
  void [chunk, done, firstSource];
});
// @ts-expect-error thread.new has no riskLevel
client.on('thread.new', (p) => p.riskLevel);
client.on('custom.unknown', (p) => p); // unknown types are allowed, as unknown

void client.send('thread.view', { threadId: 'thread-123' });
void client.send('sync.request', {});
// @ts-expect-error threadId is required
void client.send('thread.view', {});
// @ts-expect-error not a client event
void client.send('deal.risk', {});

const risk: DealRiskPayload = { dealId: 'd', riskLevel: 'high', riskFlags: [], riskReason: 'r' };
void risk;

// Channels, positions, resync.

const withStore = connect({ url: 'ws://127.0.0.1:1/ws', token: 't', positions: localStoragePositions() });
const store: PositionStore = memoryPositions();
void [withStore, store];
const subscribed: Promise<SubscribedPayload> = client.subscribe('deal:123', { token: async () => 'channel-token' });
void subscribed.then((s) => s.recovered).catch((e: unknown) => e instanceof SubscribeError && e.reason === 'forbidden');
void client.subscribe('deal:123', { token: 'channel-token' });
const left: Promise<void> = client.unsubscribe('deal:123');
void left;
client.onResync((e) => {
  const channel: string = e.channel;
  const seq: number = e.seq;
  void [channel, seq];
});
const where: Position | undefined = client.position('deal:123');
void where;
// @ts-expect-error subscribe is the SDK's, not a send
void client.send('subscribe', { channel: 'deal:123' });
// @ts-expect-error a channel token is a string or a function
void client.subscribe('deal:123', { token: 42 });
client.on('subscribe.error', (p) => {
  // @ts-expect-error reason is one of the server's reasons
  const r: 'nope' = p.reason;
  void r;
});

// Presence, typing, read receipts.

client.typing('thread:9');
client.stopTyping('thread:9');
const stopWatching: () => void = client.onTyping('thread:9', (users) => {
  const first: string | undefined = users[0];
  void first;
}, { timeoutMs: 8000 });
void stopWatching;
const present: Promise<ChannelPresence> = client.presence('thread:9');
void present.then((p) => {
  const count: number = p.count;
  const users: string[] | undefined = p.users;
  void [count, users];
}).catch((e: unknown) => e instanceof PresenceError && e.reason === 'not_subscribed');
client.on('presence.join', (p) => {
  const who: string = p.userId;
  void who;
});
client.on('typing', (p) => {
  const active: boolean = p.active;
  void active;
});
client.on('thread.read', (p) => {
  const at: number = p.readAt;
  const thread: string = p.threadId;
  void [at, thread];
});
void client.send('typing.start', { channel: 'thread:9' });
void client.send('typing.start', {}); // Ask Zena's typing, upstream as before
// @ts-expect-error typing.stop is the SDK's (stopTyping), not a send
void client.send('typing.stop', { channel: 'thread:9' });
// @ts-expect-error presence.get is the SDK's (presence)
void client.send('presence.get', { channel: 'thread:9' });
// @ts-expect-error the handler gets the users, not a payload
client.onTyping('thread:9', (users: number) => users);

// The wire format: JSON (default) or MessagePack, the same typed API either way.
const binary = connect({ url: 'ws://127.0.0.1:1/ws', token: 't', format: 'msgpack' });
binary.on('deal.risk', (p) => {
  const level: 'medium' | 'high' = p.riskLevel;
  void level;
});
// @ts-expect-error only 'json' and 'msgpack'
connect({ url: 'ws://127.0.0.1:1/ws', token: 't', format: 'cbor' });
