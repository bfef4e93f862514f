// libFuzzer: a token as a client presents it (auth/jwt), for two HMAC configurations and one
// with a JWKS (key selection by kid, algorithm pinned per key). The verifier must refuse or
// accept without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zena::auth;
    static const auto keys = [] {
        std::string error;
        return std::make_shared<const key_set>(*key_set::parse(
            R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})",
            error));
    }();
    const auto settings = [](jwt_algorithm alg, std::string secret, int leeway, std::string iss, std::string aud,
                             std::string claim) {
        jwt_settings out;
        out.algorithm = alg;
        out.secret = std::move(secret);
        out.leeway = std::chrono::seconds(leeway);
        out.issuer = std::move(iss);
        out.audience = std::move(aud);
        out.user_claim = std::move(claim);
        return out;
    };
    const auto clock = [] { return std::int64_t{1800000000}; };
    static const jwt_verifier verifiers[] = {
        jwt_verifier{settings(jwt_algorithm::hs256, std::string(32, 'k'), 30, "", "", "sub"), clock},
        jwt_verifier{settings(jwt_algorithm::hs512, std::string(64, 'k'), 0, "iss", "aud", "uid"), clock},
        jwt_verifier{settings(jwt_algorithm::hs256, "", 30, "", "", "sub"), clock, keys},
    };
    const std::string_view token(reinterpret_cast<const char*>(data), size);
    for (const auto& v : verifiers) {
        const auto result = v.verify(token);
        if (result && result.identity.user_id.empty()) __builtin_trap();
    }
    return 0;
}
