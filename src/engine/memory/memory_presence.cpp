#include "engine/memory/memory_presence.hpp"

#include <algorithm>
#include <utility>

namespace zena::engine {
namespace {

std::int64_t steady_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

memory_presence::memory_presence(std::function<std::int64_t()> now_ms) : now_ms_(std::move(now_ms)) {
    if (!now_ms_) now_ms_ = steady_now_ms;
}

memory_presence::stripe& memory_presence::stripe_of(std::string_view channel) {
    return stripes_[string_hash{}(channel) % k_stripes];
}

void memory_presence::join(std::string_view channel, std::string_view client, std::string_view user,
                           std::chrono::milliseconds ttl, membership_done done) {
    auto& s = stripe_of(channel);
    bool arrived = false;
    {
        const std::lock_guard lock(s.mutex);
        const auto now = now_ms_();
        auto found = s.channels.find(channel);
        if (found == s.channels.end()) found = s.channels.emplace(std::string(channel), channel_state{}).first;
        auto& ch = found->second;
        if (now >= ch.earliest_expiry_ms) sweep_channel(ch, now);

        // Expired entries are gone by now (the sweep above runs once the earliest has passed),
        // and a user is erased with its last entry: a user not found has no live client here.
        auto u = ch.users.find(user);
        if (u == ch.users.end()) {
            u = ch.users.emplace(std::string(user), 0).first;
            arrived = true;
        }
        const auto expires = now + ttl.count();
        auto c = ch.clients.find(client);
        if (c == ch.clients.end()) {
            ch.clients.emplace(std::string(client), client_entry{&u->first, expires});
            ++u->second;
        } else {
            if (c->second.user != &u->first) {  // the same client, now of another user
                const auto old = ch.users.find(*c->second.user);
                if (--old->second == 0) ch.users.erase(old);
                c->second.user = &u->first;
                ++u->second;
            }
            c->second.expires_ms = expires;
        }
        ch.earliest_expiry_ms = std::min(ch.earliest_expiry_ms, expires);
    }
    done(arrived);
}

memory_presence::string_map<memory_presence::channel_state>::iterator memory_presence::find_live(
    stripe& s, std::string_view channel) {
    const auto found = s.channels.find(channel);
    if (found == s.channels.end()) return found;
    auto& ch = found->second;
    const auto now = now_ms_();
    if (now >= ch.earliest_expiry_ms) sweep_channel(ch, now);
    return found;
}

void memory_presence::leave(std::string_view channel, std::string_view client, membership_done done) {
    auto& s = stripe_of(channel);
    bool departed = false;
    {
        const std::lock_guard lock(s.mutex);
        const auto found = find_live(s, channel);
        if (found != s.channels.end()) {
            auto& ch = found->second;
            const auto c = ch.clients.find(client);
            if (c != ch.clients.end()) departed = remove_entry(ch, c);
            if (ch.clients.empty()) s.channels.erase(found);
        }
    }
    done(departed);
}

void memory_presence::users(std::string_view channel, count_done done) {
    auto& s = stripe_of(channel);
    std::size_t count = 0;
    {
        const std::lock_guard lock(s.mutex);
        const auto found = find_live(s, channel);
        if (found != s.channels.end()) count = found->second.users.size();
    }
    done(count);
}

void memory_presence::query(std::string_view channel, query_done done) {
    auto& s = stripe_of(channel);
    presence_state state;
    {
        const std::lock_guard lock(s.mutex);
        const auto found = find_live(s, channel);
        if (found != s.channels.end()) {
            auto& ch = found->second;
            for (const auto& [user, clients] : ch.users) state.users.emplace(user, clients);
            state.clients = ch.clients.size();
            if (ch.clients.empty()) s.channels.erase(found);
        }
    }
    done(std::move(state));
}

std::size_t memory_presence::sweep() {
    std::size_t removed = 0;
    for (auto& s : stripes_) {
        const std::lock_guard lock(s.mutex);
        const auto now = now_ms_();
        for (auto it = s.channels.begin(); it != s.channels.end();) {
            auto& ch = it->second;
            if (now >= ch.earliest_expiry_ms) removed += sweep_channel(ch, now);
            it = ch.clients.empty() ? s.channels.erase(it) : std::next(it);
        }
    }
    return removed;
}

std::size_t memory_presence::entries() const {
    std::size_t n = 0;
    for (const auto& s : stripes_) {
        const std::lock_guard lock(s.mutex);
        for (const auto& [name, ch] : s.channels) n += ch.clients.size();
    }
    return n;
}

std::size_t memory_presence::sweep_channel(channel_state& ch, std::int64_t now) {
    std::size_t removed = 0;
    auto earliest = std::numeric_limits<std::int64_t>::max();
    for (auto it = ch.clients.begin(); it != ch.clients.end();) {
        if (now >= it->second.expires_ms) {
            auto gone = it++;
            remove_entry(ch, gone);
            ++removed;
        } else {
            earliest = std::min(earliest, it->second.expires_ms);
            ++it;
        }
    }
    ch.earliest_expiry_ms = earliest;
    return removed;
}

bool memory_presence::remove_entry(channel_state& ch, string_map<client_entry>::iterator it) {
    // The entry points to its user's key: find the user before the entry goes.
    const auto user = ch.users.find(*it->second.user);
    ch.clients.erase(it);
    if (--user->second != 0) return false;
    ch.users.erase(user);
    return true;
}

}  // namespace zena::engine
