#include "protocol/client_message.hpp"

#include "protocol/catalog.hpp"
#include "protocol/json_reader.hpp"

namespace zena::protocol {
namespace {

client_message fail(client_error error, std::string field = {}) {
    client_message m;
    m.error = error;
    m.field = std::move(field);
    return m;
}

}  // namespace

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

client_message parse_client_message(std::string_view text, const catalog& events) {
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
    m.type = std::string{type.substr(0, k_max_logged_type_bytes)};
    m.spec = events.client_event(type);
    if (!m.spec) {
        m.error = client_error::unknown_type;
        m.field = "type";
        return m;
    }

    simdjson::dom::element payload;
    const bool present = object["payload"].get(payload) == simdjson::SUCCESS && !payload.is_null();
    // A missing payload reads as {}: fine for events without required fields.
    auto error = present ? catalog::validate(*m.spec, payload) : catalog::validate_absent(*m.spec);
    if (error) {
        m.error = client_error::bad_payload;
        m.field = std::move(error->field);
        m.spec = nullptr;
        return m;
    }
    m.payload_json = present ? minify_json(payload) : "{}";
    return m;
}

}  // namespace zena::protocol
