#pragma once
// Who is connected, across every thread: connections per user, users, total. The one piece of
// state the event-loop threads share. It is touched on connect and disconnect only (never on the
// publish path) and answers the seed's getUserConnectionCount / getTotalConnectionCount without
// a round trip through every thread. Thread-safe: lock striping by user hash.
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

namespace zena::hub {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class user_registry {
public:
    // `present`: true for the user's first connection here, false after their last.
    using interest_fn = std::function<void(std::string_view user, bool present)>;
    // Before any add().
    void on_interest(interest_fn fn) { interest_ = std::move(fn); }

    void add(std::string_view user);
    void remove(std::string_view user);

    std::size_t connections_of(std::string_view user) const;
    std::size_t connections() const { return connections_.load(std::memory_order_relaxed); }
    std::size_t users() const { return users_.load(std::memory_order_relaxed); }

private:
    static constexpr std::size_t k_stripes = 64;
    struct stripe {
        mutable std::mutex mutex;
        std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> counts;
    };
    stripe& stripe_of(std::string_view user) const { return stripes_[string_hash{}(user) % k_stripes]; }

    mutable std::array<stripe, k_stripes> stripes_;
    interest_fn interest_;
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> users_{0};
};

}  // namespace zena::hub
