#include "net/address_limits.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <iterator>

namespace zena::net {

std::string address_limits::key_of(std::string_view address) {
    std::string text{address};
    in6_addr v6{};
    if (text.find(':') != std::string::npos && inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
        // An IPv4-mapped address (::ffff:a.b.c.d) is its IPv4 address.
        static constexpr unsigned char k_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(v6.s6_addr, k_mapped, sizeof k_mapped) == 0) {
            char out[INET_ADDRSTRLEN];
            if (inet_ntop(AF_INET, v6.s6_addr + 12, out, sizeof out)) return out;
        }
        std::memset(v6.s6_addr + 8, 0, 8);
        char out[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &v6, out, sizeof out)) return std::string{out} + "/64";
    }
    return text;
}

address_limits::verdict address_limits::admit(const std::string& key, std::int64_t now_ms) {
    auto& s = stripe_of(key);
    const std::lock_guard lock{s.mutex};
    auto it = s.entries.find(key);
    if (it == s.entries.end()) {
        if (s.entries.size() >= settings_.max_tracked / k_stripes + 1) {
            // Forget the addresses that hold nothing before refusing a new one.
            for (auto e = s.entries.begin(); e != s.entries.end();) {
                const bool idle = e->second.connections == 0 && e->second.handshakes.full(handshake_rate_, now_ms);
                e = idle ? s.entries.erase(e) : std::next(e);
            }
            if (s.entries.size() >= settings_.max_tracked / k_stripes + 1) return verdict::table_full;
        }
        it = s.entries.emplace(key, entry{0, util::token_bucket{handshake_rate_}}).first;
    }
    auto& e = it->second;
    if (settings_.handshakes_per_second > 0 && !e.handshakes.take(handshake_rate_, now_ms))
        return verdict::too_many_handshakes;
    if (settings_.max_connections_per_address > 0 && e.connections >= settings_.max_connections_per_address) {
        return verdict::too_many_connections;
    }
    ++e.connections;
    return verdict::ok;
}

void address_limits::release(const std::string& key) {
    auto& s = stripe_of(key);
    const std::lock_guard lock{s.mutex};
    auto it = s.entries.find(key);
    if (it == s.entries.end() || it->second.connections == 0) return;
    --it->second.connections;
}

std::size_t address_limits::connections_of(const std::string& key) const {
    auto& s = stripe_of(key);
    const std::lock_guard lock{s.mutex};
    auto it = s.entries.find(key);
    return it == s.entries.end() ? 0 : it->second.connections;
}

std::string_view to_string(address_limits::verdict v) {
    switch (v) {
        case address_limits::verdict::ok: return "ok";
        case address_limits::verdict::too_many_connections: return "too many connections from this address";
        case address_limits::verdict::too_many_handshakes: return "too many handshakes from this address";
        case address_limits::verdict::table_full: return "too many addresses tracked";
    }
    return "unknown";
}

}  // namespace zena::net
