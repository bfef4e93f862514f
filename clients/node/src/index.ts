export * from './catalog.generated.js';
export {
  createRealtimeService,
  RealtimeError,
  RealtimeService,
  type ChannelPresence,
  type EventType,
  type HistoryEvent,
  type HistoryOptions,
  type HistoryPage,
  type HistorySince,
  type PublishOptions,
  type PublishResult,
  type RealtimeServiceOptions,
  type RedisPublisher,
  type SubscriptionResult,
  type UserPresence,
} from './service.js';
