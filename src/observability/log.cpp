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
    if (bucket_.take(rate_, now_ms)) return true;
    ++suppressed_;
    return false;
}

std::uint64_t log_limiter::take_suppressed() { return std::exchange(suppressed_, 0); }

std::int64_t monotonic_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace zena::observability
