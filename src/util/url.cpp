#include "util/url.hpp"

namespace zena::util {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string_view target_path(std::string_view target) { return target.substr(0, target.find('?')); }

std::string redact_target(std::string_view target) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::string{target};
    return std::string{target.substr(0, q)} + "?<redacted>";
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::vector<std::string>> path_segments(std::string_view path) {
    if (path.starts_with('/')) path.remove_prefix(1);
    std::vector<std::string> out;
    for (;;) {
        const auto slash = path.find('/');
        auto segment = percent_decode(path.substr(0, slash), false);
        if (!segment) return std::nullopt;
        out.push_back(std::move(*segment));
        if (slash == std::string_view::npos) return out;
        path.remove_prefix(slash + 1);
    }
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    auto query = target.substr(q + 1);
    if (const auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const auto key = pair.substr(0, eq);
        if (key != name) continue;
        if (eq == std::string_view::npos) return std::string{};
        return percent_decode(pair.substr(eq + 1), true);
    }
    return std::nullopt;
}

http_url parse_http_url(std::string_view url) {
    constexpr std::string_view k_http = "http://";
    constexpr std::string_view k_https = "https://";
    const bool tls = url.starts_with(k_https);
    if (!tls && !url.starts_with(k_http)) return {};
    url.remove_prefix(tls ? k_https.size() : k_http.size());
    const auto slash = url.find('/');
    const auto authority = url.substr(0, slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return {};
    http_url out;
    out.tls = tls;
    out.target = slash == std::string_view::npos ? "/" : std::string{url.substr(slash)};
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
        out.host = std::string{authority.substr(0, colon)};
        out.port = std::string{authority.substr(colon + 1)};
    } else {
        out.host = std::string{authority};
        out.port = tls ? "443" : "80";
    }
    if (out.host.empty() || out.port.empty() || out.port.size() > 5 ||
        out.port.find_first_not_of("0123456789") != std::string::npos) {
        return {};
    }
    return out;
}

std::string to_string(const http_url& url) {
    return (url.tls ? "https://" : "http://") + url.host + ":" + url.port + url.target;
}

}  // namespace zena::util
