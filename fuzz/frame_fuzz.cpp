// libFuzzer: the WebSocket frame reader that reads every client byte after the upgrade
// (ws/frame_reader), with permessage-deflate negotiated so that inflate is fuzzed too. The
// first input byte picks the size of the pieces the rest is fed in, as reads from a socket
// would split it, so incomplete frames and fragments are exercised as well.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ws/frame_reader.hpp"

namespace {

struct sink final : zena::ws::frame_reader::handler {
    std::size_t bytes = 0;
    void on_message(std::string_view data, bool) override { bytes += data.size(); }
    void on_ping(std::string_view payload) override { bytes += payload.size(); }
    void on_pong() override {}
    void on_close(std::optional<std::uint16_t>, std::string_view reason) override { bytes += reason.size(); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t piece = 1 + data[0];
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    zena::ws::frame_reader reader(64 * 1024, true);
    sink s;
    while (!rest.empty()) {
        const auto n = rest.size() < piece ? rest.size() : piece;
        if (reader.feed(rest.substr(0, n), s) != zena::ws::frame_reader::status::more) break;
        rest.remove_prefix(n);
    }
    return 0;
}
