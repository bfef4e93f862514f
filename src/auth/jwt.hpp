#pragma once
// JSON Web Tokens (RFC 7519) signed with HMAC (HS256/384/512, one pinned by configuration) or
// with a public key from a JWKS (RS256, ES256, EdDSA, pinned per key: auth/jwks.hpp). A token
// whose header names any other algorithm, `none` included, is refused before its signature is
// looked at; HMAC is only ever computed with the configured secret, never with a public key.
// The verifier is immutable after construction and safe to share between threads.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwks.hpp"

namespace zena::auth {

enum class jwt_algorithm : std::uint8_t { hs256, hs384, hs512 };

std::string_view to_string(jwt_algorithm alg);
std::optional<jwt_algorithm> parse_jwt_algorithm(std::string_view name);

struct jwt_settings {
    jwt_algorithm algorithm = jwt_algorithm::hs256;
    std::string secret;               // empty: HMAC tokens are refused
    std::chrono::seconds leeway{30};  // tolerated clock skew for exp and nbf
    std::string issuer;               // checked when not empty
    std::string audience;             // checked when not empty
    std::string user_claim = "sub";   // the claim that names the user
};

enum class jwt_error : std::uint8_t {
    none,
    missing,        // no token at all
    malformed,      // not three base64url parts of JSON, or too large
    bad_algorithm,  // header names an algorithm other than the pinned one
    bad_signature,  // signature does not match
    expired,        // exp is in the past (beyond leeway)
    not_yet_valid,  // nbf is in the future (beyond leeway)
    bad_issuer,     // iss differs from the configured issuer
    bad_audience,   // aud does not contain the configured audience
    missing_user,   // the user claim is absent, empty or not a string
    unknown_key,    // an asymmetric token whose kid names no key of the JWKS
    // Channel tokens only (jwt_verifier::verify_channel_token):
    wrong_user,      // the user claim names another user than the connection's
    wrong_channel,   // the `channel` claim is absent, not a string, or names another channel
    missing_expiry,  // no exp: a channel token must expire
};

// A short reason, safe to send to the client in the close frame (no token content).
std::string_view to_string(jwt_error error);

// Bounds of the `channels` claim: items beyond them are ignored, never an error (a token is
// still accepted; the grants it carries are only the ones kept).
inline constexpr std::size_t k_max_claim_channels = 256;       // items kept
inline constexpr std::size_t k_max_claim_channel_bytes = 255;  // longest item kept (a channel name's limit)

struct jwt_identity {
    std::string user_id;
    std::optional<std::int64_t> expires_at;  // exp, seconds since the epoch
    // The `channels` claim (grants, docs/channels.md), as written: the items that are strings of at
    // most k_max_claim_channel_bytes bytes, in order, the first k_max_claim_channels of them; other
    // items (numbers, objects, longer strings) are skipped. Empty when the claim is absent or not an
    // array. Not checked against the channel-name rule here: a grant is matched, not trusted.
    std::vector<std::string> channels;
};

struct jwt_result {
    jwt_error error = jwt_error::none;
    jwt_identity identity;
    explicit operator bool() const { return error == jwt_error::none; }
};

// Tokens longer than this are refused as malformed before any decoding.
inline constexpr std::size_t k_max_token_bytes = 8192;

class jwt_verifier {
public:
    using clock_fn = std::function<std::int64_t()>;  // seconds since the epoch

    // `keys`: the public keys for asymmetric tokens (null: those are refused); set_keys replaces them.
    explicit jwt_verifier(jwt_settings settings, clock_fn now = {}, std::shared_ptr<const key_set> keys = {});

    jwt_result verify(std::string_view token) const;

    // A channel token (docs/channels.md, grant 2): verified exactly as `verify` (keys, pinned
    // algorithm, leeway, exp, nbf, issuer, audience, user claim), and then its user claim must be
    // `user` (else wrong_user), its string claim `channel` must be `channel` (else wrong_channel;
    // an empty `channel` never matches) and it must have an exp (else missing_expiry).
    jwt_error verify_channel_token(std::string_view token, std::string_view user, std::string_view channel) const;

    const jwt_settings& settings() const { return settings_; }

    // Replaces the public keys (a JWKS refresh); tokens verified after it use the new set.
    // Safe while other threads verify.
    void set_keys(std::shared_ptr<const key_set> keys) const { keys_.store(std::move(keys)); }

private:
    struct channel_token_claims {
        std::string_view user;
        std::string_view channel;
    };
    // verify's one implementation; with `channel_token`, verify_channel_token's checks as well.
    jwt_result verify_token(std::string_view token, const channel_token_claims* channel_token) const;

    jwt_settings settings_;
    clock_fn now_;
    mutable std::atomic<std::shared_ptr<const key_set>> keys_;
};

// Extra claims for mint_jwt.
struct jwt_mint_options {
    std::vector<std::string> channels;  // the `channels` claim (an array), written when not empty
    std::string channel;                // the `channel` claim (a channel token), written when not empty
};

// Signs a token for `user_id` valid for `ttl` from now (dev tokens, tests, the `token` command),
// with the settings' algorithm, secret, user claim, issuer and audience, and `options`' claims.
std::string mint_jwt(const jwt_settings& settings, std::string_view user_id, std::chrono::seconds ttl,
                     std::int64_t now_seconds, const jwt_mint_options& options = {});

std::int64_t unix_now();
std::int64_t unix_now_ms();

}  // namespace zena::auth
