// util/allocator in the unit tests' binary, which runs on glibc's malloc (jemalloc is linked into
// the server binary only; tests/e2e/allocator.test.mjs checks that one).
#include "util/allocator.hpp"

#include <gtest/gtest.h>

namespace zena::util {
namespace {

TEST(Allocator, WithoutJemalloc_IsGlibc_WithNoBackgroundThread) {
    start_allocator_background_thread();  // nothing to start under glibc
    const auto info = allocator_in_use();
    EXPECT_EQ(info.name, "glibc");
    EXPECT_EQ(info.version, "");
    EXPECT_FALSE(info.background_thread);
}

TEST(Allocator, AllocationBytes_UnderGlibc_RoundUpToItsGranule) {
    EXPECT_EQ(allocation_bytes(0), 0U);
    EXPECT_EQ(allocation_bytes(1), 16U);
    EXPECT_EQ(allocation_bytes(16), 16U);
    EXPECT_EQ(allocation_bytes(17), 32U);
    EXPECT_EQ(allocation_bytes(1100), 1104U);
}

}  // namespace
}  // namespace zena::util
