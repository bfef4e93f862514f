#include "upstream/webhook.hpp"

#include <deque>
#include <thread>

#include "observability/log.hpp"
#include "util/result.hpp"
#include "ws/asio.hpp"

namespace zena::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

struct webhook::impl {
    impl(webhook_settings s, observability::metrics& m)
        : settings(std::move(s)),
          metrics(m),
          work(asio::make_work_guard(io)),
          retry_timer(io),
          resolver(io),
          thread([this] { io.run(); }) {}

    ~impl() {
        io.stop();
        thread.join();
        if (!queue.empty()) observability::metrics::add(metrics.webhook.dropped, queue.size());
    }

    // On the webhook thread from here on.
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
        auto stream = std::make_shared<beast::tcp_stream>(io);
        stream->expires_after(settings.timeout);
        auto request = std::make_shared<http::request<http::string_body>>(http::verb::post, url.target, 11);
        request->set(http::field::host, url.host);
        request->set(http::field::content_type, "application/json");
        request->set(http::field::user_agent, "zena-realtime");
        if (!settings.secret.empty())
            request->set("X-Zena-Signature", webhook_signature(settings.secret, queue.front()));
        request->body() = queue.front();
        request->prepare_payload();
        resolver.async_resolve(
            url.host, url.port,
            [this, n, stream, request](beast::error_code ec, const asio::ip::tcp::resolver::results_type& r) {
                if (ec) return done(n, util::error{ec.message()});
                stream->async_connect(r, [this, n, stream, request](beast::error_code ec2, const auto&) {
                    if (ec2) return done(n, util::error{ec2.message()});
                    http::async_write(
                        *stream, *request, [this, n, stream, request](beast::error_code ec3, std::size_t) {
                            if (ec3) return done(n, util::error{ec3.message()});
                            auto buffer = std::make_shared<beast::flat_buffer>();
                            auto response = std::make_shared<http::response<http::string_body>>();
                            http::async_read(*stream, *buffer, *response,
                                             [this, n, stream, buffer, response](beast::error_code ec4, std::size_t) {
                                                 if (ec4) return done(n, util::error{ec4.message()});
                                                 const auto status = response->result_int();
                                                 if (status >= 200 && status < 300) return done(n, util::status{});
                                                 done(n, util::error{"status " + std::to_string(status)});
                                             });
                        });
                });
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
            retry_timer.expires_after(delay);
            retry_timer.async_wait([this, n](beast::error_code ec) {
                if (!ec) attempt(n + 1);
            });
            return;
        } else {
            observability::metrics::add(metrics.webhook.failed);
            spdlog::warn("webhook gave up attempts={} error=\"{}\"", n, outcome.message());
        }
        queue.pop_front();
        sending = false;
        next();
    }

    void next() {
        if (!queue.empty()) attempt(1);
    }

    webhook_settings settings;
    observability::metrics& metrics;
    const util::http_url& url = settings.url;
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work;
    asio::steady_timer retry_timer;
    asio::ip::tcp::resolver resolver;
    std::deque<std::string> queue;  // front: the event being sent
    bool sending = false;
    std::thread thread;
};

webhook::webhook(webhook_settings settings, observability::metrics& metrics)
    : impl_(std::make_unique<impl>(std::move(settings), metrics)) {}

webhook::~webhook() = default;

void webhook::submit(std::string body) {
    asio::post(impl_->io, [i = impl_.get(), body = std::move(body)]() mutable { i->enqueue(std::move(body)); });
}

}  // namespace zena::upstream
