#include "engine/event.hpp"

#include <functional>

#include "protocol/envelope.hpp"

namespace zena::engine {

ws::outbound channel_message(const event& e, std::string_view channel, const position& at) {
    // A latest event replaces a queued one of the same kind and key in the same channel only:
    // sync.progress of account a1 on deal:1 says nothing about a1 on deal:2.
    auto key = e.message.latest_key;
    if (e.message.delivery == ws::delivery_class::latest) {
        key ^= std::hash<std::string_view>{}(channel) + 0x9e3779b97f4a7c15ULL + (key << 6U) + (key >> 2U);
    }
    return ws::outbound{protocol::make_channel_frame(e.type, e.payload, channel, at.epoch, at.seq), e.message.delivery,
                        key};
}

}  // namespace zena::engine
