#include "auth/token_source.hpp"

#include "util/text.hpp"
#include "util/url.hpp"

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

std::string find_token(std::string_view target, std::string_view authorization, std::string_view protocols) {
    if (const auto bearer = bearer_credential(authorization); !bearer.empty()) return std::string{bearer};
    std::string_view offered;
    util::for_each_item(protocols, ',', [&](std::string_view item) {
        if (!item.starts_with(k_subprotocol_token_prefix) || item.size() == k_subprotocol_token_prefix.size()) {
            return true;  // not a token: look on
        }
        offered = item.substr(k_subprotocol_token_prefix.size());
        return false;
    });
    if (!offered.empty()) return std::string{offered};
    return util::query_param(target, "token").value_or(std::string{});
}

bool offers_subprotocol(std::string_view protocols, std::string_view name) {
    return !util::for_each_item(protocols, ',', [&](std::string_view item) { return item != name; });
}

}  // namespace zena::auth
