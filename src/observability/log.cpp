#include "observability/log.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace zena::observability {

bool init_logging(std::string_view level) {
    const auto parsed = spdlog::level::from_str(std::string{level});
    // from_str answers `off` for anything it does not know; only accept `off` when asked for.
    if (parsed == spdlog::level::off && level != "off") return false;
    spdlog::set_level(parsed);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    spdlog::flush_on(spdlog::level::info);
    return true;
}

bool log_limiter::allow(std::int64_t now_ms) {
    if (last_ms_ >= 0 && now_ms > last_ms_) {
        tokens_ = std::min(rate_, tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000.0);
    }
    last_ms_ = now_ms;
    if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return true;
    }
    ++suppressed_;
    return false;
}

std::uint64_t log_limiter::take_suppressed() { return std::exchange(suppressed_, 0); }

std::int64_t monotonic_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace zena::observability
