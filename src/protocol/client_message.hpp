#pragma once
// Messages a client sends: {"type": "...", "payload": {...}}. This is the check that runs before
// a client event goes anywhere; everything that fails it is logged (rate-limited) and ignored,
// the connection stays open, as the seed requires.

#include <cstdint>
#include <string>
#include <string_view>

namespace zena::protocol {

// The client events of the seed.
enum class client_event : std::uint8_t { sync_request, thread_view, typing_start };

std::string_view to_string(client_event event);

enum class client_error : std::uint8_t {
    none,
    invalid_json,   // not JSON, or not UTF-8
    not_an_object,  // JSON, but not an object
    missing_type,   // no "type", or not a string
    unknown_type,   // a type the server does not know
    bad_payload,    // payload missing a required field or of the wrong shape; see `field`
};

std::string_view to_string(client_error error);

struct client_message {
    client_error error = client_error::none;
    std::string field;         // with bad_payload: the offending field, e.g. "payload.threadId"
    std::string type;          // the type as sent (bounded), when there was one
    client_event event{};      // valid when error == none
    std::string payload_json;  // minified payload, "{}" when the client sent none
};

// Upper bound on any string field a client event carries (ids, not prose).
inline constexpr std::size_t k_max_client_id_bytes = 256;

client_message parse_client_message(std::string_view text);

}  // namespace zena::protocol
