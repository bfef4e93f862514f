#pragma once
// The history of one process (engine.type = memory, the default): each channel's recent events
// in a deque, bounded per channel by count and age and, for all channels together, by a memory
// budget. Held to tests/contract/history_contract.
//
// Threading: any thread may call any method. One mutex guards every channel: the budget evicts
// the globally oldest event, which a lock per stripe of channels could not find without taking
// them all; the work under it is O(1) amortised per call (O(log channels) for the budget's index,
// a short deque erase for compaction), and the memory broker appends once per publish, never per
// connection. `done` is called exactly once, on the calling thread, before the call returns and
// after the lock is released: a caller may call this history again from inside `done`.
//
// A channel's state (created by its first append, top or read):
// - an epoch: a random prefix drawn at construction (8 characters of [0-9a-z]) and a counter in
//   base 36, so unique per channel life in this process and different after a restart; it never
//   holds ':', the separator of "<epoch>:<seq>";
// - the last seq given (0 before the first append), the kept events (oldest first), and the
//   highest seq lost to the bounds (count, age, budget); compaction is not a loss.
//
// recovered, for read(channel, since, limit) (see history_page):
// - since = nullopt reads as since = {current epoch, 0}: recovered iff no event of this epoch
//   was ever lost, and the events are the oldest kept;
// - since in another epoch, or since.seq > top.seq: recovered = false, the events are the oldest
//   kept (the client resyncs);
// - otherwise recovered = since.seq >= the highest lost seq, and the events are the kept ones
//   with seq > since.seq.
// In every case, events past their max_age are dropped (lost) first, at most `limit` events are
// returned, oldest first, and recovered says that nothing was lost between `since` and the first
// returned event: a client pages on from the last one until a page holds fewer than `limit`.
//
// What is full, and what goes:
// - per channel, on append: past limits.max_events the oldest kept goes; an event older than
//   limits.max_age (those of the channel's last append) goes when the channel is next touched,
//   or sooner by the opportunistic trim of the globally oldest events;
// - a latest event replaces the kept latest event of the same latest_key (compaction);
// - the budget (max_bytes) counts each kept event as its frame's buffer, its type's and
//   payload's capacity (the stored event holds them) and a fixed overhead, and each channel
//   state as its name and epoch plus a fixed overhead (the k_ constants below). An event kept
//   by several channels is held once but counted in each: the budget errs high, never low. Past it, empty channel
//   states go first (least recently touched first: each holds only an epoch, while an event is data), then the globally
//   oldest events, whatever their channel (counted by evicted(), a loss for their channel). A call never drops the
//   state of the channel it serves, nor the event it just appended: one event larger than the budget stays until the
//   next call.
// - an empty channel state (no kept events) also goes once it has been untouched (no append,
//   top or read) and empty for meta_ttl, swept a few per call; a channel with events is never
//   dropped but by losing them. A dropped channel gets a new epoch when next touched: a client holding a position in
//   the old one gets recovered = false, never a silent gap.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/epoch.hpp"
#include "engine/history.hpp"
#include "observability/metrics.hpp"
#include "util/string_hash.hpp"

