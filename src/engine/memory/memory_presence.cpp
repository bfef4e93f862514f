#include "engine/memory/memory_presence.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace zena::engine {
namespace {

std::int64_t steady_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

constexpr std::int64_t k_never = std::numeric_limits<std::int64_t>::max();
// Client ids that are not decimal numbers get numbers with this bit set (see numeric_client).
constexpr std::uint64_t k_named_bit = std::uint64_t{1} << 63;
constexpr std::uint32_t k_no_user = std::numeric_limits<std::uint32_t>::max();

// `s` as a number when it is one written the canonical way (decimal digits, no leading zero, below
// 2^63), so that it reads back as the same string; nullopt otherwise.
std::optional<std::uint64_t> numeric_client(std::string_view s) {
    if (s.empty() || s.size() > 19 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');  // 19 digits stay below 2^64
    }
    if ((v & k_named_bit) != 0) return std::nullopt;
    return v;
}

// A 64-bit mix (the finalizer of splitmix64): connection numbers are sequential, slots must not be.
std::size_t mix(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return static_cast<std::size_t>(x);
}

std::size_t hash_name(std::string_view s) { return std::hash<std::string_view>{}(s); }

// Room for one more, growing by a quarter rather than doubling: a big channel's arrays are the
// bulk of presence's memory, and a doubling would leave up to half of them unused.
template <typename Container>
void reserve_one_more(Container& c) {
    if (c.size() == c.capacity()) c.reserve(c.size() + c.size() / 4 + 8);
}

// Positions in an array (below 2^32 - 1), found by a key that the caller reads through the
// position: linear probing over a power-of-two table of 4-byte slots (0: empty, position p
// stored as p + 1), at most 3/4 full; an erase shifts the following slots back (no tombstones).
// The callbacks: hash_of(pos) is the hash of the key at `pos`; match(pos) whether it is the one
// looked for.
class slot_index {
public:
    template <typename Match>
    std::uint32_t* find(std::size_t hash, Match match) {
        if (slots_.empty()) return nullptr;
        const auto mask = slots_.size() - 1;
        for (auto i = hash & mask;; i = (i + 1) & mask) {
            auto& slot = slots_[i];
            if (slot == 0) return nullptr;
            if (match(slot - 1)) return &slot;
        }
    }

    // Adds `pos`, whose key is not there yet.
    template <typename HashOf>
    void insert(std::uint32_t pos, std::size_t hash, HashOf hash_of) {
        if ((count_ + 1) * 4 > slots_.size() * 3) resize(std::max<std::size_t>(8, slots_.size() * 2), hash_of);
        place(pos, hash);
        ++count_;
    }

    static void point(std::uint32_t* slot, std::uint32_t pos) { *slot = pos + 1; }

    // Removes a slot that find() returned; the positions of the others stay as they are.
    template <typename HashOf>
    void erase(std::uint32_t* slot, HashOf hash_of) {
        const auto mask = slots_.size() - 1;
        auto hole = static_cast<std::size_t>(slot - slots_.data());
        for (auto j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
            // The slot at j may move back to the hole when the hole lies between its home and j.
            const auto home = hash_of(slots_[j] - 1) & mask;
            if (((j - home) & mask) >= ((j - hole) & mask)) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole] = 0;
        --count_;
        if (count_ * 8 < slots_.size() && slots_.size() > 8) resize(size_for(count_), hash_of);
    }

    // Empties the index and sizes it for `count` positions (at most half full).
    void reset(std::size_t count) {
        count_ = 0;
        slots_.assign(size_for(count), 0);
        slots_.shrink_to_fit();
    }

    std::size_t bytes() const { return slots_.capacity() * sizeof(std::uint32_t); }

private:
    static std::size_t size_for(std::size_t count) {
        std::size_t size = 8;
        while (size < count * 2) size *= 2;
        return size;
    }
    void place(std::uint32_t pos, std::size_t hash) {
        const auto mask = slots_.size() - 1;
        auto i = hash & mask;
        while (slots_[i] != 0) i = (i + 1) & mask;
        slots_[i] = pos + 1;
    }
    template <typename HashOf>
    void resize(std::size_t size, HashOf hash_of) {
        std::vector<std::uint32_t> old(size, 0);
        old.swap(slots_);
        for (const auto slot : old) {
            if (slot != 0) place(slot - 1, hash_of(slot - 1));
        }
    }

