#pragma once
// Messages a client sends: {"type": "...", "payload": {...}}, checked against the client events
// of the catalog before they go anywhere. Everything that fails is logged (rate-limited) and
// ignored, and the connection stays open, as the seed requires.

#include <cstdint>
#include <string>
#include <string_view>

namespace zena::protocol {

class catalog;
struct event_spec;

enum class client_error : std::uint8_t {
    none,
    invalid_json,   // not JSON, or not UTF-8
    not_an_object,  // JSON, but not an object
    missing_type,   // no "type", or not a string
    unknown_type,   // a type the catalog's client events do not list
    bad_payload,    // payload does not match the catalog; see `field`
};

std::string_view to_string(client_error error);

struct client_message {
    client_error error = client_error::none;
    std::string field;                 // with bad_payload: the offending field, e.g. "payload.threadId"
    std::string type;                  // the type as sent (bounded), when there was one
    const event_spec* spec = nullptr;  // the catalog's entry, when error == none
    std::string payload_json;          // minified payload, "{}" when the client sent none
};

// Longest type name kept for logs.
inline constexpr std::size_t k_max_logged_type_bytes = 128;

client_message parse_client_message(std::string_view text, const catalog& events);

}  // namespace zena::protocol
