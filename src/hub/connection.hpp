#pragma once
// A client connection as the hub sees it, whatever the transport underneath.
//
// Threading: a connection belongs to one event-loop thread, and the hub calls it only on that
// thread. Its methods queue work and return at once; they never call back into the hub
// synchronously (removal happens later, from the connection's own completion handlers), so the
// hub may call them while iterating its tables.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ws/close_codes.hpp"
#include "ws/outbound.hpp"

namespace zena::hub {

using connection_id = std::uint64_t;

class hub;

// What a connection that is being replayed the events it missed on a channel does with the live
// ones (docs/channels.md, "no gap and no duplicate"): while `holding`, they wait (the session
// keeps them, in order) until the replay is out; after it, a live stored event of the replay's
// epoch at or below `floor` was in the replay and is dropped. The first one past the floor ends
// the gate. Set and ended by the session; the hub only asks it.
struct replay_gate {
    struct held_event {
        ws::outbound message;
        std::string epoch;
        std::uint64_t seq = 0;
    };
    bool holding = true;
    std::vector<held_event> held;  // while holding, in the order they came
    std::size_t held_bytes = 0;
    std::string epoch;
    std::uint64_t floor = 0;

    // Whether a live event at (`epoch`, `seq`) is new to the connection once the replay is out.
    // An unstored event (seq 0) always is.
    bool fresh(std::string_view e, std::uint64_t seq) const { return seq == 0 || seq > floor || e != epoch; }
};

// One connection's hold on one channel. Owned by the connection (the personal channel's is part
// of it); the hub indexes it while the connection holds the channel.
struct subscription {
    static constexpr std::uint32_t k_nowhere = UINT32_MAX;
    std::unique_ptr<replay_gate> gate;  // only around a replay
    std::uint32_t pos = k_nowhere;      // in the hub's list of the channel's holders
};

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
    // an older one). Never blocks. An implementation first calls hub::visit_pending(), so that
    // the broadcasts its thread made earlier in the turn reach the connection before it.
    virtual bool send(const ws::outbound& message) = 0;

    // A live event of a channel whose subscription has a replay gate: held, dropped as a
    // duplicate, or sent (see replay_gate). True when it was queued or held.
    virtual bool send_gated(subscription& sub, const ws::outbound& message, std::string_view epoch,
                            std::uint64_t seq) = 0;

    // The backend subscribes the connection to `channel` (docs/channels.md, server-side
    // subscriptions), or removes it; true when the connection took it (it held it, or now does).
    virtual bool subscribe_by_server(std::string_view channel) = 0;
    virtual bool unsubscribe_by_server(std::string_view channel) = 0;

    // Starts the close handshake with `code`; later sends are refused.
    virtual void close(ws::close_code code, std::string_view reason) = 0;

    // The personal channel's subscription: held by every connection from the hub's add() on.
    subscription& personal() { return personal_; }

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
    subscription personal_;
    // Its hub's bookkeeping, kept here so that the hub needs no index of its own: the place in
    // the hub's array of connections, and in its heap of token deadlines (while it has one).
    std::uint32_t hub_pos_ = k_nowhere;
    std::uint32_t deadline_pos_ = k_nowhere;
};

}  // namespace zena::hub
