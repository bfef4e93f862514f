#pragma once
// The engine seam's broker: how a publish reaches every connection of its channels, on this node
// or on every node, and what this node is interested in. One interface, two implementations:
// memory (engine/memory, one process: the node's own hubs are everyone) and Redis (engine/redis,
// many nodes: Pub/Sub carries publishes to the nodes that hold the channel). Both are held to
// tests/contract/broker_contract.
//
// Every publish takes the same path whatever the broker: the broker assigns each stored event
// its position (history append and delivery are one step per channel: a lock in memory, one
// script in Redis) and delivers to this node's hubs through engine::local_delivery.
//
// Threading: every method may be called from any thread. `done` is called exactly once, on the
// calling thread or on another (the thread whose hub finished last, or a Redis reply); a caller
// on an event loop posts back to its own thread. Publications of one publish() reach each
// connection in their order, and two publish() calls made one after the other from one thread
// reach each connection in that order.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/event.hpp"
#include "util/result.hpp"

namespace zena::engine {

// One event to some channels (each user of a broadcastToUsers has one: user:<id>), or to every
// connection. The event is shared by all of them: its frame is built once.
struct publication {
    std::shared_ptr<const engine::event> event;
    std::vector<std::string> channels;
    bool everyone = false;  // every connection of every node; `channels` is then empty
    bool history = false;   // append to each channel's history (never for an ephemeral event)
    history_limits limits;  // with `history`
    // Who does not get it: every connection of `except_user` (typing: not the typist's own
    // tabs), and the connection `except_connection` (0: none) with the id the node gave it (a
    // read receipt: not the tab that read). Empty: everyone on the channels.
    std::string except_user;
    std::uint64_t except_connection = 0;
    // Not stored, but delivered in the order publish() was called across threads, like stored
    // publications (presence.join and presence.leave of a channel must not swap).
    bool ordered = false;
    // Non-empty: published at most once per channel (once for `everyone`) within the engine's
    // idempotency window. A channel where a publication with this key was already published is
    // skipped (publish_outcome::duplicate), so a publisher may retry a publish whose outcome it
    // does not know (a 503 "may have been applied") without delivering it twice.
    std::string idempotency_key;
};

// The scope of an idempotency key published to `everyone` (no channel is named "*"): both
// engines keep its record as a channel's.
inline constexpr std::string_view k_everyone_scope = "*";

// What became of one publication.
struct publish_outcome {
    std::size_t delivered = 0;        // connections it was queued to (this node's, for Redis)
    std::vector<position> positions;  // with `history`: each channel's position, in its order
    // With an idempotency key: per channel (one entry for `everyone`), whether it was skipped as
    // a duplicate. A skipped channel's position is the first publish's (its epoch is empty when
    // that one is not known yet: still being published); `delivered` counts the others alone.
    // Empty without a key.
    std::vector<bool> duplicate;

    // Every target was a duplicate: nothing was published.
    bool all_duplicate() const {
        return !duplicate.empty() && std::all_of(duplicate.begin(), duplicate.end(), [](bool d) { return d; });
    }
};

// Why `batch` cannot be published as a whole (a stored publication without an event, or with an
// ephemeral one, which is never stored), or nullopt. Brokers refuse such a batch before anything
// is appended.
std::optional<util::error> unstorable(const std::vector<publication>& batch);

class broker {
public:
    virtual ~broker() = default;

    // Per publication, in order; or why nothing was published (the engine is unreachable).
    using publish_done = std::function<void(util::result<std::vector<publish_outcome>>)>;

    // Publishes each of `batch` in its order; they cross to the hubs together.
    virtual void publish(std::shared_ptr<const std::vector<publication>> batch, publish_done done) = 0;

    // This node's interest: a connection here holds `channel` (the first one to) or no longer
    // does (the last one). Calls for one channel come in the order the holders changed; a broker
    // that routes by interest (Redis) subscribes and unsubscribes accordingly, never one round
    // trip per call.
    virtual void subscribe(std::string_view channel) = 0;
    virtual void unsubscribe(std::string_view channel) = 0;
    // How many of this node's publishes are on their way back to its own hubs: sent, and not yet
    // delivered here (Redis: published, the Pub/Sub copy not yet handed over). An event loop
    // about to write its frames may wait a little for them, so that they join the same write
    // (net::worker). The memory broker delivers within publish(): always 0.
    virtual std::size_t coming() const { return 0; }
};

}  // namespace zena::engine
