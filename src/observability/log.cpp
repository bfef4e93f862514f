#include "observability/log.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <utility>
#include <vector>

#include <spdlog/formatter.h>

namespace zena::observability {
namespace {

// Longest message whose logfmt tail is looked for; a longer one is written whole as "msg" (the
// split tries each word boundary, so its cost grows with the square of a pathological line).
constexpr std::size_t k_max_split_bytes = 16 * 1024;

// The length of the valid UTF-8 sequence at the start of `s`, or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0U) == 0x80U; };
    const unsigned char c = b(0);
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
        if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
        if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

// `text` as a JSON string literal; log text may hold bytes a client sent, so invalid UTF-8
// becomes U+FFFD rather than an invalid line.
void append_json_text(std::string& out, std::string_view text) {
    static constexpr char k_hex[] = "0123456789abcdef";
    out += '"';
    while (!text.empty()) {
        const auto c = static_cast<unsigned char>(text.front());
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out += k_hex[c >> 4U];
            out += k_hex[c & 0xFU];
        } else if (c >= 0x80) {
            const auto n = utf8_sequence(text);
            if (n == 0) {
                out += "\\ufffd";
                text.remove_prefix(1);
                continue;
            }
            out.append(text.substr(0, n));
            text.remove_prefix(n);
            continue;
        } else {
            out += static_cast<char>(c);
        }
        text.remove_prefix(1);
    }
    out += '"';
}

bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

using pairs = std::vector<std::pair<std::string, std::string>>;

// Reads `text` as nothing but logfmt pairs separated by spaces; false if any part is not one.
bool parse_pairs(std::string_view text, pairs& out) {
    out.clear();
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] == ' ') {
            ++i;
            continue;
        }
        const std::size_t key_start = i;
        while (i < text.size() && key_char(text[i])) ++i;
        if (i == key_start || i >= text.size() || text[i] != '=') return false;
        std::string key{text.substr(key_start, i - key_start)};
        ++i;  // '='
        std::string value;
        if (i < text.size() && text[i] == '"') {
            ++i;
            bool closed = false;
            while (i < text.size()) {
                const char c = text[i++];
                if (c == '"') {
                    closed = true;
                    break;
                }
                if (c == '\\' && i < text.size() && (text[i] == '"' || text[i] == '\\')) {
                    value += text[i++];
                } else {
                    value += c;
                }
            }
            if (!closed || (i < text.size() && text[i] != ' ')) return false;
        } else {
            const auto end = std::min(text.find(' ', i), text.size());
            value = text.substr(i, end - i);
            i = end;
        }
        out.emplace_back(std::move(key), std::move(value));
    }
    return !out.empty();
}

class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto now = msg.time;
        const auto seconds = std::chrono::system_clock::to_time_t(now);
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
        std::tm utc{};
        gmtime_r(&seconds, &utc);
        char time[32];
        const auto n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &utc);
        char stamp[40];
        const int len = std::snprintf(stamp, sizeof stamp, "%.*s.%03lldZ", static_cast<int>(n), time,
                                      static_cast<long long>(millis));
        const auto level = spdlog::level::to_string_view(msg.level);
        auto line = json_log_line(std::string_view(stamp, static_cast<std::size_t>(std::max(len, 0))),
                                  std::string_view(level.data(), level.size()),
                                  std::string_view(msg.payload.data(), msg.payload.size()));
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

}  // namespace

std::string json_log_line(std::string_view time, std::string_view level, std::string_view message) {
    std::string_view text = message;
    pairs fields;
    if (message.size() <= k_max_split_bytes) {
        for (std::size_t i = 0; i < message.size(); ++i) {
            if (i > 0 && message[i - 1] != ' ') continue;
            if (parse_pairs(message.substr(i), fields)) {
                text = message.substr(0, i);
                break;
            }
        }
        if (text.size() == message.size()) fields.clear();
    }
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    std::string out = "{\"time\":";
    append_json_text(out, time);
    out += ",\"level\":";
    append_json_text(out, level);
    out += ",\"msg\":";
    append_json_text(out, text);
    for (const auto& [key, value] : fields) {
        out += ',';
        // A pair named like one of the line's own fields keeps its value under "_<key>".
        append_json_text(out, key == "time" || key == "level" || key == "msg" ? "_" + key : key);
        out += ':';
        append_json_text(out, value);
    }
    out += '}';
    return out;
}

bool init_logging(std::string_view level, log_format format) {
    const auto parsed = spdlog::level::from_str(std::string{level});
    // from_str answers `off` for anything it does not know; only accept `off` when asked for.
    if (parsed == spdlog::level::off && level != "off") return false;
    spdlog::set_level(parsed);
    if (format == log_format::json) {
        spdlog::set_formatter(std::make_unique<json_formatter>());
    } else {
        spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    }
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
