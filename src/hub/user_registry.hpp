#pragma once
// Who is connected, across every thread: connections per user, users, total. The one piece of
// state the event-loop threads share. It is touched on connect and disconnect only (never on the
// publish path) and answers the seed's getUserConnectionCount / getTotalConnectionCount without
// a round trip through every thread. Thread-safe: lock striping by user hash.
//
// It also counts, per channel other than the personal ones, the event-loop threads whose hub has
// a connection holding it: a channel's first holder on this node and its last are reported to
// the channel interest callback, as users are to theirs.
//
// A user's first connection on this node and their last are reported to the interest callback
// (set once, before the threads start), under the user's stripe lock: the calls for one user
// come in the order the transitions happened, whichever threads made them. The callback must
// not block and must not call back into the registry.

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/string_hash.hpp"

namespace zena::hub {

using util::string_hash;

class user_registry {
public:
    // `present`: true for the user's first connection here, false after their last.
    using interest_fn = std::function<void(std::string_view user, bool present)>;
    // Before any add().
    void on_interest(interest_fn fn) { interest_ = std::move(fn); }

    void add(std::string_view user);
    void remove(std::string_view user);

    // `present`: true when a first hub here holds `channel`, false after the last lets it go.
    // Before any add_channel().
    void on_channel_interest(interest_fn fn) { channel_interest_ = std::move(fn); }
    // A hub's first connection on `channel`, and its last (per hub, not per connection).
    void add_channel(std::string_view channel);
    void remove_channel(std::string_view channel);
    // Channels held on this node (besides the personal ones).
    std::size_t channels() const { return channels_.load(std::memory_order_relaxed); }

    std::size_t connections_of(std::string_view user) const;
    std::size_t connections() const { return connections_.load(std::memory_order_relaxed); }
    std::size_t users() const { return users_.load(std::memory_order_relaxed); }

private:
    static constexpr std::size_t k_stripes = 64;
    struct stripe {
        mutable std::mutex mutex;
        std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> counts;
    };
    using stripes = std::array<stripe, k_stripes>;
    static stripe& stripe_of(stripes& of, std::string_view key) { return of[string_hash{}(key) % k_stripes]; }
    stripe& stripe_of(std::string_view user) const { return stripe_of(stripes_, user); }
    // One more (`up`) or one less of `key` in `of`; reports a first or a last to `interest` (under
    // the stripe's lock); returns whether it was one.
    static bool count(stripes& of, std::string_view key, bool up, const interest_fn& interest);

    mutable stripes stripes_;
    mutable stripes channel_stripes_;
    interest_fn interest_;
    interest_fn channel_interest_;
    std::atomic<std::size_t> channels_{0};
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> users_{0};
};

}  // namespace zena::hub
