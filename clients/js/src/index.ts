export * from './catalog.generated.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { CLOSE_CODES, closeCodeInfo, type CloseCodeInfo } from './close_codes.js';
export { localStoragePositions, memoryPositions, type Position, type PositionStore, type StorageLike } from './positions.js';
export {
  AskStreamError,
  AskStreamInterruptedError,
  ClientClosedError,
  connect,
  PresenceError,
  RealtimeClient,
  SendQueueFullError,
  SubscribeError,
  type ChannelPresence,
  type ConnectionState,
  type ConnectOptions,
  type Envelope,
  type OnTypingOptions,
  type ResyncEvent,
  type StateEvent,
  type SubscribeErrorReason,
  type SubscribeOptions,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
  type WireFormat,
} from './client.js';
