#pragma once
// The server-to-client envelope: {"type": "<event>", "payload": {...}} exactly as the seed shows.
// An event is encoded once, already framed for the wire, into a shared, immutable buffer; every
// connection that receives it is handed the same bytes, whichever thread it is on.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "ws/frame.hpp"

namespace zena::protocol {

// One outgoing WebSocket message: the frame header and the payload in one buffer, built once.
class frame {
public:
    // `buffer` holds ws::k_max_header_bytes of room, then the payload.
    frame(ws::opcode op, std::string buffer);

    static std::shared_ptr<const frame> make(ws::opcode op, std::string_view payload);

    ws::opcode op() const { return op_; }
    // The message as the application sees it (the JSON text of an event).
    std::string_view payload() const { return std::string_view(bytes_).substr(ws::k_max_header_bytes); }
    // Header and payload, as written to a connection without permessage-deflate.
    std::string_view wire() const { return std::string_view(bytes_).substr(start_); }
    // The same message for a connection with permessage-deflate: compressed (RSV1) by the first
    // thread that asks, once for every connection; wire() for control frames and small ones.
    std::string_view deflated_wire() const;
    // Payload bytes, what a connection's send budget counts.
    std::size_t size() const { return bytes_.size() - ws::k_max_header_bytes; }

private:
    std::string bytes_;
    std::uint8_t start_;
    ws::opcode op_;
    mutable std::once_flag deflate_once_;
    mutable std::string deflated_;  // empty: wire() is sent instead
};

// The encoded text of one message, shared read-only across threads and connections.
using shared_frame = std::shared_ptr<const frame>;

// {"type":<type>,"payload":<payload_json>}; `payload_json` must be valid JSON (for instance the
// output of minify_json), it is copied as is.
shared_frame make_event_frame(std::string_view type, std::string_view payload_json);

}  // namespace zena::protocol
