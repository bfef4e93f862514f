#pragma once
// Client events to the backend through a Redis stream: each event is appended with
// `XADD <stream> MAXLEN ~ <max_len> * type <type> userId <user> event <json>`, where <json> is
// the same body the webhook receives (webhook_body.hpp). A backend reads the stream with a
// consumer group, at least once. Documented in docs/upstream.md.
//
// Threading: owns one thread and one Redis connection. `submit` may be called from any thread
// and never blocks on Redis (a short lock on the queue). Events are appended in the order they
// were submitted, pipelined in batches. When Redis is unreachable the thread reconnects with
// backoff and the events wait; the queue keeps at most `max_queue`, and beyond that the oldest
// is dropped and counted (the socket loops are never slowed by Redis).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "observability/metrics.hpp"
#include "redis/connection.hpp"

namespace zena::upstream {

struct redis_stream_settings {
    redis::endpoint endpoint;
    std::string stream = "zena:client-events";
    std::int64_t max_len = 100000;  // MAXLEN ~: Redis trims the stream to about this many entries
    std::size_t max_queue = 10000;
    std::chrono::milliseconds timeout{2000};  // connect and each round trip
};

class redis_stream {
public:
    redis_stream(redis_stream_settings settings, observability::metrics& metrics);
    ~redis_stream();  // stops the thread; events still queued are dropped and counted
    redis_stream(const redis_stream&) = delete;
    redis_stream& operator=(const redis_stream&) = delete;

    void submit(std::string_view type, std::string_view user_id, std::string body);

private:
    struct entry {
        std::string type;
        std::string user_id;
        std::string body;
    };
    void run();
    // Appends up to `n` entries from the queue's front; true when Redis took them all.
    bool append_batch(redis::connection& c, std::size_t n);

    redis_stream_settings settings_;
    observability::metrics& metrics_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<entry> queue_;    // guarded by mutex_
    std::size_t in_flight_ = 0;  // entries at the front being appended; guarded by mutex_
    bool stopping_ = false;      // guarded by mutex_
    std::thread thread_;
};

}  // namespace zena::upstream
