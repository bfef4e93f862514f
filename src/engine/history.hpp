#pragma once
// The engine seam's history: each channel's recent events, bounded by count and age, so that a
// client that comes back with its position gets exactly what it missed. One interface, two
// implementations: memory (engine/memory, one process) and Redis (engine/redis, many nodes),
// both held to tests/contract/history_contract.
//
// Threading: every method may be called from any thread. `done` is called exactly once, on the
// calling thread before the call returns or on another thread (a Redis reply); a caller on an
// event loop posts back to its own thread. An implementation never calls `done` while holding a
// lock that another call needs.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "engine/event.hpp"
#include "util/result.hpp"

namespace zena::engine {

class history {
public:
    virtual ~history() = default;

    using append_done = std::function<void(util::result<appended>)>;
    using read_done = std::function<void(util::result<history_page>)>;
    using top_done = std::function<void(util::result<position>)>;

    // Appends `e` to `channel`'s history (an `ephemeral` event is refused: it is never stored;
    // so is a null one) and answers its position (the next seq, in the channel's current epoch)
    // and the frame built for it there (channel_message), which live connections are handed.
    // The event is shared, not copied: one event published to many channels is held once. The
    // oldest events go past `limits`.
    virtual void append(std::string_view channel, std::shared_ptr<const event> e, const history_limits& limits,
                        append_done done) = 0;

    // The events after `since` (nullopt: from the oldest kept), oldest first, at most `limit`.
    virtual void read(std::string_view channel, std::optional<position> since, std::size_t limit, read_done done) = 0;

    // The channel's position now. A channel never written gets its epoch here, so that a
    // client that takes this position and comes back later recovers the events appended since.
    virtual void top(std::string_view channel, top_done done) = 0;
};

}  // namespace zena::engine
