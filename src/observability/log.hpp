#pragma once
// Logging: spdlog's default logger, lines in logfmt style (`msg key=value ...`), so they stay
// readable for people and parseable by log shippers. Secrets never go through here: request
// targets are redacted by the caller (util::redact_target) and tokens are never formatted.
//
// log.format = json writes the same lines as one JSON object each, for shippers that want
// structure: {"time":..., "level":..., "msg":..., <the line's key=value pairs>}.

#include <cstdint>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "util/token_bucket.hpp"

namespace zena::observability {

enum class log_format : std::uint8_t { text, json };

// Sets the level ("trace", "debug", "info", "warn", "error", "critical", "off") and the line
// format; false if the level is unknown.
bool init_logging(std::string_view level, log_format format = log_format::text);

// One log line as JSON: `message` is split into its text and the logfmt pairs that end it
// (`key=value` or `key="quoted \"value\""`), each pair a string field. A message whose tail is
// not wholly pairs is all text. Control characters and invalid UTF-8 are escaped or replaced,
// so every line is one valid JSON object. `time` is written as given. No trailing newline.
std::string json_log_line(std::string_view time, std::string_view level, std::string_view message);

// A token bucket (util/token_bucket.hpp) that keeps a flood (of bad client messages, say) from flooding the log: up to
// `per_second` lines a second, with a burst of the same size; what is held back is counted and
// reported by the next line that passes. One per thread; not thread-safe.
class log_limiter {
public:
    explicit log_limiter(double per_second) : rate_{per_second, per_second}, bucket_(rate_) {}

    // True when a line may be written now (`now_ms`: any monotonic clock in milliseconds).
    bool allow(std::int64_t now_ms);
    // Lines held back since the last allowed one; resets the count.
    std::uint64_t take_suppressed();

private:
    util::token_rate rate_;
    util::token_bucket bucket_;
    std::uint64_t suppressed_ = 0;
};

std::int64_t monotonic_ms();

}  // namespace zena::observability
