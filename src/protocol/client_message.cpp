#include "protocol/client_message.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "protocol/json_reader.hpp"

namespace zena::protocol {
namespace {

constexpr std::array<std::pair<std::string_view, client_event>, 3> k_types{{
    {"sync.request", client_event::sync_request},
    {"thread.view", client_event::thread_view},
    {"typing.start", client_event::typing_start},
}};

client_message fail(client_error error, std::string field = {}) {
    client_message m;
    m.error = error;
    m.field = std::move(field);
    return m;
}

// Checks the payload fields of one event type. Extra fields are allowed (clients newer than the
// server must keep working); required fields must be there with the right type.
bool check_payload(client_event event, simdjson::dom::object payload, std::string& field) {
    if (event != client_event::thread_view) return true;
    std::string_view thread_id;
    if (payload["threadId"].get_string().get(thread_id) != simdjson::SUCCESS || thread_id.empty() ||
        thread_id.size() > k_max_client_id_bytes) {
        field = "payload.threadId";
        return false;
    }
    return true;
}

}  // namespace

std::string_view to_string(client_event event) {
    for (const auto& [name, value] : k_types) {
        if (value == event) return name;
    }
    return "unknown";
}

std::string_view to_string(client_error error) {
    switch (error) {
        case client_error::none: return "none";
        case client_error::invalid_json: return "invalid_json";
        case client_error::not_an_object: return "not_an_object";
        case client_error::missing_type: return "missing_type";
        case client_error::unknown_type: return "unknown_type";
        case client_error::bad_payload: return "bad_payload";
    }
    return "unknown";
}

client_message parse_client_message(std::string_view text) {
    simdjson::dom::element root;
    if (thread_json_parser().parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) {
        return fail(client_error::invalid_json);
    }
    simdjson::dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) return fail(client_error::not_an_object);

    std::string_view type;
    if (object["type"].get_string().get(type) != simdjson::SUCCESS || type.empty()) {
        return fail(client_error::missing_type, "type");
    }
    client_message m;
    m.type = std::string{type.substr(0, k_max_client_id_bytes)};

    const auto* known = std::find_if(k_types.begin(), k_types.end(), [&](const auto& t) { return t.first == type; });
    if (known == k_types.end()) {
        m.error = client_error::unknown_type;
        m.field = "type";
        return m;
    }
    m.event = known->second;

    simdjson::dom::element payload;
    if (object["payload"].get(payload) != simdjson::SUCCESS || payload.is_null()) {
        // A missing payload reads as {}; events with required fields then fail below.
        if (m.event == client_event::thread_view) {
            m.error = client_error::bad_payload;
            m.field = "payload.threadId";
            return m;
        }
        m.payload_json = "{}";
        return m;
    }
    simdjson::dom::object payload_object;
    if (payload.get_object().get(payload_object) != simdjson::SUCCESS) {
        m.error = client_error::bad_payload;
        m.field = "payload";
        return m;
    }
    if (!check_payload(m.event, payload_object, m.field)) {
        m.error = client_error::bad_payload;
        return m;
    }
    m.payload_json = minify_json(payload);
    return m;
}

}  // namespace zena::protocol
