// The Redis engine's messages between nodes (engine/redis/wire): whatever Redis hands a node is
// decoded without reading past it, and what decodes encodes back to the same body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/redis/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input{reinterpret_cast<const char*>(data), size};
    if (auto m = zena::engine::wire::decode_message(input)) {
        const auto again = zena::engine::wire::decode_body(zena::engine::wire::encode(m->body));
        if (!again || again->type != m->body.type || again->payload != m->body.payload ||
            again->origin != m->body.origin || again->token != m->body.token ||
            again->except_user != m->body.except_user || again->latest_key != m->body.latest_key) {
            std::abort();
        }
    }
    (void)zena::engine::wire::decode_body(input);
    return 0;
}
