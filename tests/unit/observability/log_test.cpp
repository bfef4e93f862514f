#include "observability/log.hpp"

#include <gtest/gtest.h>

namespace zena::observability {
namespace {

TEST(LogLimiter, AllowsABurstThenCountsTheRest) {
    log_limiter limiter{5};
    int allowed = 0;
    for (int i = 0; i < 100; ++i) allowed += limiter.allow(1000) ? 1 : 0;
    EXPECT_EQ(allowed, 5);
    EXPECT_EQ(limiter.take_suppressed(), 95U);
    EXPECT_EQ(limiter.take_suppressed(), 0U);
}

TEST(LogLimiter, RefillsWithTime) {
    log_limiter limiter{2};
    EXPECT_TRUE(limiter.allow(0));
    EXPECT_TRUE(limiter.allow(0));
    EXPECT_FALSE(limiter.allow(0));
    EXPECT_TRUE(limiter.allow(500));  // one token back after half a second
    EXPECT_FALSE(limiter.allow(500));
    EXPECT_TRUE(limiter.allow(10'000));
}

TEST(LogLimiter, ZeroRate_LogsNothing) {
    log_limiter limiter{0};
    EXPECT_FALSE(limiter.allow(0));
    EXPECT_FALSE(limiter.allow(100000));
}

}  // namespace
}  // namespace zena::observability
