#include "engine/memory/memory_history.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "util/allocator.hpp"

namespace zena::engine {
namespace {

// Idle states and expired events dropped per call at most, so that no call pays for a backlog
// at once; every call adds at most one state and one event, so the sweep keeps up.
constexpr int k_max_sweep_steps = 16;

std::int64_t system_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// What the budget counts for one kept event, beyond a latest event's index entry (see the header).
std::size_t entry_bytes(const stored_event& stored) {
    // What the allocations hold, not what is used of them: a buffer reserved ahead is memory too,
    // and so is the allocator's rounding (jemalloc's size classes round up by as much as a quarter).
    const auto frame = stored.message.frame ? util::allocation_bytes(stored.message.frame->buffer_bytes()) : 0;
    return frame + util::allocation_bytes(stored.event->type.capacity()) +
           util::allocation_bytes(stored.event->payload.capacity()) + memory_history::k_entry_overhead_bytes;
}

}  // namespace

memory_history::memory_history(memory_history_options options) : options_(std::move(options)) {
    if (!options_.now_ms) options_.now_ms = system_now_ms;
}

std::int64_t memory_history::now() const { return options_.now_ms(); }

void memory_history::append(std::string_view channel, std::shared_ptr<const event> e, const history_limits& limits,
                            append_done done) {
    if (!e) return done(util::error{"no event to append (a null event)"});
    if (e->message.delivery == ws::delivery_class::ephemeral) {
        return done(util::error{"an ephemeral event is never stored in a channel's history"});
    }
    appended out;
    {
        const std::lock_guard lock(mutex_);
        const auto t = now();
        auto& ch = touch(channel, t);
        ch.max_age = limits.max_age;
        trim_expired(ch, t);

        const auto seq = ++ch.last_seq;
        const bool latest = e->message.delivery == ws::delivery_class::latest;
        if (!ch.events) {
            ch.events = std::make_unique<std::deque<entry>>();
            bytes_ += k_events_block_bytes;
        }
        auto& events = *ch.events;
        if (latest) {
            auto [kept, fresh] = ch.latest.try_emplace(e->message.latest_key, seq);
            if (!fresh) {
                // Compaction, not a loss: the newer event stands for the older one.
                const auto old = std::lower_bound(events.begin(), events.end(), kept->second,
                                                  [](const entry& x, std::uint64_t s) { return x.stored.seq < s; });
                assert(old != events.end() && old->stored.seq == kept->second);
                bytes_ -= old->bytes;
                events.erase(old);
                kept->second = seq;
            }
        }
        out.at = position{ch.epoch, seq};
        out.message = channel_message(*e, channel, out.at);
        stored_event stored{seq, t, std::move(e), out.message};
        const auto bytes = entry_bytes(stored) + (latest ? k_latest_overhead_bytes : 0);
        const auto ordinal = next_ordinal_++;
        events.push_back(entry{std::move(stored), ordinal, bytes});
        bytes_ += bytes;
        while (events.size() > limits.max_events) drop_front(ch);
        reindex(ch, t);
        maintain(t, ch, ordinal);
    }
    done(std::move(out));
}

memory_history::channel_state& memory_history::current(std::string_view channel) {
    const auto t = now();
    auto& ch = touch(channel, t);
    trim_expired(ch, t);
    reindex(ch, t);
    maintain(t, ch, 0);
    return ch;
}

void memory_history::read(std::string_view channel, std::optional<position> since, std::size_t limit, read_done done) {
    history_page page;
    {
        const std::lock_guard lock(mutex_);
        auto& ch = current(channel);
        page.top = position{ch.epoch, ch.last_seq};
        std::uint64_t after = 0;
        if (!since) {
            page.recovered = ch.lost_seq == 0;
        } else if (since->epoch != ch.epoch || since->seq > ch.last_seq) {
            page.recovered = false;
        } else {
            after = since->seq;
            page.recovered = since->seq >= ch.lost_seq;
        }
        if (!ch.empty()) {
            const auto& events = *ch.events;
            auto it = std::upper_bound(events.begin(), events.end(), after,
                                       [](std::uint64_t s, const entry& x) { return s < x.stored.seq; });
            const auto count = std::min<std::size_t>(limit, static_cast<std::size_t>(events.end() - it));
            page.events.reserve(count);
            for (std::size_t i = 0; i < count; ++i, ++it) page.events.push_back(it->stored);
        }
    }
    done(std::move(page));
}

void memory_history::top(std::string_view channel, top_done done) {
    position at;
    {
        const std::lock_guard lock(mutex_);
        const auto& ch = current(channel);
        at = position{ch.epoch, ch.last_seq};
    }
    done(std::move(at));
}

std::uint64_t memory_history::evicted() const {
    const std::lock_guard lock(mutex_);
    return evicted_;
}

std::size_t memory_history::bytes() const {
    const std::lock_guard lock(mutex_);
    return bytes_;
}

std::size_t memory_history::channels() const {
    const std::lock_guard lock(mutex_);
    return channels_.size();
}

memory_history::channel_state& memory_history::touch(std::string_view name, std::int64_t now) {
    auto it = channels_.find(name);
    if (it == channels_.end()) {
        it = channels_.emplace(std::string(name), channel_state{}).first;
        auto& ch = it->second;
        ch.name = it->first;
        ch.epoch = epochs_.next();
        ch.bytes = k_channel_overhead_bytes + ch.name.size() + ch.epoch.size();
        bytes_ += ch.bytes;
        reindex(ch, now);  // empty: joins the idle list
        return ch;
    }
    auto& ch = it->second;
    if (ch.idle) {
        idle_.splice(idle_.end(), idle_, ch.idle_at);
        ch.idle_since_ms = now;
    }
    return ch;
}

void memory_history::trim_expired(channel_state& ch, std::int64_t now) {
    while (!ch.empty() && now - ch.events->front().stored.published_ms > ch.max_age.count()) drop_front(ch);
}

void memory_history::drop_front(channel_state& ch) {
    auto& front = ch.events->front();
    const auto seq = front.stored.seq;
    ch.lost_seq = std::max(ch.lost_seq, seq);
    if (front.stored.event->message.delivery == ws::delivery_class::latest) {
        const auto kept = ch.latest.find(front.stored.event->message.latest_key);
        if (kept != ch.latest.end() && kept->second == seq) ch.latest.erase(kept);
    }
    bytes_ -= front.bytes;
    ch.events->pop_front();
}

void memory_history::reindex(channel_state& ch, std::int64_t now) {
    if (ch.empty()) {
        if (ch.events) {
            ch.events.reset();
            bytes_ -= k_events_block_bytes;
        }
        if (ch.indexed_ordinal != 0) {
            by_oldest_.erase(ch.indexed_ordinal);
            ch.indexed_ordinal = 0;
        }
        if (!ch.idle) {
            ch.idle_at = idle_.insert(idle_.end(), &ch);
            ch.idle = true;
            ch.idle_since_ms = now;
        }
        return;
    }
    if (ch.idle) {
        idle_.erase(ch.idle_at);
        ch.idle = false;
    }
    const auto oldest = ch.events->front().ordinal;
    if (ch.indexed_ordinal == oldest) return;
    if (ch.indexed_ordinal != 0) by_oldest_.erase(ch.indexed_ordinal);
    by_oldest_.emplace(oldest, &ch);
    ch.indexed_ordinal = oldest;
}

void memory_history::drop_channel(channel_state& ch) {
    assert(ch.empty() && !ch.events && ch.indexed_ordinal == 0);
    if (ch.idle) idle_.erase(ch.idle_at);
    bytes_ -= ch.bytes;
    channels_.erase(channels_.find(ch.name));
}

void memory_history::maintain(std::int64_t now, const channel_state& keep, std::uint64_t protect) {
    // Empty states untouched for meta_ttl.
    for (int i = 0; i < k_max_sweep_steps && !idle_.empty(); ++i) {
        auto* ch = idle_.front();
        if (ch == &keep || now - ch->idle_since_ms <= options_.meta_ttl.count()) break;
        drop_channel(*ch);
    }
    // Expired events of channels nobody touches, oldest first, while the oldest has expired.
    for (int i = 0; i < k_max_sweep_steps && !by_oldest_.empty(); ++i) {
        auto* ch = by_oldest_.begin()->second;
        const auto& front = ch->events->front();
        if (front.ordinal == protect || now - front.stored.published_ms <= ch->max_age.count()) break;
        drop_front(*ch);
        reindex(*ch, now);
    }
    // The budget: empty states first, then the globally oldest events.
    while (bytes_ > options_.max_bytes) {
        channel_state* idle = nullptr;
        for (auto* ch : idle_) {
            if (ch != &keep) {
                idle = ch;
                break;
            }
        }
        if (idle != nullptr) {
            drop_channel(*idle);
            continue;
        }
        if (by_oldest_.empty()) break;
        auto* ch = by_oldest_.begin()->second;
        if (ch->events->front().ordinal == protect) break;
        drop_front(*ch);
        ++evicted_;
        if (options_.metrics) observability::metrics::add(options_.metrics->history_evicted);
        reindex(*ch, now);
    }
}

}  // namespace zena::engine
