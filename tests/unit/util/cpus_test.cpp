#include "util/cpus.hpp"

#include <map>

#include <gtest/gtest.h>

namespace zena::util {
namespace {

TEST(Cpus, ParseCpuMax_ReadsQuotaAndPeriod) {
    const auto q = parse_cpu_max("150000 100000\n");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->quota_us, 150000);
    EXPECT_EQ(q->period_us, 100000);
    EXPECT_TRUE(parse_cpu_max("50000 100000"));
}

TEST(Cpus, ParseCpuMax_MaxIsNoLimit) {
    EXPECT_FALSE(parse_cpu_max("max 100000\n"));
    EXPECT_FALSE(parse_cpu_max("max"));
}

TEST(Cpus, ParseCpuMax_RefusesMalformedText) {
    EXPECT_FALSE(parse_cpu_max(""));
    EXPECT_FALSE(parse_cpu_max("150000"));
    EXPECT_FALSE(parse_cpu_max("150000 0"));
    EXPECT_FALSE(parse_cpu_max("0 100000"));
    EXPECT_FALSE(parse_cpu_max("-5 100000"));
    EXPECT_FALSE(parse_cpu_max("15x 100000"));
    EXPECT_FALSE(parse_cpu_max("150000 100000 7"));
}

TEST(Cpus, CpusOf_RoundsUpAndIsAtLeastOne) {
    EXPECT_EQ(cpus_of({.quota_us = 150000, .period_us = 100000}), 2);
    EXPECT_EQ(cpus_of({.quota_us = 200000, .period_us = 100000}), 2);
    EXPECT_EQ(cpus_of({.quota_us = 200001, .period_us = 100000}), 3);
    EXPECT_EQ(cpus_of({.quota_us = 100000, .period_us = 100000}), 1);
    EXPECT_EQ(cpus_of({.quota_us = 1000, .period_us = 100000}), 1);
    EXPECT_EQ(cpus_of({.quota_us = 0, .period_us = 100000}), 1);
}

TEST(Cpus, ParseCgroupV2Path_FindsTheUnifiedLine) {
    EXPECT_EQ(parse_cgroup_v2_path("0::/system.slice/zena.service\n"), "/system.slice/zena.service");
    EXPECT_EQ(parse_cgroup_v2_path("0::/\n"), "/");
    // A hybrid system: the v1 controllers' lines first, the unified one last.
    EXPECT_EQ(parse_cgroup_v2_path("4:memory:/docker/abc\n1:cpu:/docker/abc\n0::/docker/abc\n"), "/docker/abc");
    EXPECT_EQ(parse_cgroup_v2_path("0::/test.slice"), "/test.slice");
}

TEST(Cpus, ParseCgroupV2Path_NoneOnCgroupV1Only) {
    EXPECT_FALSE(parse_cgroup_v2_path("4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n"));
    EXPECT_FALSE(parse_cgroup_v2_path(""));
    EXPECT_FALSE(parse_cgroup_v2_path("10::/x\n"));  // hierarchy 10, not the unified 0
}

TEST(Cpus, CgroupAncestry_ListsThePathUpToTheRoot) {
    using list = std::vector<std::string>;
    EXPECT_EQ(cgroup_ancestry("/a/b/c"), (list{"/a/b/c", "/a/b", "/a", "/"}));
    EXPECT_EQ(cgroup_ancestry("/a/"), (list{"/a", "/"}));
    EXPECT_EQ(cgroup_ancestry("/"), (list{"/"}));
    EXPECT_EQ(cgroup_ancestry(""), (list{"/"}));
}

cpu_max_reader reader_of(std::map<std::string, std::string> files) {
    return [files = std::move(files)](const std::string& cgroup) -> std::optional<std::string> {
        const auto it = files.find(cgroup);
        if (it == files.end()) return std::nullopt;
        return it->second;
    };
}

TEST(Cpus, TightestCgroupLimit_TakesTheSmallestOnThePath) {
    // The parent's 1.5 CPUs bind the child's 4 (a parent's limit applies to its children).
    const auto limit = tightest_cgroup_limit("/kubepods/pod1/c1", reader_of({{"/kubepods/pod1/c1", "400000 100000\n"},
                                                                             {"/kubepods/pod1", "150000 100000\n"},
                                                                             {"/kubepods", "max 100000\n"}}));
    ASSERT_TRUE(limit);
    EXPECT_EQ(limit->cgroup, "/kubepods/pod1");
    EXPECT_EQ(limit->cpus, 2);
    EXPECT_EQ(limit->quota.quota_us, 150000);
}

TEST(Cpus, TightestCgroupLimit_NearestOnATie) {
    const auto limit = tightest_cgroup_limit("/a/b", reader_of({{"/a/b", "100000 100000\n"}, {"/a", "50000 50000\n"}}));
    ASSERT_TRUE(limit);
    EXPECT_EQ(limit->cgroup, "/a/b");
}

TEST(Cpus, TightestCgroupLimit_NoneWhenNothingLimits) {
    EXPECT_FALSE(tightest_cgroup_limit("/a/b", reader_of({{"/a/b", "max 100000\n"}, {"/a", "garbage"}})));
    EXPECT_FALSE(tightest_cgroup_limit("/a/b", reader_of({})));
}

TEST(Cpus, TightestCgroupLimit_ReadsTheRootToo) {
    // In a container with its own cgroup namespace, /proc/self/cgroup says "0::/" and the limit
    // is on the mount's root.
    const auto limit = tightest_cgroup_limit("/", reader_of({{"/", "250000 100000"}}));
    ASSERT_TRUE(limit);
    EXPECT_EQ(limit->cpus, 3);
}

TEST(Cpus, DecideCpuBudget_AffinityWhenNoQuota) {
    const auto budget = decide_cpu_budget(1, 2, std::nullopt);
    EXPECT_EQ(budget.cpus, 1U);
    EXPECT_EQ(budget.reason, "affinity 1 of 2 CPUs");
}

TEST(Cpus, DecideCpuBudget_QuotaWhenItAllowsFewer) {
    const auto budget = decide_cpu_budget(
        64, 64, cgroup_limit{.cgroup = "/pod", .quota = {.quota_us = 150000, .period_us = 100000}, .cpus = 2});
    EXPECT_EQ(budget.cpus, 2U);
    EXPECT_EQ(budget.reason, "cgroup cpu.max 150000/100000 -> 2");
}

TEST(Cpus, DecideCpuBudget_QuotaOnATie) {
    const auto budget = decide_cpu_budget(
        2, 4, cgroup_limit{.cgroup = "/", .quota = {.quota_us = 200000, .period_us = 100000}, .cpus = 2});
    EXPECT_EQ(budget.cpus, 2U);
    EXPECT_EQ(budget.reason, "cgroup cpu.max 200000/100000 -> 2");
}

TEST(Cpus, DecideCpuBudget_AffinityWhenItAllowsFewer) {
    const auto budget = decide_cpu_budget(
        1, 8, cgroup_limit{.cgroup = "/", .quota = {.quota_us = 400000, .period_us = 100000}, .cpus = 4});
    EXPECT_EQ(budget.cpus, 1U);
    EXPECT_EQ(budget.reason, "affinity 1 of 8 CPUs");
}

TEST(Cpus, DecideCpuBudget_AtLeastOneWhenNothingIsKnown) {
    const auto budget = decide_cpu_budget(0, 0, std::nullopt);
    EXPECT_EQ(budget.cpus, 1U);
}

TEST(Cpus, UsableCpus_ReadsTheAffinityWithoutACgroupRoot) {
    const auto budget = usable_cpus("/nonexistent-cgroup-root");
    EXPECT_GE(budget.cpus, 1U);
    EXPECT_TRUE(budget.reason.starts_with("affinity ")) << budget.reason;
}

}  // namespace
}  // namespace zena::util
