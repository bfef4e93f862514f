#pragma once
// What a client session is given: the event-loop thread it lives on (`loop`, one per thread) and
// what every session shares (`shared`). Built by the app before the threads start; collaborators
// are passed in, never global.
//
// Threading: `loop` belongs to one event-loop thread, and only that thread touches its flush
// queue and log limiter (other threads reach it by posting to `io`). `shared` is read-only after
// start but for its atomic counter; the hub set's registry is thread-safe.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "engine/broker.hpp"
#include "engine/history.hpp"
#include "engine/presence.hpp"
#include "hub/hub_set.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "protocol/catalog.hpp"
#include "protocol/client_message.hpp"
#include "session/typing_board.hpp"
#include "ws/endpoint.hpp"

namespace zena::session {

// One event-loop thread's pieces that its sessions use. The thread's loop itself, its turn and
// publisher-pacing policy, is net::worker's.
struct loop {
    loop(std::size_t index, double invalid_log_per_second)
        : index(index), invalid_message_log(invalid_log_per_second) {}
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;

    boost::asio::io_context io{1};
    std::size_t index;                               // the thread's number: its hub in hub_set
    std::unique_ptr<ws::send_ring> ring;             // the flush's writes, batched (server.io_uring); none: one by one
    ws::flush_queue flush;                           // connections with frames to write this turn
    observability::log_limiter invalid_message_log;  // invalid client messages, per thread
};

// Who sent a client event.
struct client_event_source {
    hub::connection_id connection;
    std::string_view user_id;
};

// Where valid client events go: upstream (webhook, Redis stream) by their routes. It runs on the
// session's thread and must not block (the upstreams queue and send from their own threads).
using client_event_handler = std::function<void(const client_event_source&, const protocol::client_message&)>;

// The subscribe proxy's answer (docs/channels.md, grants).
enum class proxy_answer : std::uint8_t { allow, forbid, unavailable };
// Asks the subscribe proxy whether `user` may subscribe to `channel`; `done` is called once, on
// any thread. Empty: no proxy.
using subscribe_proxy_fn =
    std::function<void(std::string user, std::string channel, std::function<void(proxy_answer)> done)>;

struct shared {
    const config::settings& settings;
    const auth::jwt_verifier& verifier;
    const protocol::catalog& catalog;
    observability::metrics& metrics;
    hub::hub_set& hubs;
    client_event_handler on_client_event;
    engine::history& history;            // the channels' positions, and what a resume replays
    subscribe_proxy_fn subscribe_proxy;  // empty: none
    engine::broker& broker;              // what sessions publish themselves: presence, typing, receipts
    engine::presence& presence;          // channel presence (docs/presence.md)
    typing_board typing;                 // who is typing where, across the node's tabs
    // Held from a presence join or leave to the hand-over of its presence.join/.leave, so that
    // two tabs' transitions reach the channel in the order they happened.
    std::mutex presence_order;
    std::atomic<std::uint64_t> next_connection_id{1};
};

}  // namespace zena::session
