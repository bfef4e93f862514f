#pragma once
// How a publication travels between nodes through Redis (engine/redis): the body every node
// decodes back into an event and who does not get it, stored as such in a channel's history
// stream, and, on Pub/Sub, behind a header "<seq> <epoch>\n" that the publish script writes (seq
// 0 and no epoch: not stored). Binary: a version byte, flags, the delivery class, then integers
// as LEB128 varints and strings as a varint length and bytes. Everything read from Redis is
// checked (lengths within the message, known version and class); fuzz/redis_wire_fuzz.cpp.
//
// Threading: functions of values.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ws/outbound.hpp"

namespace zena::engine::wire {

struct body {
    bool everyone = false;
    bool ordered = false;
    ws::delivery_class delivery = ws::delivery_class::ordered;
    std::uint64_t latest_key = 0;
    std::string origin;                   // the publishing node's id
    std::uint64_t token = 0;              // the publish, on its node (its answer counts the node's deliveries)
    std::uint32_t index = 0;              // the publication within the publish's batch
    std::string except_user;              // empty: none
    std::uint64_t except_connection = 0;  // on the origin node only; 0: none
    std::string type;
    std::string payload;
};

struct message {
    std::uint64_t seq = 0;  // 0: not stored
    std::string epoch;
    wire::body body;
};

std::string encode(const body& b);
std::optional<body> decode_body(std::string_view bytes);
// A Pub/Sub message: the header, then the body.
std::optional<message> decode_message(std::string_view bytes);
// The header of a message that is not stored.
inline constexpr std::string_view k_unstored_header = "0 \n";

}  // namespace zena::engine::wire
