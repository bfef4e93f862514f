// libFuzzer: the WebSocket frame reader that reads every client byte after the upgrade
// (ws/frame_reader), with permessage-deflate negotiated so that inflate is fuzzed too. The
// first input byte picks the size of the pieces the rest is fed in, as reads from a socket
// would split it, so incomplete frames and fragments are exercised as well. The second byte
// picks a piece after which the reader is told that the connection sent its own close (0: never),
// so the skipping of what comes after a close is fuzzed too; each piece advances the clock by a
// millisecond, against a small frame budget and message deadline.
#include <chrono>
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
    if (size < 2) return 0;
    const std::size_t piece = 1 + data[0];
    const unsigned discard_after = data[1];
    std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
    static const zena::ws::frame_reader::budget budget{.frames = {1000, 200},
                                                       .message_timeout = std::chrono::milliseconds(100)};
    zena::ws::frame_reader reader(64 * 1024, true, budget);
    sink s;
    std::int64_t now_ms = 0;
    for (unsigned pieces = 1; !rest.empty(); ++pieces, ++now_ms) {
        const auto n = rest.size() < piece ? rest.size() : piece;
        if (reader.feed(rest.substr(0, n), s, now_ms) != zena::ws::frame_reader::status::more) break;
        rest.remove_prefix(n);
        if (pieces == discard_after) reader.discard(4096);
    }
    if (reader.message_overdue(now_ms + 1000)) reader.fail_overdue_message();
    return 0;
}
