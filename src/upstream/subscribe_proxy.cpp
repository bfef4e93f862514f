#include "upstream/subscribe_proxy.hpp"

#include <utility>

#include "observability/log.hpp"
#include "protocol/json_writer.hpp"
#include "upstream/http_client.hpp"
#include "upstream/webhook_body.hpp"

namespace zena::upstream {

namespace {

// The response's bound split between the header (the client's 16 KiB) and the body (the
// backend's answer is its status: a body is read only to find the end of the message).
constexpr std::size_t k_max_body_bytes = k_max_proxy_response_bytes - 16 * 1024;

// Failures are logged at info, at most this many lines a second (a backend that is down would
// otherwise log one line per subscribe); the lines held back are counted in the next one.
constexpr double k_failure_logs_per_second = 1;

}  // namespace

std::string_view to_string(proxy_verdict verdict) {
    switch (verdict) {
        case proxy_verdict::allow: return "allow";
        case proxy_verdict::forbid: return "forbid";
        case proxy_verdict::unavailable: return "unavailable";
    }
    return "unavailable";
}

proxy_verdict verdict_of_status(unsigned status) {
    if (status == 200) return proxy_verdict::allow;
    if (status > 200 && status < 500) return proxy_verdict::forbid;
    return proxy_verdict::unavailable;
}

std::string subscribe_check_body(std::string_view user, std::string_view channel) {
    return protocol::json_object().add("userId", user).add("channel", channel).str();
}

struct subscribe_proxy::impl {
    impl(subscribe_proxy_settings s, observability::metrics& m)
        : settings(std::move(s)),
          metrics(m),
          client(http_client_settings{.ca_file = settings.ca_file,
                                      .max_in_flight = settings.max_in_flight,
                                      .max_queue = settings.max_queue,
                                      .max_response_bytes = k_max_body_bytes,
                                      .max_idle_per_origin = settings.max_in_flight}) {
        if (url.host.empty()) spdlog::error("subscribe proxy has no http(s):// URL; every check answers unavailable");
    }

    ~impl() {
        // Set on the client's thread before it answers the pending checks, so that those answers
        // are not logged as failures.
        client.post([this] { stopping = true; });
        client.stop();
    }

    void check(std::string_view user, std::string_view channel, std::function<void(proxy_verdict)> done) {
        http_request request{.url = url, .body = subscribe_check_body(user, channel), .timeout = settings.timeout};
        if (!settings.secret.empty()) {
            request.headers.emplace_back("X-Zena-Signature", webhook_signature(settings.secret, request.body));
        }
        client.send(std::move(request), [this, done = std::move(done)](const http_result& answer) {
            if (!answer) return this->answer(done, proxy_verdict::unavailable, answer.message());
            const auto status = answer->status;
            this->answer(done, verdict_of_status(status), "status " + std::to_string(status));
        });
    }

    // On the client's thread.
    void answer(const std::function<void(proxy_verdict)>& done, proxy_verdict verdict, std::string_view why) {
        if (stopping) {
            verdict = proxy_verdict::unavailable;
        } else if (verdict == proxy_verdict::unavailable) {
            if (failure_log.allow(observability::monotonic_ms())) {
                spdlog::info("subscribe proxy unavailable url={} error=\"{}\" suppressed={}", util::to_string(url), why,
                             failure_log.take_suppressed());
            }
        } else {
            spdlog::debug("subscribe proxy verdict={} reason=\"{}\"", to_string(verdict), why);
        }
        if (done) done(verdict);
    }

    subscribe_proxy_settings settings;
    observability::metrics& metrics;
    const util::http_url& url = settings.url;
    observability::log_limiter failure_log{k_failure_logs_per_second};
    bool stopping = false;  // the client's thread only
    http_client client;     // last: its thread stops before the members its callbacks use go
};

subscribe_proxy::subscribe_proxy(subscribe_proxy_settings settings, observability::metrics& metrics)
    : impl_(std::make_unique<impl>(std::move(settings), metrics)) {}

subscribe_proxy::~subscribe_proxy() = default;

void subscribe_proxy::check(std::string_view user, std::string_view channel, std::function<void(proxy_verdict)> done) {
    impl_->check(user, channel, std::move(done));
}

}  // namespace zena::upstream
