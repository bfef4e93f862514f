#pragma once
// A token bucket: up to `per_second` events a second on average, with bursts of up to `burst`.
// The one rate limiter of the project (log lines, client messages, handshakes per address).
// The limits (token_rate) are kept apart from the state, and passed to each call: a server
// holds one bucket per connection or per address, all with the same limits, so each bucket is
// just its state (16 bytes).
// Not thread-safe: each bucket belongs to one thread, or to one stripe under its lock.

#include <algorithm>
#include <cstdint>

namespace zena::util {

struct token_rate {
    double per_second;
    double burst;
};

class token_bucket {
public:
    explicit token_bucket(const token_rate& rate) : tokens_(rate.burst) {}

    // Takes one token if there is one (`now_ms`: any monotonic clock in milliseconds).
    bool take(const token_rate& rate, std::int64_t now_ms) {
        refill(rate, now_ms);
        if (tokens_ < 1.0) return false;
        tokens_ -= 1.0;
        return true;
    }

    // True when the bucket has refilled completely: it remembers nothing worth keeping.
    bool full(const token_rate& rate, std::int64_t now_ms) {
        refill(rate, now_ms);
        return tokens_ >= rate.burst;
    }

private:
    void refill(const token_rate& rate, std::int64_t now_ms) {
        if (last_ms_ >= 0 && now_ms > last_ms_) {
            tokens_ = std::min(rate.burst, tokens_ + rate.per_second * static_cast<double>(now_ms - last_ms_) / 1000.0);
        }
        if (now_ms > last_ms_) last_ms_ = now_ms;
    }

    double tokens_;
    std::int64_t last_ms_ = -1;
};

}  // namespace zena::util
