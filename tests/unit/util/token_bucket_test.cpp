#include "util/token_bucket.hpp"

#include <gtest/gtest.h>

namespace zena::util {
namespace {

TEST(TokenBucket, BurstThenRate) {
    const token_rate r{10, 5};
    token_bucket b{r};
    int taken = 0;
    for (int i = 0; i < 20; ++i) taken += b.take(r, 1000) ? 1 : 0;
    EXPECT_EQ(taken, 5) << "the burst";
    EXPECT_FALSE(b.take(r, 1050)) << "half a token after 50 ms";
    EXPECT_TRUE(b.take(r, 1100)) << "one token after 100 ms at 10/s";
    EXPECT_FALSE(b.take(r, 1100));
    EXPECT_FALSE(b.full(r, 1100));
    EXPECT_TRUE(b.full(r, 2000)) << "refilled, never past the burst";
    int after = 0;
    for (int i = 0; i < 20; ++i) after += b.take(r, 5000) ? 1 : 0;
    EXPECT_EQ(after, 5);
}

TEST(TokenBucket, ClockGoingBack_GivesNothingExtra) {
    const token_rate r{1, 1};
    token_bucket b{r};
    EXPECT_TRUE(b.take(r, 10000));
    EXPECT_FALSE(b.take(r, 5000));
    EXPECT_FALSE(b.take(r, 10500));
    EXPECT_TRUE(b.take(r, 11000));
}

}  // namespace
}  // namespace zena::util