    std::vector<std::uint32_t> slots_;
    std::size_t count_ = 0;
};

}  // namespace

// A channel's clients and users (see the header's "Memory"). Not thread-safe: under its
// stripe's mutex.
class memory_presence::channel_table {
public:
    // Adds or refreshes `client`; true when `user` arrived (had no client here).
    bool join(std::string_view client, std::string_view user, std::int64_t expires) {
        bool arrived = false;
        auto u = find_user(user);
        if (u == k_no_user) {
            u = add_user(user);
            arrived = true;
        }
        const auto key = client_key(client, true);
        if (auto* slot = find_entry(*key)) {
            auto& e = entries_[*slot - 1];
            if (e.user != u) {  // the same client, now of another user
                drop_client_of(e.user);
                e.user = u;
                ++users_[u].clients;
            }
            e.expires_ms = expires;
        } else {
            reserve_one_more(entries_);
            const auto pos = static_cast<std::uint32_t>(entries_.size());
            entries_.push_back(entry{*key, expires, u});
            ++users_[u].clients;
            by_client_.insert(pos, mix(*key), client_hash());
        }
        earliest_ms_ = std::min(earliest_ms_, expires);
        compact_if_sparse();
        return arrived;
    }

    // Removes `client`; true when its user had no other client here.
    bool leave(std::string_view client) {
        const auto key = client_key(client, false);
        if (!key) return false;
        auto* slot = find_entry(*key);
        if (!slot) return false;
        const bool departed = remove_at(*slot - 1);
        compact_if_sparse();
        return departed;
    }

    // Removes the entries expired at `now`, if one may be; returns how many went.
    std::size_t sweep(std::int64_t now) {
        if (now < earliest_ms_) return 0;
        std::size_t removed = 0;
        auto earliest = k_never;
        for (std::size_t i = 0; i < entries_.size();) {
            const std::int64_t expires = entries_[i].expires_ms;
            if (now >= expires) {
                remove_at(static_cast<std::uint32_t>(i));  // the last entry moves to i
                ++removed;
            } else {
                earliest = std::min(earliest, expires);
                ++i;
            }
        }
        earliest_ms_ = earliest;
        if (removed > 0) compact_if_sparse();
        return removed;
    }

    void fill(presence_state& state) const {
        for (const auto& u : users_) {
            if (u.clients != 0) state.users.emplace(name_of(u), u.clients);
        }
        state.clients = entries_.size();
    }

    std::size_t users() const { return live_users_; }
    std::size_t clients() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }

