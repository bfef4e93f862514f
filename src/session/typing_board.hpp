#pragma once
// Who is typing where, per user and channel across every tab of the node (docs/presence.md): a
// user typing in two tabs is one typist, throttled once, and a typing.stop from either tab ends
// it. The board decides what to relay; the sessions relay it and keep the timers.
//
// Threading: any thread (one mutex; each call is a map lookup). An entry lives only while its
// user is typing: at most one per typing user and channel.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace zena::session {

class typing_board {
public:
    enum class relay : std::uint8_t { none, start, stop };
    struct started {
        relay what = relay::none;
        std::uint64_t generation = 0;  // for expire(): a later start makes an earlier timer moot
    };
    // Relays are throttled to one active:true a second per user and channel.
    static constexpr std::int64_t k_throttle_ms = 1000;

    // A typing.start from connection `conn` at `now_ms`: start (first, or past the throttle while
    // typing on) or none.
    started start(std::string_view channel, std::string_view user, std::uint64_t conn, std::int64_t now_ms);
    // A typing.stop from any tab of the user: stop if they were typing.
    relay stop(std::string_view channel, std::string_view user);
    // The timeout of the start numbered `generation` has passed: stop unless a later start came.
    relay expire(std::string_view channel, std::string_view user, std::uint64_t generation);
    // Connection `conn` let the channel go (or ended): stop if it was the one that last started.
    relay leave(std::string_view channel, std::string_view user, std::uint64_t conn);

    std::size_t typists() const;

private:
    struct entry {
        std::int64_t relayed_ms = 0;
        std::uint64_t generation = 0;
        std::uint64_t last_conn = 0;
    };
    static std::string key(std::string_view channel, std::string_view user);

    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> typing_;
    std::uint64_t generations_ = 0;
};

}  // namespace zena::session
