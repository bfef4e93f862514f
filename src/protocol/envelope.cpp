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

ws::shared_frame make_channel_frame(std::string_view type, std::string_view payload_json, std::string_view channel,
                                    std::string_view epoch, std::uint64_t seq) {
    std::string out(ws::k_max_header_bytes, '\0');
    out.reserve(ws::k_max_header_bytes + type.size() + payload_json.size() + channel.size() + epoch.size() + 64);
    out += "{\"type\":";
    append_json_string(out, type);
    out += ",\"payload\":";
    out += payload_json;
    out += ",\"channel\":";
    append_json_string(out, channel);
    if (!epoch.empty()) {
        out += ",\"epoch\":";
        append_json_string(out, epoch);
        out += ",\"seq\":";
        out += std::to_string(seq);
    }
    out += '}';
    return std::make_shared<const ws::frame>(ws::opcode::text, std::move(out));
}

}  // namespace zena::protocol
