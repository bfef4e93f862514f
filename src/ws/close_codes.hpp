#pragma once
// The one table of WebSocket close codes the server uses, with what each means and whether a
// client should reconnect. The TypeScript client mirrors this table (checked by a test against
// `zena-realtime codes`, protocol/close_codes_json.hpp); docs/protocol.md lists it for humans.
// It lives in the frame layer because close codes are WebSocket's: the frame layer closes with
// the RFC's (1002, 1007, 1009) and with slow_consumer.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace zena::ws {

enum class close_code : std::uint16_t {
    normal = 1000,            // the client or server finished normally
    going_away = 1001,        // server shutdown or restart: reconnect soon
    protocol_error = 1002,    // the peer broke RFC 6455
    unsupported_data = 1003,  // a message type the endpoint cannot accept
    invalid_payload = 1007,   // text that is not UTF-8
    policy_violation = 1008,  // missing, invalid or expired token
    message_too_big = 1009,   // a message over the configured limit
    internal_error = 1011,    // an unexpected server fault
    try_again_later = 1013,   // the server is at capacity
    slow_consumer = 4000,     // the connection fell behind its send budget
    disconnected = 4001,      // closed by the server API (logout, revoked token)
};

struct close_info {
    close_code code;
    std::string_view name;     // stable identifier, also used by the TypeScript client
    std::string_view meaning;  // one line for docs and logs
    bool reconnect;            // whether a client should reconnect (with backoff)
};

// Every code above, in ascending order.
std::span<const close_info> close_codes();

// The entry for `code`; every enumerator has one.
const close_info& describe(close_code code);

}  // namespace zena::ws
