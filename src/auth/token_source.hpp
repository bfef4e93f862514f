#pragma once
// Where a connection's token comes from, in this order:
//   1. `Authorization: Bearer <token>` (servers and CLIs);
//   2. `Sec-WebSocket-Protocol: zena-realtime, bearer.<token>` (browsers, which cannot set other
//      headers on a WebSocket; the server answers with `zena-realtime` only, never the token);
//   3. the `token` query parameter (the seed's way; it ends up in access logs, see docs/security.md).
// With none of them, the client may send the token in-band, as its first message.

#include <string>
#include <string_view>

namespace zena::auth {

// The subprotocol a client names to speak this protocol, and the prefix of a token offered as one.
inline constexpr std::string_view k_subprotocol = "zena-realtime";
inline constexpr std::string_view k_subprotocol_token_prefix = "bearer.";

// The token, or an empty string when there is none.
std::string find_token(std::string_view request_target, std::string_view authorization_header,
                       std::string_view websocket_protocols = {});

// Whether the Sec-WebSocket-Protocol list offers `name`.
bool offers_subprotocol(std::string_view websocket_protocols, std::string_view name);

// The credential of an `Authorization: Bearer <x>` header, or empty.
std::string_view bearer_credential(std::string_view authorization_header);

}  // namespace zena::auth
