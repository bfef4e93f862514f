// libFuzzer: a client's WebSocket binary message on a msgpack connection, decoded to JSON
// (protocol/msgpack). Every byte string must yield JSON or an error, never a crash; what it
// yields must be valid JSON, and the JSON must encode and decode back to itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/json_reader.hpp"
#include "protocol/msgpack.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string json;
    if (zena::protocol::msgpack_to_json(bytes, json) != zena::protocol::msgpack_error::none) return 0;
    // Linear output: at most 6 bytes of JSON per byte in (a control character in a str).
    if (json.size() > 6 * size + 8) __builtin_trap();
    simdjson::dom::element root;
    if (zena::protocol::thread_json_parser().parse(json).get(root) != simdjson::SUCCESS) __builtin_trap();
    std::string again;
    if (!zena::protocol::json_to_msgpack(json, again)) __builtin_trap();
    std::string json_again;
    if (zena::protocol::msgpack_to_json(again, json_again) != zena::protocol::msgpack_error::none) __builtin_trap();
    if (json_again != json) __builtin_trap();
    return 0;
}
