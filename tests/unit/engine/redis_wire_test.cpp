#include <gtest/gtest.h>

#include <set>
#include <string>

#include "engine/redis/redis_engine.hpp"
#include "engine/redis/wire.hpp"

namespace zena::engine {
namespace {

wire::body sample() {
    wire::body b;
    b.ordered = true;
    b.delivery = ws::delivery_class::latest;
    b.latest_key = 0xFEDCBA9876543210ULL;
    b.origin = "node-a";
    b.token = 300;
    b.index = 2;
    b.except_user = "alice";
    b.except_connection = 77;
    b.type = "sync.progress";
    b.payload = R"({"accountId":"a1"})";
    return b;
}

TEST(RedisWire, BodyRoundTrips) {
    const auto b = sample();
    const auto back = wire::decode_body(wire::encode(b));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ordered, true);
    EXPECT_EQ(back->everyone, false);
    EXPECT_EQ(back->delivery, ws::delivery_class::latest);
    EXPECT_EQ(back->latest_key, b.latest_key);
    EXPECT_EQ(back->origin, "node-a");
    EXPECT_EQ(back->token, 300U);
    EXPECT_EQ(back->index, 2U);
    EXPECT_EQ(back->except_user, "alice");
    EXPECT_EQ(back->except_connection, 77U);
    EXPECT_EQ(back->type, b.type);
    EXPECT_EQ(back->payload, b.payload);
}

TEST(RedisWire, MessageCarriesItsPositionOrNone) {
    const auto body = wire::encode(sample());
    auto stored = wire::decode_message("42 k2x9c1aa0abc\n" + body);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->seq, 42U);
    EXPECT_EQ(stored->epoch, "k2x9c1aa0abc");
    auto unstored = wire::decode_message(std::string{wire::k_unstored_header} + body);
    ASSERT_TRUE(unstored);
    EXPECT_EQ(unstored->seq, 0U);
    EXPECT_TRUE(unstored->epoch.empty());
}

TEST(RedisWire, RefusesWhatIsNotOneWholeMessage) {
    const auto body = wire::encode(sample());
    EXPECT_FALSE(wire::decode_body(body.substr(0, body.size() - 1))) << "cut short";
    EXPECT_FALSE(wire::decode_body(body + "x")) << "trailing bytes";
    EXPECT_FALSE(wire::decode_body("\x02" + body.substr(1))) << "unknown version";
    EXPECT_FALSE(wire::decode_message("1 \n" + body)) << "a seq needs an epoch";
    EXPECT_FALSE(wire::decode_message("0 e\n" + body)) << "an epoch needs a seq";
    EXPECT_FALSE(wire::decode_message("x e\n" + body));
    EXPECT_FALSE(wire::decode_message(body));
    std::string huge_length = body.substr(0, 3) + std::string(11, '\xff');
    EXPECT_FALSE(wire::decode_body(huge_length)) << "a varint longer than 64 bits";
}

TEST(RedisShards, StableAndSpread) {
    EXPECT_EQ(redis_engine::shard_of("user:alice", 1), 0U);
    std::set<std::size_t> used;
    for (int i = 0; i < 200; ++i) {
        const auto channel = "deal:" + std::to_string(i);
        const auto s = redis_engine::shard_of(channel, 4);
        EXPECT_LT(s, 4U);
        EXPECT_EQ(s, redis_engine::shard_of(channel, 4)) << "stable";
        used.insert(s);
        // Growing from 4 to 5 shards moves a channel only to the new one.
        const auto grown = redis_engine::shard_of(channel, 5);
        EXPECT_TRUE(grown == s || grown == 4U);
    }
    EXPECT_EQ(used.size(), 4U);
}

}  // namespace
}  // namespace zena::engine
