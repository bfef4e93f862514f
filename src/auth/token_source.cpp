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

std::string find_token(std::string_view target, std::string_view authorization) {
    if (const auto bearer = bearer_credential(authorization); !bearer.empty()) return std::string{bearer};
    return net::query_param(target, "token").value_or(std::string{});
}

}  // namespace zena::auth
