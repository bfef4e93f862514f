#pragma once
// Splitting the small lists that settings and headers hold ("a, b, c"): one way, for the
// upstream routes, the origin allowlist and the Sec-WebSocket-Protocol header.

#include <string_view>

namespace zena::util {

// `s` without leading and trailing spaces and tabs.
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls fn(item) for each `separator`-separated item of `list`, trimmed, while fn returns true;
// returns false when fn stopped it.
template <typename Fn>
bool for_each_item(std::string_view list, char separator, Fn fn) {
    for (;;) {
        const auto end = list.find(separator);
        if (!fn(trim(list.substr(0, end)))) return false;
        if (end == std::string_view::npos) return true;
        list.remove_prefix(end + 1);
    }
}

}  // namespace zena::util
