// libFuzzer: an event catalog file (protocol/catalog), as a deployment may point ZENA_CATALOG at
// its own. A catalog that parses must then validate payloads without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/catalog.hpp"
#include "protocol/client_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string error;
    const auto parsed = zena::protocol::catalog::parse(text, error);
    if (!parsed) {
        if (error.empty()) __builtin_trap();  // a refusal always says why
        return 0;
    }
    (void)zena::protocol::parse_client_message(R"({"type":"thread.view","payload":{"threadId":"t"}})", *parsed);
    (void)zena::protocol::parse_client_message(R"({"type":"x","payload":{"a":[1,{"b":null}]}})", *parsed);
    return 0;
}
