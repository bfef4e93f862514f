#include "protocol/envelope.hpp"

#include "protocol/json_writer.hpp"
#include "ws/deflate.hpp"

namespace zena::protocol {

frame::frame(ws::opcode op, std::string buffer) : bytes_(std::move(buffer)), op_(op) {
    char header[ws::k_max_header_bytes];
    const auto n = ws::write_header(header, op, size());
    start_ = static_cast<std::uint8_t>(ws::k_max_header_bytes - n);
    bytes_.replace(start_, n, header, n);
}

std::shared_ptr<const frame> frame::make(ws::opcode op, std::string_view payload) {
    std::string buffer(ws::k_max_header_bytes, '\0');
    buffer += payload;
    return std::make_shared<const frame>(op, std::move(buffer));
}

std::string_view frame::deflated_wire() const {
    const bool data = op_ == ws::opcode::text || op_ == ws::opcode::binary;
    if (!data || size() < ws::k_compress_threshold) return wire();
    std::call_once(deflate_once_, [this] {
        const auto compressed = ws::compress_message(payload());
        if (compressed.size() >= size()) return;  // incompressible: the plain frame is smaller
        deflated_ = ws::make_frame(op_, compressed, true);
    });
    return deflated_.empty() ? wire() : std::string_view(deflated_);
}

shared_frame make_event_frame(std::string_view type, std::string_view payload_json) {
    std::string out(ws::k_max_header_bytes, '\0');
    out.reserve(ws::k_max_header_bytes + type.size() + payload_json.size() + 24);
    out += "{\"type\":";
    append_json_string(out, type);
    out += ",\"payload\":";
    out += payload_json;
    out += '}';
    return std::make_shared<const frame>(ws::opcode::text, std::move(out));
}

}  // namespace zena::protocol
