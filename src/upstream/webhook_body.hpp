#pragma once
// The webhook contract, free of Asio and Beast: the JSON body of one client event, its
// signature, and the URL form the webhook accepts. Documented in docs/upstream.md.

#include <cstdint>
#include <string>
#include <string_view>

namespace zena::upstream {

// {"userId":..,"connectionId":..,"type":..,"payload":<payload_json>,"receivedAt":"<ISO-8601 UTC>"}
std::string client_event_body(std::string_view user_id, std::uint64_t connection_id, std::string_view type,
                              std::string_view payload_json, std::int64_t received_at_ms);

// The X-Zena-Signature value for `body`: "sha256=" + lowercase hex HMAC-SHA256 with `secret`.
std::string webhook_signature(std::string_view secret, std::string_view body);

}  // namespace zena::upstream
