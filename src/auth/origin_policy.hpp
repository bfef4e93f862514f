#pragma once
// Which browser origins may open a WebSocket (websocket.allowed_origins), against Cross-Site
// WebSocket Hijacking: a page on another site could otherwise open a socket with the user's
// cookies or stored token. Browsers always send Origin on a WebSocket handshake; a request
// without one does not come from a browser page and is allowed (servers, CLIs).
//
//   "https://app.example.com, https://*.example.com, http://localhost:5173"
//
// Each entry is scheme://host[:port], compared without regard to case; `*.` before a host
// matches any subdomain (not the bare domain). Empty or `*`: any origin. Immutable after
// parse; safe to share between threads.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zena::auth {

class origin_policy {
public:
    // nullopt, with `error` set, when an entry is not an origin.
    static std::optional<origin_policy> parse(std::string_view allowed, std::string& error);

    // `origin`: the request's Origin header; empty when it had none.
    bool allows(std::string_view origin) const;
    bool allows_any() const { return any_; }

private:
    struct entry {
        std::string scheme;  // lowercase
        std::string host;    // lowercase; without the "*." of a wildcard
        std::string port;    // empty: none given
        bool wildcard = false;
    };
    static std::optional<entry> parse_origin(std::string_view text);

    std::vector<entry> entries_;
    bool any_ = true;
};

}  // namespace zena::auth
