#include "engine/memory/publish_memo.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

namespace zena::engine {
namespace {

class PublishMemo : public ::testing::Test {
protected:
    std::shared_ptr<std::int64_t> clock = std::make_shared<std::int64_t>(1000);
    publish_memo make(std::size_t max_keys = 100) {
        return publish_memo{publish_memo_options{
            .window = std::chrono::milliseconds(500), .max_keys = max_keys, .now_ms = [c = clock] { return *c; }}};
    }
};

TEST_F(PublishMemo, AKeyIsClaimedOncePerScope_TheSecondClaimGetsTheSettledPosition) {
    auto memo = make();
    std::uint64_t claim = 0;
    EXPECT_FALSE(memo.claim("user:a", "k1", &claim)) << "first: claimed";
    const auto pending = memo.claim("user:a", "k1");
    ASSERT_TRUE(pending);
    EXPECT_FALSE(pending->at) << "not settled yet: no position";
    memo.settle("user:a", "k1", claim, position{"e1", 7});
    const auto settled = memo.claim("user:a", "k1");
    ASSERT_TRUE(settled && settled->at);
    EXPECT_EQ(*settled->at, (position{"e1", 7}));
    EXPECT_FALSE(memo.claim("user:b", "k1")) << "another channel: its own record";
    EXPECT_FALSE(memo.claim("user:a", "k2")) << "another key";
    EXPECT_FALSE(memo.claim("user:a\nk", "1")) << "scope and key do not run together";
}

TEST_F(PublishMemo, ARecordGoesAfterTheWindow_AndAForgottenClaimCanBeClaimedAgain) {
    auto memo = make();
    EXPECT_FALSE(memo.claim("c", "k"));
    *clock += 499;
    EXPECT_TRUE(memo.claim("c", "k")) << "within the window";
    *clock += 1;
    std::uint64_t claim = 0;
    EXPECT_FALSE(memo.claim("c", "k", &claim)) << "past it: claimed anew";
    memo.forget("c", "k", claim);
    *clock += 100;
    EXPECT_FALSE(memo.claim("c", "k")) << "a failed publish's claim is forgotten";
    *clock += 450;  // past the forgotten claim's window, within the new one's
    EXPECT_TRUE(memo.claim("c", "k")) << "the new claim's window, not the forgotten one's";
    EXPECT_EQ(memo.evicted(), 0U);
}

TEST_F(PublishMemo, AClaimThatWent_IsNeitherSettledNorForgotten_OverANewerOne) {
    auto memo = make(1);
    std::uint64_t old_claim = 0;
    EXPECT_FALSE(memo.claim("c", "k", &old_claim));
    EXPECT_FALSE(memo.claim("c", "other")) << "past max_keys: the first claim goes";
    std::uint64_t new_claim = 0;
    EXPECT_FALSE(memo.claim("c", "k", &new_claim)) << "claimed again";
    memo.settle("c", "k", old_claim, position{"old", 1});
    memo.forget("c", "k", old_claim);
    const auto record = memo.claim("c", "k");
    ASSERT_TRUE(record) << "the old claim's failure forgot the new one";
    EXPECT_FALSE(record->at) << "the old claim's position went to the new one";
    memo.settle("c", "k", new_claim, position{"new", 2});
    EXPECT_EQ(*memo.claim("c", "k")->at, (position{"new", 2}));
}

TEST_F(PublishMemo, PastMaxKeysTheOldestGoFirst_Counted) {
    auto memo = make(3);
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(memo.claim("c", std::to_string(i)));
    EXPECT_EQ(memo.size(), 3U);
    EXPECT_EQ(memo.evicted(), 2U);
    EXPECT_FALSE(memo.claim("c", "0")) << "the oldest went";
    EXPECT_TRUE(memo.claim("c", "4")) << "the newest stays";
}

}  // namespace
}  // namespace zena::engine
