#pragma once
// The event catalog: every event type the server knows, the fields of its payload and their
// types, and its delivery class. Loaded once at start (the shipped catalog, or a deployment's
// own file), immutable afterwards and shared read-only by every thread. Publishes and client
// events are validated against it; the TypeScript SDK types are checked against the same file.
// The format is described in docs/catalog.md.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ws/outbound.hpp"

namespace simdjson::dom {
class element;  // protocol/json_reader.hpp: only the files that parse include simdjson
}

namespace zena::protocol {

struct field_type {
    enum class kind : std::uint8_t { string, number, boolean, date, enumeration, array, object };
    struct field {
        std::string name;
        std::shared_ptr<const field_type> type;
        bool optional = false;
    };

    kind k = kind::string;
    std::string name;                           // a named type's name, for messages
    std::vector<std::string> values;            // enumeration
    std::shared_ptr<const field_type> element;  // array
    std::vector<field> fields;                  // object
};

struct event_spec {
    std::string type;
    ws::delivery_class delivery = ws::delivery_class::ordered;
    std::string delivery_key;  // with latest: the payload field that keys it
    bool protocol = false;     // sent by the server itself; the API may not publish it
    // Published to a user with no connection: the backend is told (user.offline_event), so it can
    // send a push notification. Server events only.
    bool notify_offline = false;
    std::shared_ptr<const field_type> payload;  // always an object
};

struct validation_error {
    std::string field;    // e.g. "payload.riskLevel", "payload.sources[2].id"
    std::string message;  // e.g. "must be one of medium, high"
};

class catalog {
public:
    // Parses catalog JSON; nullopt with `error` naming the place on failure.
    static std::optional<catalog> parse(std::string_view json, std::string& error);
    static std::optional<catalog> load_file(const std::string& path, std::string& error);

    const event_spec* server_event(std::string_view type) const;
    const event_spec* client_event(std::string_view type) const;
    const std::map<std::string, event_spec, std::less<>>& server_events() const { return server_; }
    const std::map<std::string, event_spec, std::less<>>& client_events() const { return client_; }

    // Checks `payload` against the event's payload type: required fields present, types
    // right, no field the catalog does not name.
    static std::optional<validation_error> validate(const event_spec& spec, simdjson::dom::element payload);
    // The same check for a message that carried no payload at all: the first required field.
    static std::optional<validation_error> validate_absent(const event_spec& spec);

private:
    std::map<std::string, event_spec, std::less<>> server_;
    std::map<std::string, event_spec, std::less<>> client_;
};

// The key of a latest-class event (ws::outbound::latest_key): a hash of its type and the value of
// its key field.
std::uint64_t latest_key_of(std::string_view type, std::string_view key_value);

// The catalog shipped in the repository (catalog/events.json), compiled into the binary.
std::string_view builtin_catalog_json();

}  // namespace zena::protocol
