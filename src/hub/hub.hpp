#pragma once
// One event-loop thread's share of the connections: who is here, by user, and delivery to them.
//
// Threading: owned by one thread; every method is called on that thread only (other threads
// reach it through hub_set, which posts). No locks. Delivery hands each target connection the
// same shared frame; a connection over its send budget closes itself (see connection::send).

#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub/connection.hpp"
#include "hub/user_registry.hpp"

namespace zena::hub {

class hub {
public:
    explicit hub(user_registry& registry) : registry_(registry) {}
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // Adds a connection (and counts it in the registry); it is in no hub yet.
    void add(std::shared_ptr<connection> conn);
    // Removes a connection; a no-op for one that is not here (removal is idempotent).
    void remove(connection& conn);

    // Queues `message` to every connection of `user`; returns how many took it.
    std::size_t send_to_user(std::string_view user, const ws::outbound& message);
    // Queues `message`, the event at (`epoch`, `seq`) of `channel` (seq 0: not stored), to every
    // connection that holds `channel` here (a personal channel, user:<id>, is held by each
    // connection of its user), through the replay gate of those that have one; returns how many
    // took it.
    std::size_t send_to_channel(std::string_view channel, const ws::outbound& message, std::string_view epoch = {},
                                std::uint64_t seq = 0);
    // Connections a channel message leaves out: every one of `user` (when not empty), and the one
    // with id `conn_id` (when not 0).
    struct exclusion {
        std::string_view user;
        connection_id conn_id = 0;
        bool excludes(const zena::hub::connection& c) const {
            return (!user.empty() && c.user_id() == user) || (conn_id != 0 && c.id() == conn_id);
        }
        bool empty() const { return user.empty() && conn_id == 0; }
    };
    std::size_t send_to_channel(std::string_view channel, const ws::outbound& message, std::string_view epoch,
                                std::uint64_t seq, const exclusion& except);

    // `conn` (added) holds `channel` (not a personal one) through `sub`, which it owns and keeps
    // at one address until unsubscribe(); false, and nothing changes, when `sub` is already
    // indexed. The hub's first holder of a channel is reported to the registry.
    bool subscribe(connection& conn, std::string_view channel, subscription& sub);
    // Lets go of it; false when `sub` was not indexed.
    bool unsubscribe(std::string_view channel, subscription& sub);
    // Connections here that hold `channel` (not a personal one).
    std::size_t channel_holders(std::string_view channel) const;

    // The backend's subscriptions: every connection of `user` here is asked to take (or leave)
    // `channel`; returns how many did.
    std::size_t subscribe_user(std::string_view user, std::string_view channel);
    std::size_t unsubscribe_user(std::string_view user, std::string_view channel);
    // Queues `message` to every connection on this thread at the turn's end, when the hub visits
    // each connection once with all the turn's broadcasts (visit()). Returns how many
    // connections are here to get it: one that is closing, or that drops it when the visit
    // comes (an ephemeral message to a connection behind), is counted too; delivered() counts
    // what the visit queued. A turn that publishes to everyone many times then fetches each
    // connection's object and queue once, not once per publish (docs/architecture.md, "The
    // visit").
    std::size_t send_to_all(const ws::outbound& message);
    // Gives every connection here the broadcasts queued since the last visit, in the order they
    // were made. The event loop calls it (through visit_pending) before its flush, and every
    // other way a frame reaches a connection here calls it first: the hub's other sends and
    // changes, and a connection's own sends (connection::send's implementations, through
    // visit_pending). So frames reach a connection in the order this thread made them, and a
    // connection added after a broadcast does not get it.
    void visit();
    // The visit of this thread's hub, if it has broadcasts waiting; cheap when it has none.
    static void visit_pending() {
        if (pending_here_ != nullptr) pending_here_->visit();
    }
    // What the waiting broadcasts will queue on this thread: to how many connections, and how
    // many frames in all (the turn policy counts them with the flush's, net::worker). Every
    // connection here counts, also one that waits for its socket (its frames will be written
    // from that wait, not by the flush) or is closing: the turn's budget is then a little
    // longer than the flush it saves up for.
    static std::size_t pending_connections() { return pending_here_ != nullptr ? pending_here_->all_.size() : 0; }
    static std::size_t pending_frames() {
        return pending_here_ != nullptr ? pending_here_->deferred_.size() * pending_here_->all_.size() : 0;
    }

