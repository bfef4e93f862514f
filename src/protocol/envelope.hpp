#pragma once
// The server-to-client envelope: {"type": "<event>", "payload": {...}} exactly as the seed shows.
// An event is encoded once into a shared, immutable buffer; every connection that receives it
// is handed the same bytes.

#include <memory>
#include <string>
#include <string_view>

namespace zena::protocol {

// The encoded text of one message, shared read-only across threads and connections.
using shared_frame = std::shared_ptr<const std::string>;

// {"type":<type>,"payload":<payload_json>}; `payload_json` must be valid JSON (for instance the
// output of minify_json), it is copied as is.
shared_frame make_event_frame(std::string_view type, std::string_view payload_json);

}  // namespace zena::protocol
