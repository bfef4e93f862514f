#pragma once
// MessagePack, the `zena-realtime.msgpack` subprotocol (docs/protocol.md): the same envelope as
// the JSON text frames, as binary frames. Both directions go through JSON text, on purpose:
//
// - out: an event's JSON frame is built once per publish, as for every connection; a connection
//   that speaks MessagePack gets its binary twin, transcoded from that JSON once per frame by the
//   first thread that asks (ws::frame::twin), so JSON-only deployments never pay for it;
// - in: a client's MessagePack message is decoded, bounded, into JSON text, and from there takes
//   the one path every client message takes (parse_client_message: catalog, limits, upstream).
//
// Threading: free functions; each thread has its own parser.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ws/frame.hpp"
#include "ws/outbound.hpp"

namespace zena::protocol {

// The subprotocol a client names to get MessagePack (beside `bearer.<jwt>` when its token
// travels there).
inline constexpr std::string_view k_msgpack_subprotocol = "zena-realtime.msgpack";

// The MessagePack of the JSON text `json` (valid JSON, as the server builds it), appended to
// `out`: objects as maps, arrays as arrays, integers in their smallest form, other numbers as
// float 64, strings as str. False (out unspecified) when `json` is not valid JSON.
bool json_to_msgpack(std::string_view json, std::string& out);

// The binary frame of a text frame's JSON payload; null when it is not JSON (never for a frame
// the server built). The maker of ws::frame::twin.
ws::shared_frame make_msgpack_frame(const ws::frame& json_frame);

// `message` as a MessagePack connection gets it: the same class and key, the binary twin of its
// frame (built once per frame, whichever connection asks first).
ws::outbound as_msgpack(const ws::outbound& message);

// Why a client's MessagePack message was refused. Every one is logged and ignored, as invalid
// JSON is (the connection stays).
enum class msgpack_error : std::uint8_t {
    none,
    truncated,         // a value ends past the message's last byte
    trailing_bytes,    // bytes after the one top-level value
    too_deep,          // arrays and maps nested deeper than k_max_msgpack_depth
    unsupported_type,  // bin, ext, timestamp, or the never-used byte 0xc1: no JSON form
    key_not_string,    // a map key that is not a str (JSON objects have string keys)
    invalid_utf8,      // a str that is not UTF-8
    not_finite,        // NaN or an infinity (no JSON form)
};

std::string_view to_string(msgpack_error error);

// Nesting allowed in a client's message: the catalog's payloads are flat; 32 leaves room and
// bounds the decoder's recursion.
inline constexpr std::size_t k_max_msgpack_depth = 32;

// Decodes one MessagePack value that fills `bytes` into its JSON text, appended to `out`. Every
// count is checked against the bytes left before anything is reserved or looped over, so the
// work and the output are linear in the input (at most 6 bytes of JSON per byte in).
msgpack_error msgpack_to_json(std::string_view bytes, std::string& out);

}  // namespace zena::protocol
