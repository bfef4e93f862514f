#include "api/redis_ingest.hpp"

#include <array>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace zena::api {
namespace {

constexpr std::chrono::milliseconds k_poll{200};  // how often a waiting thread looks at stopping_
constexpr std::chrono::milliseconds k_min_backoff{100};
constexpr std::chrono::milliseconds k_max_backoff{5000};
constexpr std::string_view k_read_count = "256";  // stream entries per XREAD
constexpr double k_refusal_logs_per_second = 5;

}  // namespace

// Messages being delivered; shared with the completion callbacks, which may outlive a stop.
struct redis_ingest::flow {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t in_flight = 0;
};

redis_ingest::redis_ingest(redis_ingest_settings settings, server_api& api, observability::metrics& metrics)
    : settings_(std::move(settings)), api_(api), metrics_(metrics), flow_(std::make_shared<flow>()) {
    if (!settings_.channel.empty()) threads_.emplace_back([this] { read_channel(); });
    if (!settings_.stream.empty()) threads_.emplace_back([this] { read_stream(); });
}

redis_ingest::~redis_ingest() {
    stopping_ = true;
    flow_->changed.notify_all();
    for (auto& t : threads_) t.join();
}

std::unique_ptr<redis::connection> redis_ingest::connect(const char* what, std::chrono::milliseconds& backoff) {
    std::string error;
    auto c = redis::connection::open(settings_.endpoint, settings_.timeout, error);
    if (c) {
        spdlog::info("redis publish {} connected host={} port={}", what, settings_.endpoint.host,
                     settings_.endpoint.port);
        backoff = k_min_backoff;
        return c;
    }
    spdlog::warn("redis publish {} cannot connect host={} port={} error=\"{}\" retry_ms={}", what,
                 settings_.endpoint.host, settings_.endpoint.port, error, backoff.count());
    for (auto waited = std::chrono::milliseconds{0}; waited < backoff && !stopping_; waited += k_poll) {
        std::this_thread::sleep_for(std::min(k_poll, backoff - waited));
    }
    backoff = std::min(backoff * 2, k_max_backoff);
    return nullptr;
}

void redis_ingest::refused(const http_response& response, observability::log_limiter& limiter) {
    observability::metrics::add(metrics_.redis_publishes_refused);
    if (limiter.allow(observability::monotonic_ms())) {
        spdlog::warn("redis publish refused status={} error={} suppressed={}", response.status, response.body,
                     limiter.take_suppressed());
    }
}

bool redis_ingest::deliver(std::string_view body, observability::log_limiter& limiter) {
    observability::metrics::add(metrics_.redis_publishes);
    const auto refuse = [&](const http_response& response) { refused(response, limiter); };
    if (body.size() > settings_.max_message_bytes) {
        refuse(error_response(413, "message larger than http.max_body_bytes"));
        return true;
    }
    {
        std::unique_lock lock(flow_->mutex);
        while (flow_->in_flight >= settings_.max_in_flight) {
            if (stopping_) return false;
            flow_->changed.wait_for(lock, k_poll);
        }
        ++flow_->in_flight;
    }
    api_.publish_message(body, refuse, [f = flow_] {
        {
            const std::lock_guard lock(f->mutex);
            --f->in_flight;
        }
        f->changed.notify_one();
    });
    return true;
}

void redis_ingest::read_channel() {
    observability::log_limiter limiter{k_refusal_logs_per_second};
    auto backoff = k_min_backoff;
    while (!stopping_) {
        auto c = connect("channel", backoff);
        if (!c) continue;
        const std::array<std::string_view, 2> subscribe{"SUBSCRIBE", settings_.channel};
        c->append(subscribe);
        while (!stopping_ && !c->broken()) {
            auto r = c->wait_reply(k_poll);
            if (r.empty()) continue;
            // ["subscribe", channel, n] confirms; ["message", channel, body] is a publish.
            if (r.size() == 3 && redis::str_of(r.element(0)) == "message") {
                if (!deliver(redis::str_of(r.element(2)), limiter)) return;
            } else if (!r.ok()) {
                spdlog::warn("redis publish channel error=\"{}\"", r.error_text());
                break;
            }
        }
        if (!stopping_) spdlog::warn("redis publish channel connection lost error=\"{}\"", c->error());
    }
}

void redis_ingest::read_stream() {
    observability::log_limiter limiter{k_refusal_logs_per_second};
    auto backoff = k_min_backoff;
    std::string last_id;  // empty until the first connection finds where the stream ends
    const auto block_ms = std::to_string(k_poll.count());
    while (!stopping_) {
        auto c = connect("stream", backoff);
        if (!c) continue;
        if (last_id.empty()) {
            // Start after the newest entry: what was published before the server started is old.
            const std::array<std::string_view, 6> newest{"XREVRANGE", settings_.stream, "+", "-", "COUNT", "1"};
            auto r = c->command(newest);
            if (!r.ok()) {
                spdlog::warn("redis publish stream XREVRANGE failed error=\"{}\"",
                             r.empty() ? c->error() : r.error_text());
                continue;
            }
            last_id = r.size() == 1 ? std::string{redis::str_of(redis::element_of(r.element(0), 0))} : "0-0";
            spdlog::info("redis publish stream reading stream={} after={}", settings_.stream, last_id);
        }
        while (!stopping_) {
            const std::array<std::string_view, 8> xread{"XREAD",  "COUNT",   k_read_count,     "BLOCK",
                                                        block_ms, "STREAMS", settings_.stream, last_id};
            auto r = c->command(xread);
            if (r.empty()) {
                spdlog::warn("redis publish stream connection lost error=\"{}\"", c->error());
                break;
            }
            if (!r.ok()) {
                spdlog::warn("redis publish stream XREAD failed error=\"{}\"", r.error_text());
                break;
            }
            // nil on timeout; else [[stream, [[id, [field, value, ...]], ...]]]
            const auto* entries = redis::element_of(r.element(0), 1);
            for (std::size_t i = 0; i < redis::size_of(entries); ++i) {
                if (!deliver_entry(redis::element_of(entries, i), last_id, limiter)) return;
            }
        }
    }
}

bool redis_ingest::deliver_entry(const redisReply* entry, std::string& last_id, observability::log_limiter& limiter) {
    // [id, [field, value, ...]]: the message is the value of the field `body`.
    const auto* fields = redis::element_of(entry, 1);
    std::optional<std::string_view> body;
    for (std::size_t k = 0; k + 1 < redis::size_of(fields); k += 2) {
        if (redis::str_of(redis::element_of(fields, k)) == "body")
            body = redis::str_of(redis::element_of(fields, k + 1));
    }
    last_id = std::string{redis::str_of(redis::element_of(entry, 0))};
    if (body) return deliver(*body, limiter);
    observability::metrics::add(metrics_.redis_publishes);
    refused(error_response(400, "stream entry " + last_id + " has no body field", "body"), limiter);
    return true;
}

}  // namespace zena::api
