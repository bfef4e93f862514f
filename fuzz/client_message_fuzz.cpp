// libFuzzer: a client's WebSocket text message, parsed and checked against the shipped catalog
// (protocol/client_message). Every byte string must yield a message or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/catalog.hpp"
#include "protocol/client_message.hpp"

namespace {

const zena::protocol::catalog& shipped() {
    static const auto c = [] {
        std::string error;
        return *zena::protocol::catalog::parse(zena::protocol::builtin_catalog_json(), error);
    }();
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto message = zena::protocol::parse_client_message(text, shipped());
    if (message.error == zena::protocol::client_error::none && message.spec == nullptr) __builtin_trap();
    return 0;
}
