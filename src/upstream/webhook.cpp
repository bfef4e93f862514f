#include "upstream/webhook.hpp"

#include <algorithm>
#include <deque>

#include "observability/log.hpp"
#include "upstream/http_client.hpp"
#include "util/result.hpp"

namespace zena::upstream {

namespace {

// The backend's answer is its status; a longer body is not read.
constexpr std::size_t k_max_webhook_response_bytes = 64 * 1024;

}  // namespace

struct webhook::impl {
    impl(webhook_settings s, observability::metrics& m)
        : settings(std::move(s)),
          metrics(m),
          client(http_client_settings{.ca_file = settings.ca_file,
                                      .max_in_flight = 1,
                                      .max_queue = 1,
                                      .max_response_bytes = k_max_webhook_response_bytes,
                                      .max_idle_per_origin = 1}) {}

    ~impl() {
        // Set on the client's thread before it answers the request on the wire "stopped", so
        // that answer is neither retried nor counted as a failure.
        client.post([this] { closing = true; });
        client.stop();
        if (!queue.empty()) observability::metrics::add(metrics.webhook.dropped, queue.size());
    }

    // On the client's thread from here on.
    void enqueue(std::string body) {
        if (queue.size() >= settings.max_queue) {
            // The oldest waiting event goes (never the one on the wire): newer ones matter more.
            observability::metrics::add(metrics.webhook.dropped);
            const auto oldest_waiting = queue.begin() + (sending ? 1 : 0);
            if (oldest_waiting == queue.end()) return;  // max_queue 1, one in flight: drop the new one
            queue.erase(oldest_waiting);
        }
        queue.push_back(std::move(body));
        if (!sending) attempt(1);
    }

    void attempt(std::int64_t n) {
        sending = true;
        http_request request{.url = settings.url, .body = queue.front(), .timeout = settings.timeout};
        if (!settings.secret.empty()) {
            request.headers.emplace_back("X-Zena-Signature", webhook_signature(settings.secret, request.body));
        }
        client.send(std::move(request), [this, n](const http_result& answer) {
            if (closing) return;
            if (!answer) return done(n, util::error{answer.message()});
            const auto status = answer->status;
            if (status >= 200 && status < 300) return done(n, util::status{});
            done(n, util::error{"status " + std::to_string(status)});
        });
    }

    // Attempt `n` finished.
    void done(std::int64_t n, const util::status& outcome) {
        if (outcome) {
            observability::metrics::add(metrics.webhook.delivered);
        } else if (n < settings.max_attempts) {
            const auto delay = settings.backoff * (std::int64_t{1} << std::min<std::int64_t>(n - 1, 10));
            spdlog::debug("webhook attempt failed attempt={} error=\"{}\" retry_ms={}", n, outcome.message(),
                          delay.count());
            client.after(delay, [this, n] { attempt(n + 1); });
            return;
        } else {
            observability::metrics::add(metrics.webhook.failed);
            spdlog::warn("webhook gave up attempts={} error=\"{}\"", n, outcome.message());
        }
        queue.pop_front();
        sending = false;
        if (!queue.empty()) attempt(1);
    }

    webhook_settings settings;
    observability::metrics& metrics;
    std::deque<std::string> queue;  // front: the event being sent
    bool sending = false;
    bool closing = false;
    http_client client;  // last: its thread stops before the members its callbacks use go
};

webhook::webhook(webhook_settings settings, observability::metrics& metrics)
    : impl_(std::make_unique<impl>(std::move(settings), metrics)) {}

webhook::~webhook() = default;

void webhook::submit(std::string body) {
    impl_->client.post([i = impl_.get(), body = std::move(body)]() mutable { i->enqueue(std::move(body)); });
}

}  // namespace zena::upstream
