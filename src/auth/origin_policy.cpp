#include "auth/origin_policy.hpp"

#include <algorithm>
#include <cctype>

#include "util/text.hpp"

namespace zena::auth {
namespace {

std::string lower(std::string_view s) {
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool valid_host_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '[' || c == ']' ||
           c == ':' || c == '_';
}

}  // namespace

std::optional<origin_policy::entry> origin_policy::parse_origin(std::string_view text) {
    const auto sep = text.find("://");
    if (sep == std::string_view::npos || sep == 0) return std::nullopt;
    entry e;
    e.scheme = lower(text.substr(0, sep));
    auto authority = text.substr(sep + 3);
    if (authority.empty() || authority.find('/') != std::string_view::npos) return std::nullopt;
    if (authority.starts_with("*.")) {
        e.wildcard = true;
        authority.remove_prefix(2);
    }
    // The port follows the last ':' outside an IPv6 literal.
    const auto bracket = authority.rfind(']');
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        e.port = std::string{authority.substr(colon + 1)};
        authority = authority.substr(0, colon);
        if (e.port.empty() || !std::all_of(e.port.begin(), e.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return std::nullopt;
        }
    }
    if (authority.empty() || !std::all_of(authority.begin(), authority.end(), valid_host_char)) return std::nullopt;
    e.host = lower(authority);
    return e;
}

std::optional<origin_policy> origin_policy::parse(std::string_view allowed, std::string& error) {
    origin_policy out;
    allowed = util::trim(allowed);
    if (allowed.empty() || allowed == "*") return out;
    out.any_ = false;
    const bool ok = util::for_each_item(allowed, ',', [&](std::string_view item) {
        auto e = parse_origin(item);
        if (!e) {
            error = "'" + std::string{item} + "' is not an origin (scheme://host[:port], e.g. https://app.example.com)";
            return false;
        }
        out.entries_.push_back(std::move(*e));
        return true;
    });
    if (!ok) return std::nullopt;
    return out;
}

bool origin_policy::allows(std::string_view origin) const {
    if (any_ || origin.empty()) return true;
    const auto given = parse_origin(origin);
    if (!given || given->wildcard) return false;  // "null", garbage, or a "*." that is not a host
    return std::any_of(entries_.begin(), entries_.end(), [&](const entry& e) {
        if (e.scheme != given->scheme || e.port != given->port) return false;
        if (!e.wildcard) return e.host == given->host;
        const auto& h = given->host;
        return h.size() > e.host.size() + 1 && h.ends_with(e.host) && h[h.size() - e.host.size() - 1] == '.';
    });
}

}  // namespace zena::auth
