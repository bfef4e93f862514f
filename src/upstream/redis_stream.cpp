#include "upstream/redis_stream.hpp"

#include <algorithm>
#include <array>

#include "observability/log.hpp"

namespace zena::upstream {
namespace {

constexpr std::size_t k_batch = 256;  // XADDs per pipelined round trip
constexpr std::chrono::milliseconds k_min_backoff{100};
constexpr std::chrono::milliseconds k_max_backoff{5000};

}  // namespace

redis_stream::redis_stream(redis_stream_settings settings, observability::metrics& metrics)
    : settings_(std::move(settings)), metrics_(metrics), thread_([this] { run(); }) {}

redis_stream::~redis_stream() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    if (!queue_.empty()) observability::metrics::add(metrics_.redis_stream.dropped, queue_.size());
}

void redis_stream::submit(std::string_view type, std::string_view user_id, std::string body) {
    {
        const std::lock_guard lock(mutex_);
        if (queue_.size() >= settings_.max_queue) {
            // The oldest waiting entry goes (never one being appended): newer ones matter more.
            observability::metrics::add(metrics_.redis_stream.dropped);
            if (in_flight_ >= queue_.size()) return;
            queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_));
        }
        queue_.push_back(entry{std::string{type}, std::string{user_id}, std::move(body)});
    }
    wake_.notify_one();
}

bool redis_stream::append_batch(redis::connection& c, std::size_t n) {
    // The lock is held while the commands are copied out: a drop in submit() erases from the
    // middle of the deque, which moves the entries.
    const auto max_len = std::to_string(settings_.max_len);
    {
        const std::lock_guard lock(mutex_);
        for (std::size_t i = 0; i < n; ++i) {
            const auto& e = queue_[i];
            const std::array<std::string_view, 12> args{"XADD", settings_.stream, "MAXLEN", "~",       max_len, "*",
                                                        "type", e.type,           "userId", e.user_id, "event", e.body};
            c.append(args);
        }
    }
    std::size_t refused = 0;
    for (std::size_t i = 0; i < n; ++i) {
        auto r = c.next_reply();
        if (r.empty()) return false;  // the line broke: the batch is sent again (at least once)
        if (!r.ok()) {
            // Redis refused (wrong key type, out of memory): retrying would not help.
            ++refused;
            spdlog::warn("redis stream XADD refused stream={} error=\"{}\"", settings_.stream, r.error_text());
        }
    }
    observability::metrics::add(metrics_.redis_stream.delivered, n - refused);
    observability::metrics::add(metrics_.redis_stream.failed, refused);
    return true;
}

void redis_stream::run() {
    std::unique_ptr<redis::connection> c;
    auto backoff = k_min_backoff;
    const auto timeout = settings_.timeout;
    for (;;) {
        std::size_t n = 0;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            n = std::min(queue_.size(), k_batch);
            in_flight_ = n;
        }
        if (!c) {
            std::string error;
            c = redis::connection::open(settings_.endpoint, timeout, error);
            if (!c) {
                spdlog::warn("redis stream cannot connect host={} port={} error=\"{}\" retry_ms={}",
                             settings_.endpoint.host, settings_.endpoint.port, error, backoff.count());
                std::unique_lock lock(mutex_);
                in_flight_ = 0;
                wake_.wait_for(lock, backoff, [&] { return stopping_; });
                backoff = std::min(backoff * 2, k_max_backoff);
                continue;
            }
            spdlog::info("redis stream connected host={} port={} stream={}", settings_.endpoint.host,
                         settings_.endpoint.port, settings_.stream);
            backoff = k_min_backoff;
        }
        const bool sent = append_batch(*c, n);
        const std::lock_guard lock(mutex_);
        if (sent) {
            queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        } else {
            spdlog::warn("redis stream connection lost error=\"{}\"", c->error());
            c.reset();
        }
        in_flight_ = 0;
    }
}

}  // namespace zena::upstream
