#pragma once
// What one network address may take: open connections (limits.max_connections_per_address)
// and WebSocket handshakes per second (limits.handshakes_per_address_per_second, with a burst
// of twice that). IPv6 addresses are counted by their /64, which one host or one customer
// usually holds whole; IPv4 by the address.
//
// Threading: shared by every event-loop thread; lock striping by address. Memory is bounded:
// an address is forgotten as soon as it has no connection and a full handshake bucket, and at
// most `max_tracked` addresses are remembered at once; beyond that, handshakes from addresses
// not yet known are refused (counted by the caller) until some are forgotten.

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/token_bucket.hpp"

namespace zena::net {

struct address_limit_settings {
    std::size_t max_connections_per_address = 1000;  // 0: no limit
    double handshakes_per_second = 50;               // 0: no limit
    std::size_t max_tracked = 1000000;
};

class address_limits {
public:
    enum class verdict : std::uint8_t { ok, too_many_connections, too_many_handshakes, table_full };

    explicit address_limits(address_limit_settings settings)
        : settings_(settings), handshake_rate_(rate_of(settings.handshakes_per_second)) {}

    // The key an address is counted under: the IPv4 address, or the IPv6 /64 prefix. `address`
    // is the textual form (as Asio prints it).
    static std::string key_of(std::string_view address);

    // A handshake from `key`: checks the rate and the open connections; on ok, the connection
    // is counted until release(key).
    verdict admit(const std::string& key, std::int64_t now_ms);
    void release(const std::string& key);

    std::size_t connections_of(const std::string& key) const;

private:
    struct entry {
        std::size_t connections = 0;
        util::token_bucket handshakes;
    };
    static constexpr std::size_t k_stripes = 64;
    struct stripe {
        mutable std::mutex mutex;
        std::unordered_map<std::string, entry> entries;
    };
    stripe& stripe_of(const std::string& key) const { return stripes_[std::hash<std::string>{}(key) % k_stripes]; }

    // Bursts of twice the rate; with no limit (0) the bucket is never asked.
    static util::token_rate rate_of(double per_second) {
        const double rate = per_second > 0 ? per_second : 1;
        return {rate, rate * 2};
    }

    address_limit_settings settings_;
    util::token_rate handshake_rate_;
    mutable std::array<stripe, k_stripes> stripes_;
};

std::string_view to_string(address_limits::verdict v);

}  // namespace zena::net
