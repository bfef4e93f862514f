#pragma once
// Process-wide counters, rendered for Prometheus at /metrics. Every thread increments them with
// relaxed atomics. A publish adds its totals (published, delivered) once, not once per
// connection; what happens to one connection's queue (a latest frame replaced, an ephemeral one
// dropped, a slow-consumer close) is added by that connection, on those rarer paths only.

#include <atomic>
#include <cstdint>
#include <string>

namespace zena::observability {

struct metrics {
    using counter = std::atomic<std::uint64_t>;

    counter connections_opened{0};
    counter connections_closed{0};
    counter auth_failures{0};
    counter client_messages_valid{0};
    counter client_messages_invalid{0};
    counter events_published{0};            // accepted publishes (one per API call target set)
    counter messages_delivered{0};          // frames queued to connections
    counter slow_consumer_closes{0};        // connections closed for exceeding their send queue
    counter messages_coalesced{0};          // latest-class messages that replaced a queued older one
    counter messages_dropped_ephemeral{0};  // ephemeral messages dropped for a connection behind
    counter heartbeat_timeouts{0};          // connections terminated for not answering a ping
    struct upstream_counters {
        counter delivered{0};  // client events the destination accepted
        counter failed{0};     // client events it refused, or given up after every attempt
        counter dropped{0};    // client events dropped from its full queue
    };
    upstream_counters webhook;                  // upstream/webhook
    upstream_counters redis_stream;             // upstream/redis_stream
    counter client_events_unrouted{0};          // valid client events that no route sends anywhere
    counter redis_publishes{0};                 // publish messages read from Redis
    counter redis_publishes_refused{0};         // of those, refused (bad JSON, shape or catalog)
    counter redis_ingest_gaps{0};               // times the Redis publish channel's subscription was lost
    counter redis_ingest_gap_ms{0};             // milliseconds it stayed lost (publishes to it in that time are lost)
    counter handshakes_refused_origin{0};       // 403: Origin not allowed
    counter handshakes_refused_capacity{0};     // 503: limits.max_connections reached
    counter handshakes_refused_address{0};      // 429/503: per-address connections, rate, or table full
    counter connections_refused_user_limit{0};  // closed 1013: limits.max_connections_per_user
    counter client_messages_rate_limited{0};    // dropped over websocket.client_messages_per_second
    counter rate_limit_closes{0};               // connections closed 1008 for keeping at it
    counter frame_budget_closes{0};             // closed 1008: websocket.client_frames_per_second
    counter message_timeout_closes{0};          // closed 1008: websocket.message_timeout_ms
    counter tokens_expired{0};                  // connections closed 1008 at their token's exp
    counter tokens_refreshed{0};                // auth.refresh accepted
    counter subscribes{0};                      // channels taken by connections (client or server subscribes)
    counter subscribes_refused{0};              // subscribe.error answers
    counter history_evicted{0};                 // stored events dropped by channels.history_max_bytes
    counter engine_gaps{0};                     // Redis engine: stored events a node could not recover
    counter engine_roundtrip_us{0};             // Redis engine: the last canary's trip through Pub/Sub (gauge)
    counter engine_canaries_lost{0};            // Redis engine: canaries not back within the engine timeout
    counter offline_notifications{0};           // user.offline_event sent upstream
    counter http_requests{0};
    counter api_rejections{0};     // API calls answered with 4xx
    counter api_answers_paced{0};  // API answers held until the turn's flush (net::worker pacing)
    counter api_duplicates{0};     // publishes skipped on every target: their idempotency key was published
    counter connections_limit{0};  // a gauge: limits.max_connections, set at start (for alerts)

    static void add(counter& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

    // Prometheus text exposition format, with the current gauges.
    std::string render(std::uint64_t connections, std::uint64_t users) const;
};

}  // namespace zena::observability