    // Starts closing every connection of `user`; returns how many.
    std::size_t close_user(std::string_view user, ws::close_code code, std::string_view reason);
    // Starts closing every connection; returns how many.
    std::size_t close_all(ws::close_code code, std::string_view reason);

    // Heartbeat tick for every connection; returns how many were terminated.
    std::size_t heartbeat();

    // Token expiry: `conn` (already added; otherwise a no-op) is closed with 1008 "token
    // expired" by the first expire() at or after `at_s` (seconds on the caller's clock). A later
    // call moves the deadline (a refreshed token); removal forgets it.
    void set_expiry(connection& conn, std::int64_t at_s);
    // Closes the connections whose deadline has come; returns how many.
    std::size_t expire(std::int64_t now_s);

    std::size_t size() const { return all_.size(); }
    // Messages this hub has queued to its connections since it started (every send_to_*): the
    // page's per-thread deliveries (docs/admin.md). Read on the hub's thread, like the rest.
    std::uint64_t delivered() const { return delivered_; }
    std::size_t user_connections(std::string_view user) const;

private:
    // Adds a send's count to delivered_ and returns it.
    std::size_t counted(std::size_t n) {
        delivered_ += n;
        return n;
    }
    // Snapshot of the connections, for the operations that may end connections while iterating.
    std::vector<std::shared_ptr<connection>> snapshot() const { return all_; }

    bool holds(const connection& conn) const {
        return conn.hub_pos_ < all_.size() && all_[conn.hub_pos_].get() == &conn;
    }
    struct deadline {
        std::int64_t at;
        connection* conn;
    };
    // The deadline heap. place() puts `d` at `i` and tells its connection where; reorder()
    // restores the order around an entry whose deadline moved (the sifts, up then down);
    // drop_deadline() takes a connection's entry out.
    void place(std::size_t i, deadline d);
    void reorder(std::size_t i);
    void sift_up(std::size_t i);
    void sift_down(std::size_t i);
    void drop_deadline(connection& conn);

    // Queues to one holder, through its gate if it has one.
    static bool offer(connection& conn, subscription& sub, const ws::outbound& message, std::string_view epoch,
                      std::uint64_t seq) {
        if (!sub.gate) return conn.send(message);
        return conn.send_gated(sub, message, epoch, seq);
    }
    struct holder {
        connection* conn;
        subscription* sub;
    };

    user_registry& registry_;
    // The holders of each channel (not the personal ones), dense for fan-out; each subscription
    // knows its place, for O(1) removal.
    std::unordered_map<std::string, std::vector<holder>, string_hash, std::equal_to<>> by_channel_;
    // Dense array for fast fan-out; each connection knows its position, for O(1) removal.
    std::vector<std::shared_ptr<connection>> all_;
    std::uint64_t delivered_ = 0;  // delivered()
    // The broadcasts of this turn, not yet given to the connections (visit()), and the hub of
    // this thread that has some (null: none has).
    std::vector<ws::outbound> deferred_;
    std::vector<ws::outbound> visiting_;  // the visit's batch; its storage is kept for the next
    static inline constinit thread_local hub* pending_here_ = nullptr;
    // Most users have one connection here: it is held inline, with no allocation of its own.
    std::unordered_map<std::string, boost::container::small_vector<connection*, 1>, string_hash, std::equal_to<>>
        by_user_;
    // Token deadlines as a min-heap, 16 bytes a connection that has one. Each connection knows
    // its entry's position, so a refresh moves the entry and a departure removes it in
    // O(log n): the heap holds exactly the live deadlines.
    std::vector<deadline> deadlines_;
};

}  // namespace zena::hub
