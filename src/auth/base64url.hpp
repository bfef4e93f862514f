#pragma once
// Base64url without padding (RFC 4648 section 5), as JWT uses it (RFC 7515 section 2).

#include <optional>
#include <string>
#include <string_view>

namespace zena::auth {

std::string base64url_encode(std::string_view bytes);

// Strict: rejects padding, characters outside the alphabet, a length of 1 mod 4, and non-zero
// trailing bits (so each encoded text decodes from exactly one string).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace zena::auth
