// libFuzzer: a token as a client presents it (auth/jwt), for each pinned algorithm. The verifier
// must refuse or accept without crashing; a forged token must never verify.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zena::auth;
    static const jwt_verifier verifiers[] = {
        jwt_verifier{jwt_settings{jwt_algorithm::hs256, std::string(32, 'k'), std::chrono::seconds(30), "", "", "sub"},
                     [] { return std::int64_t{1800000000}; }},
        jwt_verifier{
            jwt_settings{jwt_algorithm::hs512, std::string(64, 'k'), std::chrono::seconds(0), "iss", "aud", "uid"},
            [] { return std::int64_t{1800000000}; }},
    };
    const std::string_view token(reinterpret_cast<const char*>(data), size);
    for (const auto& v : verifiers) {
        const auto result = v.verify(token);
        if (result && result.identity.user_id.empty()) __builtin_trap();
    }
    return 0;
}
