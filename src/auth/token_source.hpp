#pragma once
// Where a connection's token comes from: the `token` query parameter (the seed's way, for
// browsers, which cannot set headers on a WebSocket) or `Authorization: Bearer <token>` (servers
// and CLIs). The header wins when both are present.

#include <string>
#include <string_view>

namespace zena::auth {

// The token, or an empty string when there is none.
std::string find_token(std::string_view request_target, std::string_view authorization_header);

// The credential of an `Authorization: Bearer <x>` header, or empty.
std::string_view bearer_credential(std::string_view authorization_header);

}  // namespace zena::auth
