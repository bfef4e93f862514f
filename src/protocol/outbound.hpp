#pragma once
// One message on its way to connections: the encoded frame, shared by every target, and how a
// connection that is behind should treat it (the event's delivery class in the catalog).

#include <cstdint>
#include <string_view>

#include "protocol/envelope.hpp"

namespace zena::protocol {

// What a slow or briefly disconnected connection gets of an event type.
enum class delivery_class : std::uint8_t {
    ordered,    // every event, in order; overflowing the send budget ends the connection (4000)
    latest,     // only the newest per key matters: a queued older one is replaced
    ephemeral,  // dropped when the connection already has frames waiting
};

std::string_view to_string(delivery_class cls);

struct outbound {
    shared_frame frame;
    delivery_class delivery = delivery_class::ordered;
    // With latest: identifies "type + key value"; a queued frame with the same key is replaced.
    std::uint64_t latest_key = 0;
};

// The key of a latest-class event: a hash of its type and the value of its key field.
std::uint64_t latest_key_of(std::string_view type, std::string_view key_value);

}  // namespace zena::protocol
