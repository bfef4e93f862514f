#include "protocol/envelope.hpp"

#include <string>

#include "protocol/json_writer.hpp"

namespace zena::protocol {

ws::shared_frame make_event_frame(std::string_view type, std::string_view payload_json) {
    std::string out(ws::k_max_header_bytes, '\0');
    out.reserve(ws::k_max_header_bytes + type.size() + payload_json.size() + 24);
    out += "{\"type\":";
    append_json_string(out, type);
    out += ",\"payload\":";
    out += payload_json;
    out += '}';
    return std::make_shared<const ws::frame>(ws::opcode::text, std::move(out));
}

}  // namespace zena::protocol
