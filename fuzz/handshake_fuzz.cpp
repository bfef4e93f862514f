// libFuzzer: what a WebSocket handshake carries that the server reads itself, beside Beast's
// HTTP parser: the request target (path and its decoded segments, query, token parameter, the
// redacted form for logs), the Authorization and Sec-WebSocket-Protocol headers (the second
// part is also tried as a Sec-WebSocket-Key), and the Origin against an allowlist.
// The input is split at its first three newlines into target, authorization, protocols, origin.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/origin_policy.hpp"
#include "auth/token_source.hpp"
#include "net/handshake.hpp"
#include "util/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    std::string_view parts[4];
    for (int i = 0; i < 3; ++i) {
        const auto nl = rest.find('\n');
        parts[i] = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
    parts[3] = rest;
    const auto& [target, authorization, protocols, origin] = parts;

    (void)zena::util::target_path(target);
    const auto redacted = zena::util::redact_target(target);
    if (target.find('?') != std::string_view::npos && !redacted.ends_with("?<redacted>")) {
        __builtin_trap();  // a query, which may hold a token, must never reach a log line
    }
    // The API's user routes split the path before decoding: a decoded '/' never adds a segment.
    const auto path = zena::util::target_path(target);
    if (const auto segments = zena::util::path_segments(path)) {
        std::size_t slashes = 0;
        for (const char c : path) slashes += c == '/' ? 1 : 0;
        if (segments->size() != slashes + (path.starts_with('/') ? 0 : 1)) __builtin_trap();
    }
    (void)zena::util::query_param(target, "token");
    (void)zena::util::percent_decode(target, true);
    (void)zena::auth::find_token(target, authorization, protocols);
    (void)zena::auth::offers_subprotocol(protocols, zena::auth::k_subprotocol);
    if (zena::net::valid_websocket_key(authorization) && authorization.size() != 24) __builtin_trap();

    static const auto policy = [] {
        std::string error;
        return *zena::auth::origin_policy::parse("https://app.example.com, https://*.zena.dev, http://localhost:5173",
                                                 error);
    }();
    (void)policy.allows(origin);
    std::string error;
    (void)zena::auth::origin_policy::parse(origin, error);
    return 0;
}
