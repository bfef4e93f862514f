#include "net/echo_session.hpp"

#include "ws/close_codes.hpp"

namespace zena::net {

void echo_session::on_message(std::string_view data, bool text) {
    const ws::outbound echo{ws::frame::make(text ? ws::opcode::text : ws::opcode::binary, data)};
    if (enqueue(echo) == queued::full) {
        close(static_cast<std::uint16_t>(ws::close_code::slow_consumer), "send queue full");
    }
}

}  // namespace zena::net
