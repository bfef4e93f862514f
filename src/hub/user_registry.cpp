#include "hub/user_registry.hpp"

#include <cassert>

namespace zena::hub {

void user_registry::add(std::string_view user) {
    auto& s = stripe_of(user);
    std::lock_guard lock{s.mutex};
    auto it = s.counts.find(user);
    if (it == s.counts.end()) {
        s.counts.emplace(std::string{user}, 1);
        users_.fetch_add(1, std::memory_order_relaxed);
        if (interest_) interest_(user, true);
    } else {
        ++it->second;
    }
    connections_.fetch_add(1, std::memory_order_relaxed);
}

void user_registry::remove(std::string_view user) {
    auto& s = stripe_of(user);
    std::lock_guard lock{s.mutex};
    auto it = s.counts.find(user);
    assert(it != s.counts.end() && "remove of a user that was never added");
    if (it == s.counts.end()) return;
    if (--it->second == 0) {
        s.counts.erase(it);
        users_.fetch_sub(1, std::memory_order_relaxed);
        if (interest_) interest_(user, false);
    }
    connections_.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t user_registry::connections_of(std::string_view user) const {
    auto& s = stripe_of(user);
    std::lock_guard lock{s.mutex};
    auto it = s.counts.find(user);
    return it == s.counts.end() ? 0 : it->second;
}

}  // namespace zena::hub
