#pragma once
// The presence of one process (engine.type = memory, the default): per channel, its clients with
// their user and expiry. Held to tests/contract/presence_contract.
//
// Threading: any thread may call any method. Channels are spread over k_stripes stripes by the
// hash of their name, each with its own mutex, so joins to different channels rarely contend
// and sweep() holds one stripe at a time. `done` is called exactly once, on the calling thread,
// before the call returns and after the lock is released.
//
// Expiry: an entry is live until `ttl` after its last join (expired when now >= that instant).
// An expired entry is never reported. It is removed when its channel is next touched (query
// always; join and leave once the channel's earliest expiry has passed, so a busy channel is not
// scanned on every join) and by sweep(), which the server calls from a timer; an empty channel
// is removed with its last entry. A refresh (a join of a present client) updates its user too.
// join and leave answer from the same state that query reports: a user is "there" while it has
// a live entry, so the expired entries are dropped before the answer is taken.
//
// Memory (issue 13: under 64 bytes per connection): a channel keeps its clients in one flat
// array of 20-byte entries (client id as an integer, the user's index, the expiry), its users
// once each in a second array (12 bytes: where the name is in the channel's name buffer, its
// length, its clients) with the names side by side in one buffer, and two open-addressing
// indexes of 4-byte slots (client id -> entry, name -> user), at most 3/4 full. No entry owns a
// string or a map node. A client id that is a decimal number below 2^63 (what the server's
// sessions use: their connection number) is stored as that number; any other string is given a
// number of its own in a side table of the channel (the contract's "n1-c1"), which costs a map
// node but is never on the server's path. The arrays grow by a quarter, not double, and a
// channel that lost most of its users or clients is compacted (the names rewritten, the arrays
// and indexes shrunk): measured in bench/presence.sh ("micro", and "memory" for the server).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/presence.hpp"
#include "util/string_hash.hpp"

namespace zena::engine {

class memory_presence final : public presence {
public:
    static constexpr std::size_t k_stripes = 16;

    // `now_ms`: a monotonic clock in ms; empty: std::chrono::steady_clock. Tests move it by hand.
    explicit memory_presence(std::function<std::int64_t()> now_ms = {});
    ~memory_presence() override;
    memory_presence(const memory_presence&) = delete;
    memory_presence& operator=(const memory_presence&) = delete;

    void join(std::string_view channel, std::string_view client, std::string_view user, std::chrono::milliseconds ttl,
              membership_done done) override;
    void leave(std::string_view channel, std::string_view client, membership_done done) override;
    void query(std::string_view channel, query_done done) override;
    void users(std::string_view channel, count_done done) override;

    // Removes every expired entry (and the channels left empty); returns how many entries went.
    std::size_t sweep();
    // Entries held now, expired ones not yet swept included.
    std::size_t entries() const;

    // One channel's members (defined in the source).
    class channel_table;

private:
    using string_hash = util::string_hash;
    using channel_map = std::unordered_map<std::string, std::unique_ptr<channel_table>, string_hash, std::equal_to<>>;
    struct stripe {
        mutable std::mutex mutex;
        channel_map channels;
    };

    stripe& stripe_of(std::string_view channel);
    // `channel` in `s`, its expired entries swept if one is due; end() when absent. Under s.mutex.
    channel_map::iterator find_live(stripe& s, std::string_view channel);

    std::function<std::int64_t()> now_ms_;
    std::array<stripe, k_stripes> stripes_;
};

}  // namespace zena::engine
