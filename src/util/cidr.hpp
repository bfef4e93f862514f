#pragma once
// Sets of IP networks written as "10.0.0.0/8, 127.0.0.1, ::1, fd00::/8" (an address alone is
// its own /32 or /128), for server.trusted_proxies: which peers may speak for a client with
// X-Forwarded-For. Parsed with inet_pton, free of Asio, so it is unit-tested directly.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
// peer) match the IPv4 networks.
//
// Threading: a value type; contains() is const and safe from any thread.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace zena::util {

class cidr_set {
public:
    // Parses a comma-separated list; empty text is the empty set. An error names the bad item.
    static result<cidr_set> parse(std::string_view list);

    bool empty() const { return networks_.empty(); }
    // True when the textual address `address` lies in one of the networks; false for anything
    // that is not an IP address.
    bool contains(std::string_view address) const;

private:
    struct network {
        std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4
        bool v6 = false;
        int prefix = 0;  // bits
    };
    std::vector<network> networks_;
};

// The client address a request from `peer` stands for: the right-most X-Forwarded-For entry
// not itself a trusted proxy, when `peer` is trusted and sent the header (`forwarded_for`, all
// its values joined by ", "); otherwise `peer`. An entry that is not an IP address stops the
// walk: the last address reached stands. At most 32 entries are looked at.
std::string client_address(std::string_view peer, std::string_view forwarded_for, const cidr_set& trusted);

}  // namespace zena::util
