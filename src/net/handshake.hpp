#pragma once
// The WebSocket opening handshake (RFC 6455 §4.2) past what Beast's HTTP parser checks: the form
// of Sec-WebSocket-Key, the version, and the 101 response. Asio-free so they are unit-tested
// and fuzzed.

#include <string>
#include <string_view>

namespace zena::net {

// Sec-WebSocket-Key must be the base64 of 16 bytes: 22 characters of the base64 alphabet, the
// last carrying no stray bits, then "==".
bool valid_websocket_key(std::string_view key);

// The one version this server speaks; a request without it, or with another, gets 426 naming it.
inline constexpr std::string_view k_websocket_version = "13";

// The whole head of the 101 response to a valid key; `subprotocol` and `extensions`, when not
// empty, are the Sec-WebSocket-Protocol and Sec-WebSocket-Extensions values to answer with.
std::string upgrade_response(std::string_view key, std::string_view subprotocol, std::string_view extensions);

// The subprotocol to answer a Sec-WebSocket-Protocol offer with: `zena-realtime.msgpack` when
// offered (the client then speaks MessagePack, protocol/msgpack), else `zena-realtime`, else none
// (JSON). A `bearer.<jwt>` item is a token, never chosen.
std::string_view choose_subprotocol(std::string_view offered);

}  // namespace zena::net
