#pragma once
// The engine seam's presence: who is in a channel, one entry per client (a connection), each
// with an expiry that its node refreshes, so that the clients of a node that died disappear by
// themselves. One interface, two implementations: memory (engine/memory) and Redis
// (engine/redis), both held to tests/contract/presence_contract.
//
// Threading: as engine::history: any thread; `done` exactly once, on the calling thread before
// the call returns or on another thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace zena::engine {

// A channel's members now: each user with the number of its live clients.
struct presence_state {
    std::map<std::string, std::size_t, std::less<>> users;
    std::size_t clients = 0;
};

class presence {
public:
    virtual ~presence() = default;

    // What a join or a leave changed for the user, so that a channel's presence.join and
    // presence.leave go out once per user, not once per client (tab), across nodes. join: true
    // when `client` is the user's first live client in the channel (expired entries are dropped
    // first, so a user whose clients all expired arrives again); false for a refresh or another
    // client of a user already there. leave: true when `client` was there and the user has no
    // live client left in the channel; false when the user still has one, or `client` was not
    // there (never joined, already left, or expired). An error: the engine could not tell.
    using membership_done = std::function<void(util::result<bool>)>;
    using query_done = std::function<void(util::result<presence_state>)>;

    // Adds `client` (unique across the deployment: a node's id and a connection's) of `user` to
    // `channel`, or refreshes it; it expires `ttl` after its last join unless left before. A
    // present client that joins as another user moves to it: the answer is the new user's, and
    // the old user's departure is not reported (a connection never changes user).
    virtual void join(std::string_view channel, std::string_view client, std::string_view user,
                      std::chrono::milliseconds ttl, membership_done done) = 0;
    // Removes `client` from `channel`; a client that is not there is no error.
    virtual void leave(std::string_view channel, std::string_view client, membership_done done) = 0;
    // The channel's live (not expired) members.
    virtual void query(std::string_view channel, query_done done) = 0;
    // How many users the channel has now (live), without listing them: O(1) for a join's or a
    // leave's announcement to decide whether the channel is small enough to announce it.
    using count_done = std::function<void(util::result<std::size_t>)>;
    virtual void users(std::string_view channel, count_done done) = 0;
};

}  // namespace zena::engine
