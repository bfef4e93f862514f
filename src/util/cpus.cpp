#include "util/cpus.hpp"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <iterator>
#include <memory>

namespace zena::util {
namespace {

constexpr std::string_view k_blanks = " \t\r\n";

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(k_blanks);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(k_blanks) - first + 1);
}

// A whole positive decimal number, or nullopt.
std::optional<std::int64_t> positive(std::string_view text) {
    std::int64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || value <= 0) return std::nullopt;
    return value;
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) return std::nullopt;
    return text;
}

// The CPUs in this process's affinity mask, or 0 when it cannot be read. The mask grows past
// CPU_SETSIZE on machines with more CPUs than that (the kernel answers EINVAL to a short one).
std::size_t affinity_cpus() {
    struct cpu_set_free {
        void operator()(cpu_set_t* set) const { CPU_FREE(set); }
    };
    for (int n = CPU_SETSIZE; n <= (1 << 20); n *= 2) {
        const std::unique_ptr<cpu_set_t, cpu_set_free> set{CPU_ALLOC(n)};
        if (!set) return 0;
        const auto size = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(size, set.get());
        if (sched_getaffinity(0, size, set.get()) == 0) return static_cast<std::size_t>(CPU_COUNT_S(size, set.get()));
        if (errno != EINVAL) return 0;
    }
    return 0;
}

}  // namespace

std::optional<cpu_quota> parse_cpu_max(std::string_view text) {
    text = trim(text);
    const auto space = text.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const auto quota = positive(text.substr(0, space));
    const auto period = positive(trim(text.substr(space + 1)));
    if (!quota || !period) return std::nullopt;  // "max <period>", or not a limit at all
    return cpu_quota{.quota_us = *quota, .period_us = *period};
}

std::int64_t cpus_of(cpu_quota quota) {
    if (quota.quota_us <= 0 || quota.period_us <= 0) return 1;
    const auto whole = quota.quota_us / quota.period_us;
    const auto cpus = whole + (quota.quota_us % quota.period_us != 0 ? 1 : 0);
    return cpus < 1 ? 1 : cpus;
}

std::optional<std::string> parse_cgroup_v2_path(std::string_view proc_self_cgroup) {
    while (!proc_self_cgroup.empty()) {
        const auto end = proc_self_cgroup.find('\n');
        const auto line = proc_self_cgroup.substr(0, end);
        if (line.starts_with("0::")) {
            const auto path = trim(line.substr(3));
            if (path.starts_with('/')) return std::string{path};
        }
        if (end == std::string_view::npos) break;
        proc_self_cgroup.remove_prefix(end + 1);
    }
    return std::nullopt;
}

std::vector<std::string> cgroup_ancestry(std::string_view path) {
    std::vector<std::string> out;
    while (path.size() > 1 && path.ends_with('/')) path.remove_suffix(1);
    while (path.size() > 1) {
        out.emplace_back(path);
        path = path.substr(0, path.rfind('/'));
        if (path.empty()) path = "/";
    }
    out.emplace_back("/");
    return out;
}

std::optional<cgroup_limit> tightest_cgroup_limit(std::string_view cgroup, const cpu_max_reader& read) {
    std::optional<cgroup_limit> tightest;
    for (auto& path : cgroup_ancestry(cgroup)) {
        const auto text = read(path);
        if (!text) continue;
        const auto quota = parse_cpu_max(*text);
        if (!quota) continue;
        const auto cpus = cpus_of(*quota);
        if (!tightest || cpus < tightest->cpus) {
            tightest = cgroup_limit{.cgroup = std::move(path), .quota = *quota, .cpus = cpus};
        }
    }
    return tightest;
}

cpu_budget decide_cpu_budget(std::size_t affinity, std::size_t online, const std::optional<cgroup_limit>& limit) {
    if (online == 0) online = 1;
    if (affinity == 0) affinity = online;  // unreadable: the machine's
    if (limit && static_cast<std::size_t>(limit->cpus) <= affinity) {
        return {.cpus = static_cast<std::size_t>(limit->cpus),
                .reason = "cgroup cpu.max " + std::to_string(limit->quota.quota_us) + "/" +
                          std::to_string(limit->quota.period_us) + " -> " + std::to_string(limit->cpus)};
    }
    return {.cpus = affinity,
            .reason = "affinity " + std::to_string(affinity) + " of " + std::to_string(online) + " CPUs"};
}

cpu_budget usable_cpus(const std::string& cgroup_root) {
    const auto online = sysconf(_SC_NPROCESSORS_ONLN);
    std::optional<cgroup_limit> limit;
    if (!cgroup_root.empty()) {
        const auto self = read_file("/proc/self/cgroup");
        const auto cgroup = self ? parse_cgroup_v2_path(*self) : std::nullopt;
        if (cgroup) {
            std::string root = cgroup_root;
            while (root.size() > 1 && root.ends_with('/')) root.pop_back();
            limit = tightest_cgroup_limit(*cgroup, [&root](const std::string& path) {
                return read_file(root + (path == "/" ? "" : path) + "/cpu.max");
            });
        }
    }
    return decide_cpu_budget(affinity_cpus(), online > 0 ? static_cast<std::size_t>(online) : 1, limit);
}

}  // namespace zena::util
