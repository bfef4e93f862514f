#pragma once
// A client connection as the hub sees it, whatever the transport underneath.
//
// Threading: a connection belongs to one event-loop thread, and the hub calls it only on that
// thread. Its methods queue work and return at once; they never call back into the hub
// synchronously (removal happens later, from the connection's own completion handlers), so the
// hub may call them while iterating its tables.

#include <cstdint>
#include <string>
#include <string_view>

#include "ws/close_codes.hpp"
#include "ws/outbound.hpp"

namespace zena::hub {

using connection_id = std::uint64_t;

class hub;

class connection {
public:
    connection(connection_id id, std::string user_id) : id_(id), user_id_(std::move(user_id)) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    virtual ~connection() = default;

    connection_id id() const { return id_; }
    const std::string& user_id() const { return user_id_; }

    // Queues a message for sending, by its delivery class: a latest message replaces a queued
    // one with the same key; an ephemeral one is dropped when frames are already waiting; an
    // ordered one that would pass the send-queue budget makes the connection say it fell behind
    // and close with close_code::slow_consumer. True when the message was queued (or replaced
    // an older one). Never blocks.
    virtual bool send(const ws::outbound& message) = 0;

    // Starts the close handshake with `code`; later sends are refused.
    virtual void close(ws::close_code code, std::string_view reason) = 0;

    // One heartbeat tick: if the previous ping was not answered, terminates the connection and
    // returns false; otherwise sends a new ping (unless closing: a close handshake has its own
    // deadline) and returns true.
    virtual bool heartbeat() = 0;

protected:
    // For a connection that authenticates after its handshake (a token sent in-band): set once,
    // before the connection is added to a hub.
    void set_user_id(std::string user_id) { user_id_ = std::move(user_id); }

private:
    friend class hub;
    static constexpr std::uint32_t k_nowhere = UINT32_MAX;

    connection_id id_;
    std::string user_id_;
    // Its hub's bookkeeping, kept here so that the hub needs no index of its own: the place in
    // the hub's array of connections, and in its heap of token deadlines (while it has one).
    std::uint32_t hub_pos_ = k_nowhere;
    std::uint32_t deadline_pos_ = k_nowhere;
};

}  // namespace zena::hub
