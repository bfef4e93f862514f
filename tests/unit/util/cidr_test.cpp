#include "util/cidr.hpp"

#include <gtest/gtest.h>

namespace zena::util {
namespace {

cidr_set set_of(std::string_view list) {
    auto set = cidr_set::parse(list);
    EXPECT_TRUE(set) << (set ? "" : set.message());
    return set ? *set : cidr_set{};
}

TEST(CidrSet, Networks_MatchTheirAddressesOnly) {
    const auto set = set_of("10.0.0.0/8, 192.168.1.7, fd00::/8, 172.16.0.0/12");
    EXPECT_TRUE(set.contains("10.255.0.1"));
    EXPECT_FALSE(set.contains("11.0.0.1"));
    EXPECT_TRUE(set.contains("192.168.1.7"));
    EXPECT_FALSE(set.contains("192.168.1.8"));
    EXPECT_TRUE(set.contains("172.31.255.255"));
    EXPECT_FALSE(set.contains("172.32.0.0"));
    EXPECT_TRUE(set.contains("fd12::1"));
    EXPECT_FALSE(set.contains("fe80::1"));
    EXPECT_FALSE(set.contains("not an address"));
    EXPECT_FALSE(set.contains(""));
}

TEST(CidrSet, MappedIpv6_MatchesIpv4Networks) {
    const auto set = set_of("127.0.0.0/8");
    EXPECT_TRUE(set.contains("::ffff:127.0.0.1"));
    EXPECT_FALSE(set.contains("::1"));
}

TEST(CidrSet, ZeroPrefix_MatchesEveryAddressOfItsFamily) {
    const auto set = set_of("0.0.0.0/0");
    EXPECT_TRUE(set.contains("8.8.8.8"));
    EXPECT_FALSE(set.contains("2001:db8::1"));
}

TEST(CidrSet, BadItems_AreNamed) {
    for (const auto* bad :
         {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "example.com", "1.2.3", "10.0.0.0/8,x"}) {
        const auto set = cidr_set::parse(bad);
        EXPECT_FALSE(set) << bad;
    }
    EXPECT_TRUE(cidr_set::parse("")) << "empty: the empty set";
    EXPECT_TRUE(cidr_set::parse("")->empty());
}

TEST(ClientAddress, UntrustedPeer_IsTheClient_WhateverItClaims) {
    const auto trusted = set_of("127.0.0.1");
    EXPECT_EQ(client_address("203.0.113.9", "1.2.3.4", trusted), "203.0.113.9");
    EXPECT_EQ(client_address("203.0.113.9", "1.2.3.4", cidr_set{}), "203.0.113.9");
}

TEST(ClientAddress, TrustedPeer_NamesTheRightMostUntrustedEntry) {
    const auto trusted = set_of("127.0.0.1, 10.0.0.0/8");
    EXPECT_EQ(client_address("127.0.0.1", "198.51.100.7", trusted), "198.51.100.7");
    // A client may send its own X-Forwarded-For; only what trusted hops appended counts.
    EXPECT_EQ(client_address("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.5", trusted), "198.51.100.7");
    EXPECT_EQ(client_address("127.0.0.1", "", trusted), "127.0.0.1");
    EXPECT_EQ(client_address("127.0.0.1", "garbage", trusted), "127.0.0.1") << "not an address: the peer stands";
    EXPECT_EQ(client_address("127.0.0.1", " 2001:db8::5 ", trusted), "2001:db8::5");
}

}  // namespace
}  // namespace zena::util
