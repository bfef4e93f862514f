#include "protocol/envelope.hpp"

#include "protocol/json_writer.hpp"

namespace zena::protocol {

shared_frame make_event_frame(std::string_view type, std::string_view payload_json) {
    std::string out;
    out.reserve(type.size() + payload_json.size() + 24);
    out += "{\"type\":";
    append_json_string(out, type);
    out += ",\"payload\":";
    out += payload_json;
    out += '}';
    return std::make_shared<const std::string>(std::move(out));
}

}  // namespace zena::protocol
