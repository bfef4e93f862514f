#pragma once
// The subscribe proxy (docs/channels.md, grant 3): asks the backend whether a user may subscribe
// to a channel. Each check POSTs {"userId":..,"channel":..} (Content-Type: application/json,
// signed like the webhook: X-Zena-Signature: sha256=<hex HMAC-SHA256 of the body>, when a secret
// is set) to the configured http:// or https:// URL. 200 allows; any other 2xx, a 3xx or a 4xx
// (403 is the documented one) forbids; a 1xx or 5xx, a timeout, a refused connection, a
// certificate that does not verify, a malformed or too large response answers `unavailable`.
//
// Threading: runs on an http_client of its own (upstream/http_client.hpp). `check` may be called
// from any thread and never blocks (it posts); `done` is called exactly once, on the client's
// thread, so callers post back to their own loop. The destructor answers every check still
// pending `unavailable` (on the client's thread, before it returns); it must not run on that
// thread (from a `done`), and `check` must not be called once it has begun.
//
// Limits (the client's): at most `max_in_flight` requests at once, each on its own keep-alive
// HTTP/1.1 connection (idle ones are reused; one the server closed is reopened). More wait in a
// FIFO queue of at most `max_queue`; a check beyond that answers `unavailable` at once. Each check
// has `timeout` from the call of `check` for everything (queueing, connect, TLS, write, read): one
// still queued at its deadline answers `unavailable` without being sent. A response (header and
// body) is read up to k_max_proxy_response_bytes.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "observability/metrics.hpp"
#include "util/url.hpp"

namespace zena::upstream {

struct subscribe_proxy_settings {
    util::http_url url;                       // http(s)://host[:port]/path
    std::string secret;                       // HMAC key (webhook.secret); empty: no signature header
    std::string ca_file;                      // PEM certificates trusted for https; empty: the system's store
    std::chrono::milliseconds timeout{2000};  // per check, from the call of `check`
    std::size_t max_in_flight = 64;           // requests (and so connections) at once
    std::size_t max_queue = 10000;            // checks waiting for a free request slot
};

enum class proxy_verdict : std::uint8_t { allow, forbid, unavailable };

std::string_view to_string(proxy_verdict verdict);

// The verdict of an HTTP status (200: allow; other 2xx, 3xx, 4xx: forbid; the rest: unavailable).
proxy_verdict verdict_of_status(unsigned status);

// The body of one check: {"userId":<user>,"channel":<channel>}, JSON-escaped.
std::string subscribe_check_body(std::string_view user, std::string_view channel);

// The largest response read, status line, header and body together; beyond it: unavailable.
inline constexpr std::size_t k_max_proxy_response_bytes = 64 * 1024;

class subscribe_proxy {
public:
    // `metrics` is kept for the proxy's life (nothing is counted in it yet).
    subscribe_proxy(subscribe_proxy_settings settings, observability::metrics& metrics);
    ~subscribe_proxy();
    subscribe_proxy(const subscribe_proxy&) = delete;
    subscribe_proxy& operator=(const subscribe_proxy&) = delete;

    // Asks whether `user` may subscribe to `channel`; `done` gets the verdict, once, on the
    // proxy's thread. Thread-safe, never blocks.
    void check(std::string_view user, std::string_view channel, std::function<void(proxy_verdict)> done);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace zena::upstream
