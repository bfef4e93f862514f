#pragma once
// The engine of many nodes (engine.type = redis): the broker and the history of the engine seam
// on one Redis or several (channels spread over them by a stable hash), so that any node
// publishes and every node delivers. Held to the same contract suites as the memory engine
// (tests/contract). Documented in docs/engine.md.
//
// - A channel's history is a Redis stream with a meta hash (epoch, last seq, highest seq lost,
//   max age) and, for latest events, a hash of the seq each key holds; one Lua script appends,
//   trims (count, age, compaction) and publishes, so seq order is Pub/Sub order on every node.
// - A node subscribes (sharded Pub/Sub where Redis offers it) only to the channels its
//   connections hold, and everyone to `<prefix>:all`. A publish goes to Redis and comes back
//   through Pub/Sub to every node that holds the channel, this one included: the one path keeps
//   the order. A publish with an idempotency key sets a record per channel (in the append
//   script, or a script of its own when not stored) and is skipped where the record exists. Its answer waits for this
//   node's own copy, so `delivered` counts this node's connections as the memory engine's does.
// - Per stored channel a node remembers the last seq it handed its hubs; a jump (a message lost
//   while Pub/Sub was away) or a reconnect makes it read what it missed from history and hand
//   that over first, so clients see no gap; what history no longer holds is counted
//   (zena_engine_gaps_total).
// - A read of a channel this node is subscribing to waits for Redis to confirm the
//   subscription, so nothing published after the read can pass the node by.
// - Channel presence: per channel a hash client -> user, a sorted set of expiries and a hash
//   user -> live clients, changed by scripts that drop expired entries first, so a join or a
//   leave answers "first/last of the user" for the whole deployment. Client ids are prefixed
//   with the node's id.
// - User presence for the backend: per user the nodes that hold it (each entry expiring unless
//   its node refreshes it), and whether it was announced online; scripts decide the
//   presence.online and .offline notices once for the deployment.
// - The cluster: a survey is published on `<prefix>:control` (shard 0); every node answers on
//   the asker's `<prefix>:reply:<node>`; the asker waits for as many answers as Redis says
//   received the request. Each node refreshes its entry in the hash `<prefix>:nodes`, and
//   sends a canary through each shard's Pub/Sub: /readyz fails when one does not come back.
//
// Threading: every method from any thread (see engine::broker and engine::history).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/broker.hpp"
#include "engine/cluster.hpp"
#include "engine/history.hpp"
#include "engine/presence.hpp"
#include "hub/hub_set.hpp"
#include "observability/metrics.hpp"
#include "redis/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace zena::engine {

struct redis_engine_options {
    std::vector<redis::endpoint> shards;  // at least one
    std::string prefix = "zena";          // of every key and Pub/Sub channel
    std::string node_id;                  // unique per node
    std::chrono::milliseconds timeout{2000};
    // How long an idle channel keeps its epoch and seq (as memory_history's meta_ttl).
    std::chrono::milliseconds meta_ttl = std::chrono::hours(24 * 7);
    // How long a publish's idempotency key is remembered (publication::idempotency_key): a record
    // per key and channel in Redis, expiring after this.
    std::chrono::milliseconds idempotency_window = std::chrono::minutes(1);
    observability::metrics* metrics = nullptr;
    // What this node tells the registry (refreshed every `registry_period`); the canary goes
    // through each shard's Pub/Sub as often.
    std::function<node_info()> self;
    std::chrono::milliseconds registry_period{2000};
    // Channel presence entries live this long in Redis unless their node refreshes them (a join
    // asking for longer is held until its leave: refreshed every third of this), so the members
    // of a node that died leave within it.
    std::chrono::milliseconds presence_ttl{60000};
    // User presence for the backend (presence.online and .offline), decided once for the
    // deployment: `on_user(user, true)` on the node whose user_here() found the user announced
    // nowhere yet; `on_user(user, false)` on one node once the user has had no connection
    // anywhere for `offline_grace` (or since the entries of a node that stopped refreshing them
    // expired, `presence_ttl`). Called on the engine's Redis thread; null: user_here() is not used.
    std::function<void(std::string_view user, bool online)> on_user;
    std::chrono::milliseconds offline_grace{5000};
    // How often a node settles the users due (offline notices come up to this late).
    std::chrono::milliseconds settle_period{1000};
    // Where the engine's Redis I/O runs: every shard's commands and Pub/Sub, and so every
    // callback said here to run on the engine's Redis thread. The app gives event loop 0, so
    // that a publish crosses no thread on its way to Redis and back; null: threads of the
    // engine's own (one per shard's pipeline and one per subscriber).
    // With a loop given, the engine is destroyed once no thread runs that loop.
    boost::asio::io_context* context = nullptr;
};

class redis_engine {
public:
    redis_engine(redis_engine_options options, hub::hub_set& hubs);
    ~redis_engine();
    redis_engine(const redis_engine&) = delete;
    redis_engine& operator=(const redis_engine&) = delete;

    engine::broker& broker();
    engine::history& history();
    engine::cluster& cluster();
    engine::presence& presence();

    // This node's first connection of `user` arrived (true) or its last one left (false); the
    // calls for one user in the order of their transitions (hub::user_registry's interest).
    void user_here(std::string_view user, bool present);

    // Why the node should not take traffic (a shard unreachable for commands or Pub/Sub, or its
    // canary not coming back), in words for /readyz; empty when it is fit.
    std::string trouble() const;

    // The shard (index into options.shards) of `channel`: a jump consistent hash of its name.
    static std::size_t shard_of(std::string_view channel, std::size_t shards);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace zena::engine
