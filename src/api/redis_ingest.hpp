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
// again at once, then with backoff between failed attempts; the stream is read on from the last
// entry seen, so nothing published while the connection was down is missed.
//
// A channel cannot offer that: Redis Pub/Sub keeps nothing, so what is published while the
// channel is not subscribed is lost. So the channel tries again every 50 ms while Redis is away
// (a refused connect costs next to nothing) and subscribes as soon as it answers; each lost
// subscription is counted (zena_redis_ingest_gaps_total) with the time it stayed lost
// (zena_redis_ingest_gap_seconds_total), and `readiness` reports the channel down from the start
// until it is subscribed and whenever it is lost, so /readyz answers 503 meanwhile.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/readiness.hpp"
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
    // Starts reading at once; `api`, `metrics` and `ready` must outlive this.
    redis_ingest(redis_ingest_settings settings, server_api& api, observability::metrics& metrics, readiness& ready);
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
    struct retry;
    // Opens the connection, or waits (with backoff) and returns null; `what` names the source.
    std::unique_ptr<redis::connection> connect(const char* what, retry& attempts);
    // Waits `attempts`' backoff (or until stopping), then doubles it up to its maximum.
    void back_off(retry& attempts);

    redis_ingest_settings settings_;
    server_api& api_;
    observability::metrics& metrics_;
    readiness& ready_;
    std::shared_ptr<flow> flow_;
    std::atomic<bool> stopping_{false};
    std::vector<std::thread> threads_;
};

}  // namespace zena::api
