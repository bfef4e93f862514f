#include "ws/echo_session.hpp"

namespace zena::ws {

echo_session::echo_session(transport&& stream, endpoint::options opts, net::worker& worker, net::admission ticket)
    : endpoint(std::move(stream), worker.flush, opts), ticket_(std::move(ticket)) {}

void echo_session::on_message(std::string_view data, bool text) {
    const protocol::outbound echo{protocol::frame::make(text ? opcode::text : opcode::binary, data)};
    if (enqueue(echo) == queued::full) close(4000, "send queue full");
}

}  // namespace zena::ws
