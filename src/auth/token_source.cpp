#include "auth/token_source.hpp"

#include "net/url.hpp"

namespace zena::auth {

std::string_view bearer_credential(std::string_view header) {
    constexpr std::string_view k_scheme = "bearer ";
    if (header.size() <= k_scheme.size()) return {};
    for (std::size_t i = 0; i < k_scheme.size(); ++i) {
        const char c = header[i];
        const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (lower != k_scheme[i]) return {};
    }
    auto credential = header.substr(k_scheme.size());
    while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
    while (!credential.empty() && credential.back() == ' ') credential.remove_suffix(1);
    return credential;
}

namespace {

// Calls fn(item) for each item of a comma-separated header list, trimmed; stops when fn is true.
template <typename Fn>
bool any_item(std::string_view list, Fn fn) {
    for (;;) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (fn(item)) return true;
        if (comma == std::string_view::npos) return false;
        list.remove_prefix(comma + 1);
    }
}

}  // namespace

std::string find_token(std::string_view target, std::string_view authorization, std::string_view protocols) {
    if (const auto bearer = bearer_credential(authorization); !bearer.empty()) return std::string{bearer};
    std::string_view offered;
    any_item(protocols, [&](std::string_view item) {
        if (!item.starts_with(k_subprotocol_token_prefix) || item.size() == k_subprotocol_token_prefix.size()) {
            return false;
        }
        offered = item.substr(k_subprotocol_token_prefix.size());
        return true;
    });
    if (!offered.empty()) return std::string{offered};
    return net::query_param(target, "token").value_or(std::string{});
}

bool offers_subprotocol(std::string_view protocols, std::string_view name) {
    return any_item(protocols, [&](std::string_view item) { return item == name; });
}

}  // namespace zena::auth
