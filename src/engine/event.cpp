#include "engine/event.hpp"

#include "protocol/envelope.hpp"

namespace zena::engine {

ws::outbound channel_message(const event& e, std::string_view channel, const position& at) {
    return ws::outbound{protocol::make_channel_frame(e.type, e.payload, channel, at.epoch, at.seq), e.message.delivery,
                        e.message.latest_key};
}

}  // namespace zena::engine
