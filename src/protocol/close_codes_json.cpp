#include "protocol/close_codes_json.hpp"

#include "protocol/json_writer.hpp"
#include "ws/close_codes.hpp"

namespace zena::protocol {

std::string close_codes_json() {
    std::string out = "[";
    for (const auto& info : ws::close_codes()) {
        if (out.size() > 1) out += ',';
        out += json_object()
                   .add("code", std::uint64_t{static_cast<unsigned>(info.code)})
                   .add("name", info.name)
                   .add("meaning", info.meaning)
                   .add("reconnect", info.reconnect)
                   .str();
    }
    out += ']';
    return out;
}

}  // namespace zena::protocol
