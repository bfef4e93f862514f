#pragma once
// Client events to the backend over HTTP: each valid client event is POSTed (the body and its
// signature are in webhook_body.hpp) to the configured URL.
//
// Requests go through an http_client of its own (upstream/http_client.hpp: http:// or https://,
// verified against `ca_file` or the system's store), one at a time, in order, each with a
// timeout and retried with backoff, on one kept-alive connection.
//
// Threading: runs on its client's thread; `submit` may be called from any thread and never
// blocks (it posts). When full: the queue keeps at most `max_queue` events; a new event beyond
// that drops the oldest, which is counted (the socket loops are never slowed by the backend).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "observability/metrics.hpp"
#include "upstream/webhook_body.hpp"
#include "util/url.hpp"

namespace zena::upstream {

struct webhook_settings {
    util::http_url url;   // http(s)://host[:port]/path
    std::string secret;   // HMAC key; empty: no signature header
    std::string ca_file;  // PEM certificates trusted for https; empty: the system's store
    std::chrono::milliseconds timeout{5000};
    std::int64_t max_attempts = 5;
    std::chrono::milliseconds backoff{200};  // doubled after each failed attempt
    std::size_t max_queue = 10000;
};

class webhook {
public:
    webhook(webhook_settings settings, observability::metrics& metrics);
    ~webhook();  // stops its client; events still queued are dropped and counted
    webhook(const webhook&) = delete;
    webhook& operator=(const webhook&) = delete;

    // Queues one event body (already JSON). Thread-safe, never blocks.
    void submit(std::string body);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace zena::upstream
