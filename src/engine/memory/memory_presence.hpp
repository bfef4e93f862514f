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
// Memory, per entry (libstdc++, x86-64): the client map's node (next pointer, the client id
// string, the user pointer and the expiry: 56 bytes, 64 with malloc's header; the hash is not
// cached) and its bucket (8): about 72 bytes, plus the client id's length past 15 (the
// short-string buffer). A user is stored once per channel, however many clients it has. Under the 64 bytes
// per connection that presence aims for, client ids would be integers (node index and connection
// number) in an open-addressing table.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/presence.hpp"

namespace zena::engine {

class memory_presence final : public presence {
public:
    static constexpr std::size_t k_stripes = 16;

    // `now_ms`: a monotonic clock in ms; empty: std::chrono::steady_clock. Tests move it by hand.
    explicit memory_presence(std::function<std::int64_t()> now_ms = {});

    void join(std::string_view channel, std::string_view client, std::string_view user, std::chrono::milliseconds ttl,
              membership_done done) override;
    void leave(std::string_view channel, std::string_view client, membership_done done) override;
    void query(std::string_view channel, query_done done) override;
    void users(std::string_view channel, count_done done) override;

    // Removes every expired entry (and the channels left empty); returns how many entries went.
    std::size_t sweep();
    // Entries held now, expired ones not yet swept included.
    std::size_t entries() const;

private:
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    template <typename V>
    using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

    struct client_entry {
        const std::string* user = nullptr;  // a key of the channel's users
        std::int64_t expires_ms = 0;
    };
    struct channel_state {
        string_map<client_entry> clients;
        string_map<std::size_t> users;  // user -> its entries, expired ones until swept
        std::int64_t earliest_expiry_ms = std::numeric_limits<std::int64_t>::max();  // none expires before
    };
    struct stripe {
        mutable std::mutex mutex;
        string_map<channel_state> channels;
    };

    stripe& stripe_of(std::string_view channel);
    // With the stripe's mutex held: removes the channel's expired entries; returns how many.
    static std::size_t sweep_channel(channel_state& ch, std::int64_t now);
    // `channel` in `s`, its expired entries swept if one is due; end() when absent. Under s.mutex.
    string_map<channel_state>::iterator find_live(stripe& s, std::string_view channel);
    // With the stripe's mutex held: removes one entry; returns whether it was its user's last
    // in the channel (the user went with it).
    static bool remove_entry(channel_state& ch, string_map<client_entry>::iterator it);

    std::function<std::int64_t()> now_ms_;
    std::array<stripe, k_stripes> stripes_;
};

}  // namespace zena::engine
