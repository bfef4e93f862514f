#pragma once
// Publishing through Redis: backends that already use Redis publish without HTTP. The server
// reads publish messages (the bodies of the HTTP API: one /api/broadcast body, with "all": true
// for everyone, or a /api/batch body) from a Redis channel (SUBSCRIBE) and/or a Redis stream
// (XREAD, field `body`), and hands each to server_api::publish_message: the same checks, the
// same delivery, the same order. Refusals are logged (rate-limited) and counted in
// zena_redis_publishes_refused_total. Documented in docs/api.md.
//
// Threading: one thread and one Redis connection per source. Each source's messages are
// delivered in the order Redis gives them (one thread posts them all). At most `max_in_flight`
// messages are being delivered at once; beyond that the thread waits before reading more, so a
// flood in Redis cannot grow the event loops' queues without bound. A lost connection is opened
// again with backoff; the stream is read on from the last entry seen, so nothing published
// while the connection was down is missed (a channel cannot offer that: Redis Pub/Sub keeps
// nothing).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/server_api.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "redis/connection.hpp"

namespace zena::api {

struct redis_ingest_settings {
    redis::endpoint endpoint;
    std::string channel;  // empty: no channel
    std::string stream;   // empty: no stream
    std::size_t max_message_bytes = 1 << 20;
    std::chrono::milliseconds timeout{2000};
    std::size_t max_in_flight = 1024;
};

class redis_ingest {
public:
    // Starts reading at once; `api` and `metrics` must outlive this.
    redis_ingest(redis_ingest_settings settings, server_api& api, observability::metrics& metrics);
    ~redis_ingest();  // stops reading and joins the threads
    redis_ingest(const redis_ingest&) = delete;
    redis_ingest& operator=(const redis_ingest&) = delete;

private:
    struct flow;
    void read_channel();
    void read_stream();
    // One stream entry: delivers its `body` field (or refuses it) and moves `last_id` past it.
    // False when stopping.
    bool deliver_entry(const redisReply* entry, std::string& last_id, observability::log_limiter& limiter);
    // Delivers one message; waits while too many are in flight. False when stopping.
    bool deliver(std::string_view body, observability::log_limiter& limiter);
    // Counts a refused message and logs it (rate-limited).
    void refused(const http_response& response, observability::log_limiter& limiter);
    // Opens the connection, or waits (with backoff) and returns null; `what` names the source.
    std::unique_ptr<redis::connection> connect(const char* what, std::chrono::milliseconds& backoff);

    redis_ingest_settings settings_;
    server_api& api_;
    observability::metrics& metrics_;
    std::shared_ptr<flow> flow_;
    std::atomic<bool> stopping_{false};
    std::vector<std::thread> threads_;
};

}  // namespace zena::api
