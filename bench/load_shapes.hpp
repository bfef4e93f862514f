#pragma once
// The publisher shapes of zena-loadgen (bench/README.md, "Shapes"): what the generator needs to
// publish on a schedule of its own rather than as answers come, and to say what each part of a
// run measured. One thread uses all of it (the generator's); nothing here touches a socket.
//
// - latency_histogram: delivery latencies in µs within 1/128 (0.8 %), in bounded memory, so a
//   run of any length keeps every delivery (a vector of samples would have to stop somewhere).
// - tracked_message: one publish in flight, and how many target connections still wait for it:
//   what a delivery-gated window counts, and what tells when a step is delivered.
// - shape_step: one step of an open-loop run (Poisson arrivals at one rate), or one burst.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace zena::bench {

class latency_histogram {
public:
    void add(std::uint32_t us) {
        ++counts_[index(us)];
        ++total_;
        max_ = std::max(max_, us);
    }
    std::uint64_t total() const { return total_; }
    std::uint32_t max() const { return max_; }
    // The q-quantile (0 < q < 1), the upper bound of its bucket (never above the maximum seen).
    std::uint32_t quantile(double q) const {
        if (total_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen > rank) return std::min(upper(i), max_);
        }
        return max_;
    }
    // {"p50":..,"p99":..,"p999":..,"max":..} in µs.
    std::string json() const {
        char buf[160];
        (void)std::snprintf(buf, sizeof buf, R"({"p50":%u,"p99":%u,"p999":%u,"max":%u})", quantile(0.5), quantile(0.99),
                            quantile(0.999), max_);
        return buf;
    }

    // The non-empty buckets, [[upper bound µs, count], ...]: histograms of several processes
    // (bench/cluster.sh) merge exactly by adding counts per bound.
    std::string buckets_json() const {
        std::string out = "[";
        char buf[48];
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            if (counts_[i] == 0) continue;
            (void)std::snprintf(buf, sizeof buf, "%s[%u,%llu]", out.size() > 1 ? "," : "", std::min(upper(i), max_),
                                static_cast<unsigned long long>(counts_[i]));
            out += buf;
        }
        return out + "]";
    }

private:
    // Below 256 µs exact; above, the exponent and the top 8 bits of the value.
    static std::size_t index(std::uint32_t v) {
        if (v < 256) return v;
        const int shift = 31 - __builtin_clz(v) - 7;  // >= 1
        return 256 + static_cast<std::size_t>(shift - 1) * 128 + ((v >> shift) - 128);
    }
    static std::uint32_t upper(std::size_t i) {
        if (i < 256) return static_cast<std::uint32_t>(i);
        const auto shift = (i - 256) / 128 + 1;
        const auto top = (i - 256) % 128 + 128;
        return static_cast<std::uint32_t>(((top + 1) << shift) - 1);
    }
    std::array<std::uint64_t, 256 + 24 * 128> counts_{};
    std::uint64_t total_ = 0;
    std::uint32_t max_ = 0;
};

// One publish: when it was due (the latency's start: an open-loop arrival that the generator
// sends late still counts from when it was due), how many target connections have yet to get it,
// and the step it belongs to (-1: none).
struct tracked_message {
    std::int64_t due_ns = 0;
    std::uint32_t remaining = 0;
    std::int32_t step = -1;
};

// Poisson arrivals: exponential gaps of mean 1/rate, from a fixed seed so runs compare.
class poisson_clock {
public:
    explicit poisson_clock(std::uint32_t seed) : rng_(seed) {}
    // The gap to the next arrival at `per_s` a second, in ns (at least 1).
    std::int64_t gap_ns(double per_s) {
        std::exponential_distribution<double> gap(per_s);
        return std::max<std::int64_t>(1, static_cast<std::int64_t>(gap(rng_) * 1e9));
    }

private:
    std::mt19937_64 rng_;
};

// One step of an open-loop run (or one burst): its arrivals, what reached the connections, and
// the CPU each side spent from its first arrival to its last delivery.
struct shape_step {
    double rate = 0;            // fan-out arrivals a second (open loop); 0 for a burst
    double targeted_rate = 0;   // targeted arrivals a second beside it (the mixed shape)
    std::int64_t start_ns = 0;  // first arrival due
    std::int64_t arrivals_end_ns = 0;
    std::int64_t done_ns = 0;             // last target reached (0: not yet / never)
    std::int64_t last_delivery_ns = 0;    // last delivery seen
    std::uint64_t messages = 0;           // fan-out (or the mode's) publishes
    std::uint64_t targeted_messages = 0;  // targeted publishes beside the fan-out
    std::uint64_t expected = 0;           // deliveries due
    std::uint64_t delivered = 0;
    std::int64_t late_max_ns = 0;        // how late the generator sent an arrival (its own lag)
    latency_histogram latency;           // the fan-out's (or the mode's) deliveries
    latency_histogram targeted_latency;  // the targeted publishes' (mixed)
    double server_cpu_0 = 0, self_cpu_0 = 0, machine_0 = 0;
    double server_cpu = 0, self_cpu = 0, others_cpu = 0;
    bool ended = false;  // arrivals over and accounted (drained, or the drain timed out)

    bool drained() const { return delivered == expected; }
    double seconds() const {
        const auto end = last_delivery_ns > start_ns ? last_delivery_ns : arrivals_end_ns;
        return static_cast<double>(end - start_ns) / 1e9;
    }
    // Held: every delivery made, within the drain, with the p99 at or under `p99_us`.
    bool held(std::uint32_t p99_us) const {
        return drained() && latency.quantile(0.99) <= p99_us &&
               (targeted_messages == 0 || targeted_latency.quantile(0.99) <= p99_us);
    }
    std::string json(std::uint32_t hold_p99_us) const {
        const double s = seconds();
        char buf[640];
        (void)std::snprintf(buf, sizeof buf,
                            R"({"rate":%.1f,"messages":%llu,"expected":%llu,"delivered":%llu,"lost":%lld,)"
                            R"("deliveries_per_s":%.0f,"seconds":%.3f,"completion_ms":%.1f,"late_max_ms":%.2f,)"
                            R"("server_cpu_s":%.2f,"loadgen_cpu_s":%.2f,"others_cpu_s":%.2f,"held":%s,"latency_us":)",
                            rate, static_cast<unsigned long long>(messages), static_cast<unsigned long long>(expected),
                            static_cast<unsigned long long>(delivered),
                            static_cast<long long>(expected) - static_cast<long long>(delivered),
                            s > 0 ? static_cast<double>(delivered) / s : 0.0, s,
                            done_ns > start_ns ? static_cast<double>(done_ns - start_ns) / 1e6 : 0.0,
                            static_cast<double>(late_max_ns) / 1e6, server_cpu, self_cpu, others_cpu,
                            held(hold_p99_us) ? "true" : "false");
        std::string out = buf + latency.json();
        if (targeted_messages > 0) {
            (void)std::snprintf(buf, sizeof buf, R"(,"targeted":{"rate":%.1f,"messages":%llu,"latency_us":)",
                                targeted_rate, static_cast<unsigned long long>(targeted_messages));
            out += buf + targeted_latency.json() + "}";
        }
        return out + "}";
    }
};

// "10,20,40" -> {10, 20, 40}; an empty vector when `list` is empty; false on anything else.
inline bool parse_rates(const std::string& list, std::vector<double>& out) {
    out.clear();
    std::size_t at = 0;
    while (at < list.size()) {
        const auto comma = list.find(',', at);
        const auto item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || *end != '\0' || !(v > 0) || v > 100000) return false;
        out.push_back(v);
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return true;
}

}  // namespace zena::bench
