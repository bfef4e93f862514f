#pragma once
// The one HTTP/1.1 client of the gateway, for every call it makes to a backend: the webhook, the
// subscribe proxy and the JWKS fetch (docs/upstream.md#the-http-client). Free of Asio and Beast
// (pimpl), so its users compile without them.
//
// Threading: owns one thread and its io_context. `send`, `post` and `after` may be called from
// any thread and never block; every callback (a request's `done`, a posted or delayed task) runs
// on the client's thread, so a user whose state is touched only from those callbacks needs no
// lock. `stop` (and the destructor) answers every request still pending with the error
// "stopped", on the client's thread, drops the delayed tasks without running them and joins the
// thread; it must not be called from the client's thread, and nothing may be sent, posted or
// delayed once it has begun.
//
// Limits: at most `max_in_flight` requests on the wire at once, each on its own connection; more
// wait in one FIFO queue of at most `max_queue`, and a request beyond it fails at once ("queue
// full"). A request's `timeout` runs from the call of `send` and covers everything: the queue,
// resolving, connecting, the TLS handshake, writing and reading. One still queued at its deadline
// fails without being sent. A response's header is read up to 16 KiB and its body up to
// `max_response_bytes`; a larger one fails. Connections are kept alive per origin (scheme, host,
// port), at most `max_idle_per_origin` idle ones, the most recently used reused first; one the
// server closed while idle is not reused, and a request whose reused connection fails before any
// byte of the answer moves once to a fresh connection, within its deadline. Redirects are
// answered as they are unless the request asks (`max_redirects`).
//
// TLS (https://): OpenSSL through Asio's ssl stream, TLS 1.2 or 1.3 only. The peer's chain is
// verified against `ca_file` (PEM) or, when it is empty, the system's store; its name against
// the URL's host (a DNS name is also sent as SNI; an IP address must be in the certificate's
// subjectAltName). A certificate that does not verify fails the request ("tls: ...").

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "util/result.hpp"
#include "util/url.hpp"

namespace zena::upstream {

struct http_client_settings {
    std::string ca_file;                         // PEM certificates trusted for https; empty: the system's store
    std::size_t max_in_flight = 64;              // requests (and so connections) on the wire at once
    std::size_t max_queue = 10000;               // requests waiting for a free slot
    std::size_t max_response_bytes = 64 * 1024;  // a response's body; the header has 16 KiB of its own
    std::size_t max_idle_per_origin = 64;        // kept-alive connections waiting for the next request
};

enum class http_method : std::uint8_t { get, post };

struct http_request {
    http_method method = http_method::post;
    util::http_url url;
    std::string content_type = "application/json";  // sent with a body
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // more fields, e.g. a signature
    std::chrono::milliseconds timeout{5000};                   // from the call of `send`, for everything
    unsigned max_redirects = 0;  // 301, 302, 303, 307, 308 followed this many times (never https to http)
};

struct http_response {
    unsigned status = 0;
    std::string body;
};

// A response, whatever its status, or why there is none ("connect: ...", "tls: ...", "timed out",
// "queue full", "response too large ...", "stopped", ...).
using http_result = util::result<http_response>;

// Whether `ca_file` holds certificates a client could trust (for a check at start).
util::status check_ca_file(const std::string& ca_file);

class http_client {
public:
    explicit http_client(http_client_settings settings);
    ~http_client();  // stop()
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    // Sends `request`; `done` gets its result once, on the client's thread.
    void send(http_request request, std::function<void(http_result)> done);
    // Runs `task` on the client's thread.
    void post(std::function<void()> task);
    // Runs `task` on the client's thread after `delay`, unless the client stops first.
    void after(std::chrono::milliseconds delay, std::function<void()> task);
    // Answers what is pending "stopped" and joins the thread; idempotent.
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace zena::upstream
