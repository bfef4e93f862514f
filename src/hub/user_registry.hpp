#pragma once
// Who is connected, across every thread: connections per user, users, total. The one piece of
// state the event-loop threads share. It is touched on connect and disconnect only (never on the
// publish path) and answers the seed's getUserConnectionCount / getTotalConnectionCount without
// a round trip through every thread. Thread-safe: lock striping by user hash.

#include <array>
#include <atomic>
#include <cstddef>
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
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> users_{0};
};

}  // namespace zena::hub
