#pragma once
// Public keys for asymmetric JWTs, from a JSON Web Key Set (RFC 7517): RSA (RS256, at least
// 2048 bits), EC P-256 (ES256) and Ed25519 (EdDSA). Each key's algorithm is pinned by the key
// itself: its kty/crv fix it, and an `alg` member must agree. A token names its key with `kid`
// and must name that key's algorithm, so the classic confusions (an RSA public key used as an
// HMAC secret, `none`, ES256 against an RSA key) cannot verify.
//
// Threading: a key_set is immutable once parsed and may be shared between threads.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;

namespace zena::auth {

enum class jwk_algorithm : std::uint8_t { rs256, es256, eddsa };

std::string_view to_string(jwk_algorithm alg);

class key_set {
public:
    // nullopt, with `error` naming the key and the problem, when the set or a key is not usable.
    static std::optional<key_set> parse(std::string_view json, std::string& error);
    static std::optional<key_set> load_file(const std::string& path, std::string& error);

    struct key {
        std::string kid;
        jwk_algorithm alg;
        std::shared_ptr<evp_pkey_st> pkey;
    };

    // The key `kid` names; with an empty kid, the only key when there is exactly one.
    const key* find(std::string_view kid) const;
    std::size_t size() const { return keys_.size(); }

    // Whether `signature` over `signing_input` verifies with `k` (JWS encoding: ES256 is r||s).
    static bool verify(const key& k, std::string_view signing_input, std::string_view signature);

private:
    std::vector<key> keys_;
};

}  // namespace zena::auth
