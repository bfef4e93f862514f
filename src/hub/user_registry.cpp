#include "hub/user_registry.hpp"

#include <cassert>

namespace zena::hub {

bool user_registry::count(stripes& of, std::string_view key, bool up, const interest_fn& interest) {
    auto& s = stripe_of(of, key);
    std::lock_guard lock{s.mutex};
    auto it = s.counts.find(key);
    if (up) {
        if (it != s.counts.end()) {
            ++it->second;
            return false;
        }
        s.counts.emplace(std::string{key}, 1);
    } else {
        assert(it != s.counts.end() && "a removal of what was never added");
        if (it == s.counts.end() || --it->second > 0) return false;
        s.counts.erase(it);
    }
    if (interest) interest(key, up);
    return true;
}

void user_registry::add(std::string_view user) {
    if (count(stripes_, user, true, interest_)) users_.fetch_add(1, std::memory_order_relaxed);
    connections_.fetch_add(1, std::memory_order_relaxed);
}

void user_registry::remove(std::string_view user) {
    if (count(stripes_, user, false, interest_)) users_.fetch_sub(1, std::memory_order_relaxed);
    connections_.fetch_sub(1, std::memory_order_relaxed);
}

void user_registry::add_channel(std::string_view channel) {
    if (count(channel_stripes_, channel, true, channel_interest_)) channels_.fetch_add(1, std::memory_order_relaxed);
}

void user_registry::remove_channel(std::string_view channel) {
    if (count(channel_stripes_, channel, false, channel_interest_)) {
        channels_.fetch_sub(1, std::memory_order_relaxed);
    }
}

std::size_t user_registry::connections_of(std::string_view user) const {
    auto& s = stripe_of(user);
    std::lock_guard lock{s.mutex};
    auto it = s.counts.find(user);
    return it == s.counts.end() ? 0 : it->second;
}

}  // namespace zena::hub