namespace zena::engine {

struct memory_history_options {
    // All channels' history, in bytes (see the budget above). 256 MiB: about 560,000 events of
    // 100 wire bytes whose type and payload hold 70 (about 475 bytes each, counted), or 750,000
    // empty channel states.
    std::size_t max_bytes = std::size_t{256} << 20U;
    // How long an empty channel state outlives its last touch (or its last event). A week: a
    // client away over a weekend still recovers an idle channel with nothing missed; the budget
    // bounds what the states cost.
    std::chrono::milliseconds meta_ttl = std::chrono::hours(24 * 7);
    // Unix time in ms; empty: std::chrono::system_clock. Tests move it by hand.
    std::function<std::int64_t()> now_ms;
    // Where budget evictions are counted (zena_history_evicted_total); null: nowhere.
    observability::metrics* metrics = nullptr;
};

class memory_history final : public history {
public:
    // What the budget counts (measured with libstdc++ on x86-64; see bytes()). One kept event,
    // beyond its channel frame's buffer and its type's and payload's capacity: its deque
    // slot (80), the event object with its make_shared control block and allocation (128, shared
    // by the channels of one publish but counted in each), the channel frame object with its
    // shared_ptr control block and allocation (104), the frame buffer's header room and
    // allocation (24), and the allocator's headers and rounding of those fixed-size allocations
    // (64). The buffers (frame, type, payload) are counted as the allocator rounds them
    // (util::allocation_bytes: jemalloc's size classes in the release binary, glibc's granules
    // elsewhere). The deflated copy that a frame may build later is not counted. Measured against
    // the heap (bench/history_bench.cpp, glibc) and the server's RSS (bench/channels.sh, mode
    // store: 732 bytes per event of a 209-byte frame under jemalloc,
    // bench/results/2026-12-07-0844-channels.md): the count is not below either.
    static constexpr std::size_t k_entry_overhead_bytes = 400;
    // A latest event's entry in its channel's index of keys, on top of the above.
    static constexpr std::size_t k_latest_overhead_bytes = 48;
    // One channel state, beyond its name and epoch: the hash map node with the state, its bucket
    // and its place in the idle list while empty.
    static constexpr std::size_t k_channel_overhead_bytes = 320;
    // A channel's deque while it holds events (released when it empties): the deque, its map
    // and first 512-byte block.
    static constexpr std::size_t k_events_block_bytes = 704;

    explicit memory_history(memory_history_options options = {});

    void append(std::string_view channel, std::shared_ptr<const event> e, const history_limits& limits,
                append_done done) override;
    void read(std::string_view channel, std::optional<position> since, std::size_t limit, read_done done) override;
    void top(std::string_view channel, top_done done) override;

    // Events evicted by the budget since construction (a loss for their channels).
    std::uint64_t evicted() const;
    // The budget's count of the bytes held now.
    std::size_t bytes() const;
    // Channel states held now, with events or empty.
    std::size_t channels() const;

private:
    struct entry {
        stored_event stored;
        std::uint64_t ordinal = 0;  // global append order: the budget evicts the smallest first
        std::size_t bytes = 0;      // what the budget counts for it
    };
    struct channel_state;
    using idle_list = std::list<channel_state*>;
    struct channel_state {
        std::string_view name;  // the map's key, stable while the state lives
        std::string epoch;
        std::uint64_t last_seq = 0;
        std::uint64_t lost_seq = 0;                                    // the highest seq lost to the bounds; 0: none
        std::chrono::milliseconds max_age = history_limits{}.max_age;  // the last append's
        std::unique_ptr<std::deque<entry>> events;                     // null while empty: a deque allocates
        std::unordered_map<std::uint64_t, std::uint64_t> latest;       // latest_key -> its kept seq
        std::size_t bytes = 0;                                         // the state's own, not its events'
        std::uint64_t indexed_ordinal = 0;                             // its key in by_oldest_; 0: absent
        std::int64_t idle_since_ms = 0;                                // while empty
        bool idle = false;                                             // in idle_ (empty)
        idle_list::iterator idle_at;

        bool empty() const { return !events || events->empty(); }
    };
    using string_hash = util::string_hash;
    using channel_map = std::unordered_map<std::string, channel_state, string_hash, std::equal_to<>>;

    // Each of these runs with mutex_ held; `now` is the call's clock reading.
    channel_state& touch(std::string_view name, std::int64_t now);
    // The channel as a read finds it (touched, its expired events gone, the budget kept); under
    // mutex_.
    channel_state& current(std::string_view channel);
    void trim_expired(channel_state& ch, std::int64_t now);
    void maintain(std::int64_t now, const channel_state& keep, std::uint64_t protect);
    void drop_front(channel_state& ch);
    void reindex(channel_state& ch, std::int64_t now);
    void drop_channel(channel_state& ch);
    std::int64_t now() const;

    memory_history_options options_;
    epoch_source epochs_;  // new channel lives' epochs

    mutable std::mutex mutex_;
    channel_map channels_;
    std::map<std::uint64_t, channel_state*> by_oldest_;  // each channel's oldest kept event's ordinal
    idle_list idle_;                                     // the empty states, least recently touched first
    std::uint64_t next_ordinal_ = 1;
    std::size_t bytes_ = 0;
    std::uint64_t evicted_ = 0;
};

}  // namespace zena::engine
