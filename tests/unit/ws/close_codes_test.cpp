#include "ws/close_codes.hpp"

#include <gtest/gtest.h>

#include <set>

namespace zena::ws {
namespace {

TEST(CloseCodes, Table_IsAscendingUniqueAndComplete) {
    std::set<std::string_view> names;
    unsigned previous = 0;
    for (const auto& info : close_codes()) {
        EXPECT_GT(static_cast<unsigned>(info.code), previous);
        previous = static_cast<unsigned>(info.code);
        EXPECT_TRUE(names.insert(info.name).second);
        EXPECT_FALSE(info.meaning.empty());
        EXPECT_EQ(&describe(info.code), &info);
    }
}

TEST(CloseCodes, SeedCodes_HaveTheirMeaning) {
    EXPECT_EQ(static_cast<int>(close_code::policy_violation), 1008);
    EXPECT_EQ(static_cast<int>(close_code::going_away), 1001);
    EXPECT_FALSE(describe(close_code::policy_violation).reconnect);
    EXPECT_TRUE(describe(close_code::going_away).reconnect);
}

}  // namespace
}  // namespace zena::ws
