#include "ws/close_codes.hpp"

#include <array>
#include <cassert>
#include <string>

namespace zena::ws {
namespace {

constexpr std::array k_table{
    close_info{close_code::normal, "normal", "closed normally", false},
    close_info{close_code::going_away, "going_away", "server shutting down or restarting; reconnect soon", true},
    close_info{close_code::protocol_error, "protocol_error", "the client broke the WebSocket protocol", false},
    close_info{close_code::unsupported_data, "unsupported_data", "a message type the server does not accept", false},
    close_info{close_code::invalid_payload, "invalid_payload", "a text message that is not valid UTF-8", false},
    close_info{close_code::policy_violation, "policy_violation",
               "missing, invalid or expired token; reconnect only with a new token", false},
    close_info{close_code::message_too_big, "message_too_big", "a message over the server's size limit", false},
    close_info{close_code::internal_error, "internal_error", "unexpected server error", true},
    close_info{close_code::try_again_later, "try_again_later", "the server is at capacity; reconnect later", true},
    close_info{close_code::slow_consumer, "slow_consumer",
               "the connection could not keep up and fell behind; reconnect and resume", true},
    close_info{close_code::disconnected, "disconnected",
               "closed by the server (logout or revoked token); do not reconnect with the same token", false},
};

}  // namespace

std::span<const close_info> close_codes() { return k_table; }

const close_info& describe(close_code code) {
    for (const auto& info : k_table) {
        if (info.code == code) return info;
    }
    assert(false && "every close_code has a table entry");
    return k_table[0];
}

}  // namespace zena::ws