private:
    // 20 bytes, no padding: a connection's whole cost but for its share of the indexes.
    struct [[gnu::packed, gnu::aligned(4)]] entry {
        std::uint64_t client;  // the id's number (numeric_client) or k_named_bit | its side-table number
        std::int64_t expires_ms;
        std::uint32_t user;  // in users_
    };
    static_assert(sizeof(entry) == 20);
    struct user_slot {
        std::uint32_t name_at;    // in names_; a free slot: the next free one (k_no_user: none)
        std::uint32_t name_size;  // unused while free
        std::uint32_t clients;    // 0: a free slot
    };
    // The ids that are not numbers, both ways; only allocated when one comes.
    struct named_clients {
        std::unordered_map<std::string, std::uint64_t, string_hash, std::equal_to<>> numbers;
        std::unordered_map<std::uint64_t, std::string> names;
        std::uint64_t next = k_named_bit;
    };

    std::string_view name_of(const user_slot& u) const { return {names_.data() + u.name_at, u.name_size}; }
    // The hash of the key at a position, for the indexes.
    struct client_hash_of {
        const channel_table* table;
        std::size_t operator()(std::uint32_t pos) const { return mix(table->entries_[pos].client); }
    };
    struct user_hash_of {
        const channel_table* table;
        std::size_t operator()(std::uint32_t pos) const { return hash_name(table->name_of(table->users_[pos])); }
    };
    client_hash_of client_hash() const { return {this}; }
    user_hash_of user_hash() const { return {this}; }

    // The number `client` is kept under; with `create`, a name not seen yet gets one.
    std::optional<std::uint64_t> client_key(std::string_view client, bool create) {
        if (const auto n = numeric_client(client)) return n;
        if (!named_) {
            if (!create) return std::nullopt;
            named_ = std::make_unique<named_clients>();
        }
        if (const auto it = named_->numbers.find(client); it != named_->numbers.end()) return it->second;
        if (!create) return std::nullopt;
        const auto key = named_->next++;
        named_->numbers.emplace(std::string{client}, key);
        named_->names.emplace(key, std::string{client});
        return key;
    }

    std::uint32_t* find_entry(std::uint64_t key) {
        return by_client_.find(mix(key), [this, key](std::uint32_t pos) { return entries_[pos].client == key; });
    }

    std::uint32_t* find_user_slot(std::string_view name) {
        return by_name_.find(hash_name(name), [this, name](std::uint32_t pos) { return name_of(users_[pos]) == name; });
    }
    std::uint32_t find_user(std::string_view name) {
        const auto* slot = find_user_slot(name);
        return slot ? *slot - 1 : k_no_user;
    }

    std::uint32_t add_user(std::string_view name) {
        if (names_.size() + name.size() > names_.capacity()) {
            names_.reserve(names_.size() + name.size() + names_.size() / 4 + 32);
        }
        const auto at = static_cast<std::uint32_t>(names_.size());
        names_.append(name);
        std::uint32_t u = free_user_;
        if (u != k_no_user) {
            free_user_ = users_[u].name_at;
            users_[u] = {at, static_cast<std::uint32_t>(name.size()), 0};
        } else {
            reserve_one_more(users_);
            u = static_cast<std::uint32_t>(users_.size());
            users_.push_back({at, static_cast<std::uint32_t>(name.size()), 0});
        }
        by_name_.insert(u, hash_name(name), user_hash());
        ++live_users_;
        return u;
    }

    // One client of user `u` went; true when it was the last (the user is gone, its slot freed).
    bool drop_client_of(std::uint32_t u) {
        auto& user = users_[u];
        if (--user.clients != 0) return false;
        by_name_.erase(find_user_slot(name_of(user)), user_hash());
        dead_name_bytes_ += user.name_size;
        user.name_at = free_user_;
        free_user_ = u;
        --live_users_;
        return true;
    }

    // Removes the entry at `pos`; the last entry takes its place. True when its user went with it.
    bool remove_at(std::uint32_t pos) {
        const entry gone = entries_[pos];
        by_client_.erase(find_entry(gone.client), client_hash());
        const auto last = static_cast<std::uint32_t>(entries_.size() - 1);
        if (pos != last) {
            slot_index::point(find_entry(entries_[last].client), pos);
            entries_[pos] = entries_[last];
        }
        entries_.pop_back();
        if ((gone.client & k_named_bit) != 0) forget_name(gone.client);
        return drop_client_of(gone.user);
    }

    void forget_name(std::uint64_t key) {
        const auto it = named_->names.find(key);
        named_->numbers.erase(it->second);
        named_->names.erase(it);
        if (named_->names.empty()) named_.reset();
    }

    // After many users or clients left: the names rewritten without the departed ones' bytes,
    // the users renumbered without free slots, the arrays and indexes sized to what is left.
    // Amortised: it runs once half of a channel's names or users, or three quarters of its
    // entries' room, are waste, at least 64 of them.
    void compact_if_sparse() {
        const auto free_users = users_.size() - live_users_;
        const bool names_sparse = dead_name_bytes_ >= 64 && dead_name_bytes_ * 2 > names_.size();
        const bool users_sparse = free_users >= 64 && free_users * 2 > users_.size();
        const bool entries_sparse = entries_.capacity() >= 64 && entries_.size() * 4 < entries_.capacity();
        if (!names_sparse && !users_sparse && !entries_sparse) return;

        std::vector<std::uint32_t> renumber(users_.size(), k_no_user);
        std::vector<user_slot> users;
        users.reserve(live_users_);
        std::string names;
        names.reserve(names_.size() - dead_name_bytes_);
        for (std::size_t i = 0; i < users_.size(); ++i) {
            const auto& u = users_[i];
            if (u.clients == 0) continue;
            renumber[i] = static_cast<std::uint32_t>(users.size());
            users.push_back({static_cast<std::uint32_t>(names.size()), u.name_size, u.clients});
            names.append(name_of(u));
        }
        users_ = std::move(users);
        names_ = std::move(names);
        dead_name_bytes_ = 0;
        free_user_ = k_no_user;
        by_name_.reset(users_.size());
        const auto user_hash_fn = user_hash();
        for (std::uint32_t u = 0; u < users_.size(); ++u) by_name_.insert(u, user_hash_fn(u), user_hash_fn);

        for (auto& e : entries_) e.user = renumber[e.user];
        entries_.shrink_to_fit();
        by_client_.reset(entries_.size());
        const auto client_hash_fn = client_hash();
        for (std::uint32_t p = 0; p < entries_.size(); ++p) by_client_.insert(p, client_hash_fn(p), client_hash_fn);
    }

    std::vector<entry> entries_;
    slot_index by_client_;
    std::vector<user_slot> users_;
    slot_index by_name_;
    std::string names_;
    std::unique_ptr<named_clients> named_;
    std::size_t live_users_ = 0;
    std::size_t dead_name_bytes_ = 0;
    std::uint32_t free_user_ = k_no_user;
    std::int64_t earliest_ms_ = k_never;  // no entry expires before
};

