#pragma once
// Process-wide counters, rendered for Prometheus at /metrics. Every thread increments them with
// relaxed atomics; the hot path adds once per publish per thread, never once per connection.

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
    counter upstream_delivered{0};          // client events the webhook accepted (2xx)
    counter upstream_failed{0};             // client events given up after every attempt
    counter upstream_dropped{0};            // client events dropped from a full upstream queue
    counter http_requests{0};
    counter api_rejections{0};  // API calls answered with 4xx

    static void add(counter& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

    // Prometheus text exposition format, with the current gauges.
    std::string render(std::uint64_t connections, std::uint64_t users) const;
};

}  // namespace zena::observability
