#include "util/token_bucket.hpp"

#include <gtest/gtest.h>

namespace zena::util {
namespace {

TEST(TokenBucket, BurstThenRate) {
    token_bucket b{10, 5};
    int taken = 0;
    for (int i = 0; i < 20; ++i) taken += b.take(1000) ? 1 : 0;
    EXPECT_EQ(taken, 5) << "the burst";
    EXPECT_FALSE(b.take(1050)) << "half a token after 50 ms";
    EXPECT_TRUE(b.take(1100)) << "one token after 100 ms at 10/s";
    EXPECT_FALSE(b.take(1100));
    EXPECT_FALSE(b.full(1100));
    EXPECT_TRUE(b.full(2000)) << "refilled, never past the burst";
    int after = 0;
    for (int i = 0; i < 20; ++i) after += b.take(5000) ? 1 : 0;
    EXPECT_EQ(after, 5);
}

TEST(TokenBucket, ClockGoingBack_GivesNothingExtra) {
    token_bucket b{1, 1};
    EXPECT_TRUE(b.take(10000));
    EXPECT_FALSE(b.take(5000));
    EXPECT_FALSE(b.take(10500));
    EXPECT_TRUE(b.take(11000));
}

}  // namespace
}  // namespace zena::util
