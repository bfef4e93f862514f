#pragma once
// A token bucket: up to `per_second` events a second on average, with bursts of up to `burst`.
// The one rate limiter of the project (log lines, client messages, handshakes per address).
// Not thread-safe: each bucket belongs to one thread, or to one stripe under its lock.

#include <algorithm>
#include <cstdint>

namespace zena::util {

class token_bucket {
public:
    token_bucket(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}

    // Takes one token if there is one (`now_ms`: any monotonic clock in milliseconds).
    bool take(std::int64_t now_ms) {
        refill(now_ms);
        if (tokens_ < 1.0) return false;
        tokens_ -= 1.0;
        return true;
    }

    // True when the bucket has refilled completely: it remembers nothing worth keeping.
    bool full(std::int64_t now_ms) {
        refill(now_ms);
        return tokens_ >= burst_;
    }

private:
    void refill(std::int64_t now_ms) {
        if (last_ms_ >= 0 && now_ms > last_ms_) {
            tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000.0);
        }
        if (now_ms > last_ms_) last_ms_ = now_ms;
    }

    double rate_;
    double burst_;
    double tokens_;
    std::int64_t last_ms_ = -1;
};

}  // namespace zena::util
