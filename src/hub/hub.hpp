#pragma once
// One event-loop thread's share of the connections: who is here, by user, and delivery to them.
//
// Threading: owned by one thread; every method is called on that thread only (other threads
// reach it through hub_set, which posts). No locks. Delivery hands each target connection the
// same shared frame; a connection over its send budget closes itself (see connection::send).

#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
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
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // Adds a connection (and counts it in the registry). Ids are unique per process.
    void add(std::shared_ptr<connection> conn);
    // Removes a connection; a no-op for an id that is not here (removal is idempotent).
    void remove(connection_id id);

    // Queues `message` to every connection of `user`; returns how many took it.
    std::size_t send_to_user(std::string_view user, const protocol::outbound& message);
    // Queues `message` to every connection on this thread; returns how many took it.
    std::size_t send_to_all(const protocol::outbound& message);

    // Starts closing every connection of `user`; returns how many.
    std::size_t close_user(std::string_view user, protocol::close_code code, std::string_view reason);
    // Starts closing every connection; returns how many.
    std::size_t close_all(protocol::close_code code, std::string_view reason);

    // Heartbeat tick for every connection; returns how many were terminated.
    std::size_t heartbeat();

    // Token expiry: connection `id` (already added) is closed with 1008 "token expired" by the
    // first expire() at or after `at_s` (seconds on the caller's clock). A later call moves
    // the deadline (a refreshed token); removal forgets it.
    void set_expiry(connection_id id, std::int64_t at_s);
    // Closes the connections whose deadline has come; returns how many.
    std::size_t expire(std::int64_t now_s);

    std::size_t size() const { return all_.size(); }
    std::size_t user_connections(std::string_view user) const;

private:
    // Snapshot of the connections, for the operations that may end connections while iterating.
    std::vector<std::shared_ptr<connection>> snapshot() const { return all_; }

    user_registry& registry_;
    static constexpr std::int64_t k_no_deadline = std::numeric_limits<std::int64_t>::min();
    struct slot {
        std::size_t pos;                        // in all_
        std::int64_t deadline = k_no_deadline;  // the token's, when it has one
    };
    struct expiry {
        std::int64_t at;
        connection_id id;
    };
    // Rebuilds expiries_ from index_ once stale entries outnumber live ones.
    void compact_expiries();

    // Dense array for fast fan-out, with each connection's position for O(1) removal.
    std::vector<std::shared_ptr<connection>> all_;
    std::unordered_map<connection_id, slot> index_;
    // Most users have one connection here: it is held inline, with no allocation of its own.
    std::unordered_map<std::string, boost::container::small_vector<connection*, 1>, string_hash, std::equal_to<>>
        by_user_;
    // Token deadlines as a min-heap, 16 bytes a connection. A moved deadline or a removed
    // connection leaves its old entry behind; expire() skips an entry that no longer matches
    // the connection's slot, and compact_expiries() drops them in bulk.
    std::vector<expiry> expiries_;
    std::size_t deadlines_ = 0;  // connections with a deadline
};

}  // namespace zena::hub
