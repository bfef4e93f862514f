export * from './catalog.generated.js';
export {
  createRealtimeService,
  RealtimeError,
  RealtimeService,
  type EventType,
  type PublishResult,
  type RealtimeServiceOptions,
  type RedisPublisher,
} from './service.js';
