#include "protocol/channel.hpp"

#include <gtest/gtest.h>

#include <string>

namespace zena::protocol {
namespace {

TEST(Channel, Names_AreAsciiLettersDigitsAndAFewMarks_Of1To255Bytes) {
    for (const auto* ok : {"deal:123", "thread:t-9", "a", "x_y.z@w=v", "A:B:C"})
        EXPECT_TRUE(valid_channel_name(ok)) << ok;
    EXPECT_TRUE(valid_channel_name(std::string(255, 'a')));
    for (const std::string bad : {std::string{}, std::string(256, 'a'), std::string{"a b"}, std::string{"deal/1"},
                                  std::string{"d\xc3\xa9"}, std::string{"a*"}, std::string("a\0b", 3)}) {
        EXPECT_FALSE(valid_channel_name(bad)) << bad;
    }
}

TEST(Channel, UserNamespace_IsNeverSubscribable) {
    EXPECT_FALSE(subscribable_channel("user:alice"));
    EXPECT_TRUE(subscribable_channel("users:alice")) << "only the user: namespace";
    EXPECT_EQ(channel_namespace("deal:1:2"), "deal");
    EXPECT_EQ(channel_namespace("lobby"), "");
}

TEST(Channel, Claims_GrantExactNamesAndTrailingStarPrefixes) {
    const std::vector<std::string> claims{"deal:*", "thread:7"};
    EXPECT_TRUE(claims_grant(claims, "deal:1"));
    EXPECT_TRUE(claims_grant(claims, "deal:"));
    EXPECT_FALSE(claims_grant(claims, "dealer:1")) << "the prefix is 'deal:', not 'deal'";
    EXPECT_TRUE(claims_grant(claims, "thread:7"));
    EXPECT_FALSE(claims_grant(claims, "thread:70"));
    EXPECT_FALSE(claims_grant({"*"}, "user:bob")) << "no claim grants a user: channel";
    EXPECT_TRUE(claims_grant({"*"}, "anything"));
    EXPECT_FALSE(claims_grant({"de*l:1"}, "deal:1")) << "only a trailing * is special";
    EXPECT_FALSE(claims_grant({}, "deal:1"));
    EXPECT_FALSE(claims_grant({"deal:*"}, "deal:a b")) << "not a channel name";
}

TEST(Channel, Positions_AreEpochColonSeq) {
    const auto p = parse_position("k2x9c1aa0:42");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->epoch, "k2x9c1aa0");
    EXPECT_EQ(p->seq, 42U);
    EXPECT_EQ(parse_position("e:0")->seq, 0U);
    EXPECT_EQ(parse_position("e:18446744073709551615")->seq, UINT64_MAX);
    for (const auto* bad : {"", ":1", "e:", "e", "E:1", "e:-1", "e:1x", "e:18446744073709551616", "e:1:2", "e f:1"}) {
        EXPECT_FALSE(parse_position(bad)) << bad;
    }
    EXPECT_FALSE(parse_position(std::string(65, 'a') + ":1"));
}

}  // namespace
}  // namespace zena::protocol
