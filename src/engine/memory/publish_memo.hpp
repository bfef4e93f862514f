#pragma once
// What the memory broker remembers of the publishes that carried an idempotency key
// (engine::publication::idempotency_key): per channel (or "everyone") and key, that it was
// published, and where when it was stored, for the idempotency window. The Redis engine keeps
// the same record in Redis, set by its append script (docs/engine.md).
//
// Bounded by count as well as by time: past max_keys the oldest records go before their window
// ends (counted by evicted()), so a retry later than what the bound holds may publish again.
// Records go in the order they were claimed; the window is the same for all, so that order is
// also their expiry order and one queue serves both bounds.
//
// Threading: any thread; one mutex, held for a hash lookup and an amortised O(1) sweep.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "engine/event.hpp"
#include "util/string_hash.hpp"

namespace zena::engine {

struct publish_memo_options {
    std::chrono::milliseconds window = std::chrono::minutes(1);
    std::size_t max_keys = 100000;
    // Monotonic time in ms; empty: std::chrono::steady_clock. Tests move it by hand.
    std::function<std::int64_t()> now_ms;
};

class publish_memo {
public:
    explicit publish_memo(publish_memo_options options = {});

    // The first publish of `key` on `scope`, when there was one within the window: its position
    // when it was stored and settle() has run. Otherwise nullopt, and the caller now holds the
    // claim (`*serial` names it): it publishes, then settles it (stored) or keeps it as it is
    // (not stored), or forgets it (the publish failed). Settling or forgetting a claim that went
    // meanwhile (past the window or max_keys) changes nothing, even if the key was claimed again.
    struct first {
        std::optional<position> at;
    };
    std::optional<first> claim(std::string_view scope, std::string_view key, std::uint64_t* serial = nullptr);
    void settle(std::string_view scope, std::string_view key, std::uint64_t serial, position at);
    void forget(std::string_view scope, std::string_view key, std::uint64_t serial);

    std::size_t size() const;
    std::uint64_t evicted() const;

private:
    struct record {
        std::optional<position> at;
        std::uint64_t serial = 0;  // its entry in order_
    };
    struct claimed {
        std::int64_t expires_ms = 0;
        std::string name;
        std::uint64_t serial = 0;
    };
    static std::string name_of(std::string_view scope, std::string_view key);
    std::int64_t now() const;
    void sweep(std::int64_t now);  // under mutex_

    publish_memo_options options_;
    mutable std::mutex mutex_;
    util::string_map<record> records_;
    std::deque<claimed> order_;  // oldest first; an entry whose record is gone or newer is skipped
                                 // (a forgotten claim's entry stays until its window ends)
    std::uint64_t next_serial_ = 1;
    std::uint64_t evicted_ = 0;
};

}  // namespace zena::engine