memory_presence::memory_presence(std::function<std::int64_t()> now_ms) : now_ms_(std::move(now_ms)) {
    if (!now_ms_) now_ms_ = steady_now_ms;
}

memory_presence::~memory_presence() = default;

memory_presence::stripe& memory_presence::stripe_of(std::string_view channel) {
    return stripes_[string_hash{}(channel) % k_stripes];
}

void memory_presence::join(std::string_view channel, std::string_view client, std::string_view user,
                           std::chrono::milliseconds ttl, membership_done done) {
    auto& s = stripe_of(channel);
    bool arrived = false;
    {
        const std::lock_guard lock(s.mutex);
        const auto now = now_ms_();
        auto found = s.channels.find(channel);
        if (found == s.channels.end()) {
            found = s.channels.emplace(std::string(channel), std::make_unique<channel_table>()).first;
        }
        // Expired entries go first (once the earliest has passed), and a user goes with its last
        // entry: a user not found has no live client here.
        found->second->sweep(now);
        arrived = found->second->join(client, user, now + ttl.count());
    }
    done(arrived);
}

memory_presence::channel_map::iterator memory_presence::find_live(stripe& s, std::string_view channel) {
    const auto found = s.channels.find(channel);
    if (found != s.channels.end()) found->second->sweep(now_ms_());
    return found;
}

void memory_presence::leave(std::string_view channel, std::string_view client, membership_done done) {
    auto& s = stripe_of(channel);
    bool departed = false;
    {
        const std::lock_guard lock(s.mutex);
        const auto found = find_live(s, channel);
        if (found != s.channels.end()) {
            departed = found->second->leave(client);
            if (found->second->empty()) s.channels.erase(found);
        }
    }
    done(departed);
}

void memory_presence::users(std::string_view channel, count_done done) {
    auto& s = stripe_of(channel);
    std::size_t count = 0;
    {
        const std::lock_guard lock(s.mutex);
        const auto found = find_live(s, channel);
        if (found != s.channels.end()) count = found->second->users();
    }
    done(count);
}

void memory_presence::query(std::string_view channel, query_done done) {
    auto& s = stripe_of(channel);
    presence_state state;
    {
        const std::lock_guard lock(s.mutex);
        const auto found = find_live(s, channel);
        if (found != s.channels.end()) {
            found->second->fill(state);
            if (found->second->empty()) s.channels.erase(found);
        }
    }
    done(std::move(state));
}

std::size_t memory_presence::sweep() {
    std::size_t removed = 0;
    for (auto& s : stripes_) {
        const std::lock_guard lock(s.mutex);
        const auto now = now_ms_();
        for (auto it = s.channels.begin(); it != s.channels.end();) {
            removed += it->second->sweep(now);
            it = it->second->empty() ? s.channels.erase(it) : std::next(it);
        }
    }
    return removed;
}

std::size_t memory_presence::entries() const {
    std::size_t n = 0;
    for (const auto& s : stripes_) {
        const std::lock_guard lock(s.mutex);
        for (const auto& [name, ch] : s.channels) n += ch->clients();
    }
    return n;
}

}  // namespace zena::engine
