#pragma once
// The server-to-client envelope: {"type": "<event>", "payload": {...}} exactly as the seed shows.
// An event is encoded once, already framed for the wire (ws::frame), into a shared, immutable
// buffer; every connection that receives it is handed the same bytes, whichever thread it is on.

#include <cstdint>
#include <string_view>

#include "ws/frame.hpp"

namespace zena::protocol {

// {"type":<type>,"payload":<payload_json>}; `payload_json` must be valid JSON (for instance the
// output of minify_json), it is copied as is.
ws::shared_frame make_event_frame(std::string_view type, std::string_view payload_json);

// An event on a channel: {"type","payload","channel"} and, for a stored event (`epoch` not
// empty), "epoch" and "seq" (docs/channels.md).
ws::shared_frame make_channel_frame(std::string_view type, std::string_view payload_json, std::string_view channel,
                                    std::string_view epoch, std::uint64_t seq);

}  // namespace zena::protocol
