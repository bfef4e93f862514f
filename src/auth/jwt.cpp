#include "auth/jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cmath>

#include "auth/base64url.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"

namespace zena::auth {
namespace {

const EVP_MD* digest_of(jwt_algorithm alg) {
    switch (alg) {
        case jwt_algorithm::hs256: return EVP_sha256();
        case jwt_algorithm::hs384: return EVP_sha384();
        case jwt_algorithm::hs512: return EVP_sha512();
    }
    return EVP_sha256();
}

std::string hmac(jwt_algorithm alg, std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int len = 0;
    HMAC(digest_of(alg), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out.data(), &len);
    return std::string(reinterpret_cast<const char*>(out.data()), len);
}

jwt_result fail(jwt_error e) { return jwt_result{e, {}}; }

// A NumericDate claim: absent is fine, present must be a number.
enum class date_claim { absent, ok, bad };
date_claim read_date(simdjson::dom::object claims, std::string_view name, std::int64_t& out) {
    simdjson::dom::element value;
    if (claims[name].get(value) != simdjson::SUCCESS) return date_claim::absent;
    double number = 0;
    if (value.get_double().get(number) != simdjson::SUCCESS || !std::isfinite(number) || number < 0 || number > 1e15) {
        return date_claim::bad;
    }
    out = static_cast<std::int64_t>(number);
    return date_claim::ok;
}

bool audience_matches(simdjson::dom::element aud, std::string_view expected) {
    std::string_view single;
    if (aud.get_string().get(single) == simdjson::SUCCESS) return single == expected;
    simdjson::dom::array list;
    if (aud.get_array().get(list) != simdjson::SUCCESS) return false;
    for (simdjson::dom::element item : list) {
        std::string_view s;
        if (item.get_string().get(s) == simdjson::SUCCESS && s == expected) return true;
    }
    return false;
}

}  // namespace

std::string_view to_string(jwt_algorithm alg) {
    switch (alg) {
        case jwt_algorithm::hs256: return "HS256";
        case jwt_algorithm::hs384: return "HS384";
        case jwt_algorithm::hs512: return "HS512";
    }
    return "HS256";
}

std::optional<jwt_algorithm> parse_jwt_algorithm(std::string_view name) {
    for (auto alg : {jwt_algorithm::hs256, jwt_algorithm::hs384, jwt_algorithm::hs512}) {
        if (to_string(alg) == name) return alg;
    }
    return std::nullopt;
}

std::string_view to_string(jwt_error error) {
    switch (error) {
        case jwt_error::none: return "ok";
        case jwt_error::missing: return "token missing";
        case jwt_error::malformed: return "token malformed";
        case jwt_error::bad_algorithm: return "token algorithm not allowed";
        case jwt_error::bad_signature: return "token signature invalid";
        case jwt_error::expired: return "token expired";
        case jwt_error::not_yet_valid: return "token not yet valid";
        case jwt_error::bad_issuer: return "token issuer not accepted";
        case jwt_error::bad_audience: return "token audience not accepted";
        case jwt_error::missing_user: return "token has no user";
        case jwt_error::unknown_key: return "token key unknown";
        case jwt_error::wrong_user: return "token names another user";
        case jwt_error::wrong_channel: return "token names another channel";
        case jwt_error::missing_expiry: return "channel token has no exp";
    }
    return "token invalid";
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

jwt_verifier::jwt_verifier(jwt_settings settings, clock_fn now, std::shared_ptr<const key_set> keys)
    : settings_(std::move(settings)), now_(now ? std::move(now) : clock_fn{unix_now}), keys_(std::move(keys)) {}

jwt_result jwt_verifier::verify(std::string_view token) const { return verify_token(token, nullptr); }

jwt_error jwt_verifier::verify_channel_token(std::string_view token, std::string_view user,
                                             std::string_view channel) const {
    const channel_token_claims expected{.user = user, .channel = channel};
    return verify_token(token, &expected).error;
}

jwt_result jwt_verifier::verify_token(std::string_view token, const channel_token_claims* channel_token) const {
    if (token.empty()) return fail(jwt_error::missing);
    if (token.size() > k_max_token_bytes) return fail(jwt_error::malformed);

    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        return fail(jwt_error::malformed);
    }
    const auto header_b64 = token.substr(0, dot1);
    const auto claims_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const auto signature_b64 = token.substr(dot2 + 1);

    const auto header = base64url_decode(header_b64);
    const auto claims_text = base64url_decode(claims_b64);
    const auto signature = base64url_decode(signature_b64);
    if (!header || !claims_text || !signature) return fail(jwt_error::malformed);

    auto& parser = protocol::thread_json_parser();
    {
        simdjson::dom::object h;
        if (parser.parse(header->data(), header->size()).get_object().get(h) != simdjson::SUCCESS) {
            return fail(jwt_error::malformed);
        }
        std::string_view alg;
        if (h["alg"].get_string().get(alg) != simdjson::SUCCESS) return fail(jwt_error::malformed);
        // RFC 7515 4.1.11: extensions we do not understand must not be ignored.
        if (h["crit"].error() != simdjson::NO_SUCH_FIELD) return fail(jwt_error::malformed);
        std::string_view kid;
        if (h["kid"].error() != simdjson::NO_SUCH_FIELD && h["kid"].get_string().get(kid) != simdjson::SUCCESS) {
            return fail(jwt_error::malformed);
        }
        // The signature is checked before the claims are trusted for anything, with the one
        // algorithm the configuration (HMAC) or the named key (JWKS) pins.
        const auto signing_input = token.substr(0, dot2);
        if (!settings_.secret.empty() && alg == to_string(settings_.algorithm)) {
            const auto expected = hmac(settings_.algorithm, settings_.secret, signing_input);
            if (signature->size() != expected.size() ||
                CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
                return fail(jwt_error::bad_signature);
            }
        } else if (const auto keys = keys_.load(); keys && !alg.starts_with("HS") && alg != "none") {
            const auto* key = keys->find(kid);
            if (!key) return fail(jwt_error::unknown_key);
            if (alg != to_string(key->alg)) return fail(jwt_error::bad_algorithm);
            if (!key_set::verify(*key, signing_input, *signature)) return fail(jwt_error::bad_signature);
        } else {
            return fail(jwt_error::bad_algorithm);
        }
    }

    simdjson::dom::object claims;
    if (parser.parse(claims_text->data(), claims_text->size()).get_object().get(claims) != simdjson::SUCCESS) {
        return fail(jwt_error::malformed);
    }
    const std::int64_t now = now_();
    const std::int64_t leeway = settings_.leeway.count();
    jwt_result result;
    std::int64_t exp = 0;
    switch (read_date(claims, "exp", exp)) {
        case date_claim::bad: return fail(jwt_error::malformed);
        case date_claim::ok:
            if (now >= exp + leeway) return fail(jwt_error::expired);
            result.identity.expires_at = exp;
            break;
        case date_claim::absent: break;
    }
    std::int64_t nbf = 0;
    switch (read_date(claims, "nbf", nbf)) {
        case date_claim::bad: return fail(jwt_error::malformed);
        case date_claim::ok:
            if (now + leeway < nbf) return fail(jwt_error::not_yet_valid);
            break;
        case date_claim::absent: break;
    }
    if (!settings_.issuer.empty()) {
        std::string_view iss;
        if (claims["iss"].get_string().get(iss) != simdjson::SUCCESS || iss != settings_.issuer) {
            return fail(jwt_error::bad_issuer);
        }
    }
    if (!settings_.audience.empty()) {
        simdjson::dom::element aud;
        if (claims["aud"].get(aud) != simdjson::SUCCESS || !audience_matches(aud, settings_.audience)) {
            return fail(jwt_error::bad_audience);
        }
    }
    std::string_view user;
    if (claims[settings_.user_claim].get_string().get(user) != simdjson::SUCCESS || user.empty() || user.size() > 256) {
        return fail(jwt_error::missing_user);
    }
    if (channel_token) {
        if (user != channel_token->user) return fail(jwt_error::wrong_user);
        std::string_view channel;
        if (channel_token->channel.empty() || claims["channel"].get_string().get(channel) != simdjson::SUCCESS ||
            channel != channel_token->channel) {
            return fail(jwt_error::wrong_channel);
        }
        if (!result.identity.expires_at) return fail(jwt_error::missing_expiry);
    }
    result.identity.user_id = std::string{user};
    simdjson::dom::array channels;
    if (claims["channels"].get_array().get(channels) == simdjson::SUCCESS) {
        for (simdjson::dom::element item : channels) {
            std::string_view name;
            if (item.get_string().get(name) != simdjson::SUCCESS || name.size() > k_max_claim_channel_bytes) continue;
            result.identity.channels.emplace_back(name);
            if (result.identity.channels.size() == k_max_claim_channels) break;
        }
    }
    return result;
}

std::string mint_jwt(const jwt_settings& settings, std::string_view user_id, std::chrono::seconds ttl,
                     std::int64_t now_seconds, const jwt_mint_options& options) {
    const auto header = protocol::json_object().add("alg", to_string(settings.algorithm)).add("typ", "JWT").str();
    protocol::json_object claims;
    claims.add(settings.user_claim, user_id)
        .add("iat", static_cast<std::int64_t>(now_seconds))
        .add("exp", static_cast<std::int64_t>(now_seconds + ttl.count()));
    if (!settings.issuer.empty()) claims.add("iss", settings.issuer);
    if (!settings.audience.empty()) claims.add("aud", settings.audience);
    if (!options.channels.empty()) {
        std::string list = "[";
        for (const auto& name : options.channels) {
            if (list.size() > 1) list += ',';
            protocol::append_json_string(list, name);
        }
        claims.add_raw("channels", list + ']');
    }
    if (!options.channel.empty()) claims.add("channel", options.channel);
    std::string signing_input = base64url_encode(header) + '.' + base64url_encode(claims.str());
    const auto signature = hmac(settings.algorithm, settings.secret, signing_input);
    return signing_input + '.' + base64url_encode(signature);
}

}  // namespace zena::auth
