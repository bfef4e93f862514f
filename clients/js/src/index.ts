export * from './catalog.generated.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { CLOSE_CODES, closeCodeInfo, type CloseCodeInfo } from './close_codes.js';
export {
  AskStreamError,
  ClientClosedError,
  connect,
  RealtimeClient,
  SendQueueFullError,
  type ConnectionState,
  type ConnectOptions,
  type Envelope,
  type Position,
  type StateEvent,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
