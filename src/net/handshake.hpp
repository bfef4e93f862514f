#pragma once
// Checks of a WebSocket opening handshake (RFC 6455 §4.2.1) that Beast leaves to the server:
// the form of Sec-WebSocket-Key and the version. Asio-free so they are unit-tested and fuzzed.

#include <string_view>

namespace zena::net {

// Sec-WebSocket-Key must be the base64 of 16 bytes: 22 characters of the base64 alphabet, the
// last carrying no stray bits, then "==".
bool valid_websocket_key(std::string_view key);

// The one version this server speaks; a request without it, or with another, gets 426 naming it.
inline constexpr std::string_view k_websocket_version = "13";

}  // namespace zena::net
