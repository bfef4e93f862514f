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
// The channel's wait between failed connects. Redis Pub/Sub keeps nothing, so every moment
// between Redis answering again and the SUBSCRIBE is lost publishes: this bounds that moment.
// A refused connect costs one system call, so 20 a second while Redis is away is cheap.
constexpr std::chrono::milliseconds k_channel_retry{50};
constexpr std::string_view k_channel_condition = "redis_publish_channel";  // in readiness
constexpr std::string_view k_read_count = "256";                           // stream entries per XREAD
constexpr double k_refusal_logs_per_second = 5;

}  // namespace

// Messages being delivered; shared with the completion callbacks, which may outlive a stop.
struct redis_ingest::flow {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t in_flight = 0;
};

// Attempts to connect: the wait before the next one and the failures since the last success.
struct redis_ingest::retry {
    std::chrono::milliseconds min;
    std::chrono::milliseconds max;
    std::chrono::milliseconds backoff = min;
    std::uint64_t failures = 0;
};

redis_ingest::redis_ingest(redis_ingest_settings settings, server_api& api, observability::metrics& metrics,
                           readiness& ready)
    : settings_(std::move(settings)), api_(api), metrics_(metrics), ready_(ready), flow_(std::make_shared<flow>()) {
    if (!settings_.channel.empty()) {
        // Not ready until subscribed: what is published to the channel before that is lost.
        ready_.down(k_channel_condition, "redis publish channel " + settings_.channel + " not subscribed yet");
        threads_.emplace_back([this] { read_channel(); });
    }
    if (!settings_.stream.empty()) threads_.emplace_back([this] { read_stream(); });
}

redis_ingest::~redis_ingest() {
    stopping_ = true;
    flow_->changed.notify_all();
    for (auto& t : threads_) t.join();
}

std::unique_ptr<redis::connection> redis_ingest::connect(const char* what, retry& attempts) {
    std::string error;
    auto c = redis::connection::open(settings_.endpoint, settings_.timeout, error);
    if (c) {
        spdlog::info("redis publish {} connected host={} port={}", what, settings_.endpoint.host,
                     settings_.endpoint.port);
        attempts.failures = 0;
        attempts.backoff = attempts.min;
        return c;
    }
    // Logged at the 1st, 2nd, 4th, 8th... failure in a row: the channel retries often.
    const auto failures = ++attempts.failures;
    if ((failures & (failures - 1)) != 0) {
        back_off(attempts);
        return nullptr;
    }
    spdlog::warn("redis publish {} cannot connect host={} port={} error=\"{}\" retry_ms={} failures={}", what,
                 settings_.endpoint.host, settings_.endpoint.port, error, attempts.backoff.count(), attempts.failures);
    back_off(attempts);
    return nullptr;
}

void redis_ingest::back_off(retry& attempts) {
    for (auto waited = std::chrono::milliseconds{0}; waited < attempts.backoff && !stopping_; waited += k_poll) {
        std::this_thread::sleep_for(std::min(k_poll, attempts.backoff - waited));
    }
    attempts.backoff = std::min(attempts.backoff * 2, attempts.max);
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
    retry connecting{k_channel_retry, k_channel_retry};
    retry refused{k_min_backoff, k_max_backoff};  // connected, and the SUBSCRIBE failed
    // While a subscription that was up is lost: the time up to which the gap is counted in
    // zena_redis_ingest_gap_seconds_total (counted as it goes, so the metric grows during it).
    std::optional<std::int64_t> gap_counted_to;
    const auto count_gap = [&] {
        if (!gap_counted_to) return;
        const auto now = observability::monotonic_ms();
        observability::metrics::add(metrics_.redis_ingest_gap_ms, static_cast<std::uint64_t>(now - *gap_counted_to));
        gap_counted_to = now;
    };
    while (!stopping_) {
        auto c = connect("channel", connecting);
        count_gap();
        if (!c) continue;
        const std::array<std::string_view, 2> subscribe{"SUBSCRIBE", settings_.channel};
        c->append(subscribe);
        bool subscribed = false;
        const auto asked = observability::monotonic_ms();
        while (!stopping_ && !c->broken()) {
            auto r = c->wait_reply(k_poll);
            if (r.empty()) {
                if (!subscribed && observability::monotonic_ms() - asked > settings_.timeout.count()) {
                    spdlog::warn("redis publish channel SUBSCRIBE not confirmed timeout_ms={}",
                                 settings_.timeout.count());
                    break;
                }
                continue;
            }
            // ["subscribe", channel, n] confirms; ["message", channel, body] is a publish.
            if (r.size() == 3 && redis::str_of(r.element(0)) == "message") {
                if (!deliver(redis::str_of(r.element(2)), limiter)) return;
            } else if (r.size() == 3 && redis::str_of(r.element(0)) == "subscribe") {
                subscribed = true;
                refused.backoff = refused.min;
                count_gap();
                gap_counted_to.reset();
                ready_.up(k_channel_condition);
                spdlog::info("redis publish channel subscribed channel={}", settings_.channel);
            } else if (!r.ok()) {
                spdlog::warn("redis publish channel error=\"{}\"", r.error_text());
                break;
            }
        }
        if (stopping_) return;
        if (subscribed) {
            // Reconnect at once: every moment not subscribed loses publishes.
            observability::metrics::add(metrics_.redis_ingest_gaps);
            gap_counted_to = observability::monotonic_ms();
            ready_.down(k_channel_condition, "redis publish channel " + settings_.channel +
                                                 " not subscribed (connection lost): publishes to it are lost");
            spdlog::warn("redis publish channel subscription lost error=\"{}\"", c->error());
        } else {
            back_off(refused);  // connected but not subscribed (an ACL, say): do not spin
            count_gap();
        }
    }
}

void redis_ingest::read_stream() {
    observability::log_limiter limiter{k_refusal_logs_per_second};
    retry connecting{k_min_backoff, k_max_backoff};
    std::string last_id;  // empty until the first connection finds where the stream ends
    const auto block_ms = std::to_string(k_poll.count());
    while (!stopping_) {
        auto c = connect("stream", connecting);
        if (!c) continue;
        if (last_id.empty()) {
            // Start after the newest entry: what was published before the server started is old.
            const std::array<std::string_view, 6> newest{"XREVRANGE", settings_.stream, "+", "-", "COUNT", "1"};
            auto r = c->command(newest);
            if (!r.ok()) {
                spdlog::warn("redis publish stream XREVRANGE failed error=\"{}\"",
                             r.empty() ? c->error() : r.error_text());
                if (!r.empty()) back_off(connecting);  // refused, not lost: do not spin
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
                back_off(connecting);  // refused, not lost: do not spin
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
