#pragma once
// How many CPUs this process may use: its affinity mask (sched_getaffinity) and the cgroup v2 CPU
// quota (cpu.max) of its cgroup and of every ancestor, since a parent's limit applies to its
// children too. The smallest wins, a quota rounded up, at least 1. The parsing and the arithmetic
// are pure functions of text, unit-tested; only `usable_cpus` reads the system. (cgroup v1's
// cpu.cfs_quota_us is not read.)

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zena::util {

// A cgroup v2 cpu.max limit: `quota_us` of CPU time every `period_us`, both positive.
struct cpu_quota {
    std::int64_t quota_us = 0;
    std::int64_t period_us = 0;
};

// cpu.max's text, "<quota> <period>" (a trailing newline allowed): the limit. nullopt for
// "max <period>" (no limit) and for anything malformed, which limits nothing either.
std::optional<cpu_quota> parse_cpu_max(std::string_view text);

// The CPUs a quota allows, rounded up, at least 1: 150000/100000 -> 2, 1000/100000 -> 1.
std::int64_t cpus_of(cpu_quota quota);

// The cgroup v2 path in /proc/self/cgroup's text, from its line "0::<path>"; nullopt when there
// is none (a cgroup v1 only system).
std::optional<std::string> parse_cgroup_v2_path(std::string_view proc_self_cgroup);

// A cgroup path and its ancestors, itself first: "/a/b" -> {"/a/b", "/a", "/"}; "/" -> {"/"}.
std::vector<std::string> cgroup_ancestry(std::string_view path);

// The tightest cpu.max on a cgroup's path to the root, and the cgroup that sets it.
struct cgroup_limit {
    std::string cgroup;
    cpu_quota quota;
    std::int64_t cpus = 1;  // cpus_of(quota)
};

// The cpu.max text of a cgroup (a path such as "/a/b"), or nullopt when it has none.
using cpu_max_reader = std::function<std::optional<std::string>(const std::string& cgroup)>;

// The limit that allows the fewest CPUs among `cgroup` and its ancestors (the nearest one on a
// tie); nullopt when none of them has a limit.
std::optional<cgroup_limit> tightest_cgroup_limit(std::string_view cgroup, const cpu_max_reader& read);

// What the process may use, and why (for the start log).
struct cpu_budget {
    std::size_t cpus = 1;  // at least 1
    std::string reason;    // "affinity 1 of 2 CPUs" or "cgroup cpu.max 150000/100000 -> 2"
};

// The budget from the CPUs in the affinity mask, the CPUs online, and the cgroup limit if any.
// The cgroup's reason is given when its limit is at most the affinity's.
cpu_budget decide_cpu_budget(std::size_t affinity, std::size_t online, const std::optional<cgroup_limit>& limit);

// Reads the system: sched_getaffinity, the CPUs online, /proc/self/cgroup, and
// <cgroup_root><path>/cpu.max up to the root. An empty `cgroup_root` reads no cgroup limit.
cpu_budget usable_cpus(const std::string& cgroup_root);

}  // namespace zena::util
