// libFuzzer: a JSON Web Key Set (auth/jwks), as a deployment points auth.jwks_file at one. A set
// that loads must then verify (and refuse) without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/jwks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string error;
    const auto set = zena::auth::key_set::parse(text, error);
    if (!set) {
        if (error.empty()) __builtin_trap();  // a refusal always says why
        return 0;
    }
    for (const char* kid : {"", "a", "rsa-1"}) {
        if (const auto* k = set->find(kid)) {
            if (zena::auth::key_set::verify(*k, "e30.e30", std::string(64, 'x'))) __builtin_trap();
        }
    }
    return 0;
}
