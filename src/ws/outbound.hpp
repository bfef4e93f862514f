#pragma once
// One message on its way to connections: the frame, shared by every target, and how a
// connection that is behind treats it. The classes are the send queue's policies; which event
// type gets which is the catalog's business (protocol::catalog), not this layer's.

#include <cstdint>
#include <string_view>

#include "ws/frame.hpp"

namespace zena::ws {

// What a slow or briefly disconnected connection gets of a message.
enum class delivery_class : std::uint8_t {
    ordered,    // every message, in order; overflowing the send budget ends the connection (4000)
    latest,     // only the newest per key matters: a queued older one is replaced
    ephemeral,  // dropped while the connection is behind (its socket has not taken the last write and
                // frames wait) or when it does not fit the send budget; never closes the connection
};

std::string_view to_string(delivery_class cls);

struct outbound {
    shared_frame frame;
    delivery_class delivery = delivery_class::ordered;
    // With latest: identifies the message's kind and key; a queued frame with the same key is
    // replaced.
    std::uint64_t latest_key = 0;
};

}  // namespace zena::ws
