#include "net/address_limits.hpp"

#include <gtest/gtest.h>

namespace zena::net {
namespace {

using verdict = address_limits::verdict;

TEST(AddressLimits, Keys_IPv4AsIs_IPv6ByPrefix_MappedAsIPv4) {
    EXPECT_EQ(address_limits::key_of("203.0.113.7"), "203.0.113.7");
    EXPECT_EQ(address_limits::key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    EXPECT_EQ(address_limits::key_of("2001:db8:1:2::1"), address_limits::key_of("2001:db8:1:2:ffff::9"));
    EXPECT_EQ(address_limits::key_of("::ffff:198.51.100.4"), "198.51.100.4");
}

TEST(AddressLimits, ConnectionsPerAddress_AreCountedAndReleased) {
    address_limits limits{{2, 1000, 1000}};
    EXPECT_EQ(limits.admit("a", 0), verdict::ok);
    EXPECT_EQ(limits.admit("a", 0), verdict::ok);
    EXPECT_EQ(limits.admit("a", 0), verdict::too_many_connections);
    EXPECT_EQ(limits.admit("b", 0), verdict::ok) << "another address";
    limits.release("a");
    EXPECT_EQ(limits.connections_of("a"), 1U);
    EXPECT_EQ(limits.admit("a", 0), verdict::ok);
}

TEST(AddressLimits, HandshakeRate_BurstsTwiceTheRateThenRefills) {
    address_limits limits{{1000, 5, 1000}};
    int ok = 0;
    for (int i = 0; i < 20; ++i) ok += limits.admit("a", 1000) == verdict::ok ? 1 : 0;
    EXPECT_EQ(ok, 10);
    EXPECT_EQ(limits.admit("a", 1000), verdict::too_many_handshakes);
    EXPECT_EQ(limits.admit("a", 1200), verdict::ok) << "one more after 200 ms at 5/s";
}

TEST(AddressLimits, TableFull_ForgetsIdleAddressesBeforeRefusing) {
    address_limits limits{{10, 100, 64}};  // one entry per stripe
    // Fill one stripe: find two keys that share a stripe by trying; idle ones are forgotten.
    int refused = 0;
    for (int i = 0; i < 1000; ++i) {
        const auto key = "k" + std::to_string(i);
        const auto v = limits.admit(key, 0);
        if (v == verdict::table_full) ++refused;
    }
    EXPECT_GT(refused, 0) << "held connections keep their entries: new addresses are refused";
    // Every held connection released and buckets refilled: the table makes room again.
    for (int i = 0; i < 1000; ++i) limits.release("k" + std::to_string(i));
    EXPECT_EQ(limits.admit("fresh", 10000), verdict::ok);
}

}  // namespace
}  // namespace zena::net
