#pragma once
// What every network session needs, passed in (never global), and the per-thread worker that
// owns a share of the connections.
//
// Threading: `services` is shared by all threads and only read after start (its counters are
// atomic). A `worker` belongs to one event-loop thread; only that thread touches its hub,
// limiter and timers.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/server_api.hpp"
#include "auth/jwt.hpp"
#include "auth/origin_policy.hpp"
#include "config/settings.hpp"
#include "hub/hub.hpp"
#include "net/address_limits.hpp"
#include "net/beast_fwd.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "protocol/catalog.hpp"
#include "protocol/client_message.hpp"
#include "ws/endpoint.hpp"

namespace zena::net {

// Who sent a client event.
struct client_event_source {
    hub::connection_id connection;
    std::string_view user_id;
};

// Where valid client events go. Today they are logged and counted; the upstream (webhook,
// Redis stream) plugs in here.
using client_event_handler = std::function<void(const client_event_source&, const protocol::client_message&)>;

struct services {
    const config::settings& settings;
    const auth::jwt_verifier& verifier;
    const protocol::catalog& catalog;
    api::server_api& api;
    observability::metrics& metrics;
    hub::user_registry& registry;
    client_event_handler on_client_event;
    auth::origin_policy origins;           // websocket.allowed_origins
    address_limits addresses;              // limits.*_per_address
    ws::endpoint::limits endpoint_limits;  // every WebSocket connection's (held by reference)
    std::atomic<bool> draining{false};
    std::atomic<std::uint64_t> next_connection_id{1};
    std::atomic<std::int64_t> open_sockets{0};  // WebSockets admitted and not yet destroyed
};

// A WebSocket's share of the limits (limits.max_connections, the per-address ones), taken at
// the upgrade and given back when the session that holds it is destroyed, however it ended.
class admission {
public:
    admission() = default;
    // `address_key` was admitted by services.addresses; open_sockets was counted.
    admission(services& s, std::string address_key) : services_(&s), key_(std::move(address_key)) {}
    admission(admission&& other) noexcept
        : services_(std::exchange(other.services_, nullptr)), key_(std::move(other.key_)) {}
    admission& operator=(admission&&) = delete;
    admission(const admission&) = delete;
    admission& operator=(const admission&) = delete;
    ~admission() {
        if (!services_) return;
        services_->addresses.release(key_);
        services_->open_sockets.fetch_sub(1, std::memory_order_relaxed);
    }

private:
    services* services_ = nullptr;
    std::string key_;
};

struct worker {
    worker(std::size_t index, hub::hub& hub, double invalid_log_per_second)
        : index(index),
          hub(hub),
          invalid_message_log(invalid_log_per_second),
          heartbeat_timer(io),
          expiry_timer(io),
          handshake_timer_(io) {}

    // Runs the event loop until stopped: each turn runs the handlers that are ready, then
    // flushes the connections they queued frames on (the cork).
    void run();

    boost::asio::io_context io{1};
    std::size_t index;
    hub::hub& hub;
    observability::log_limiter invalid_message_log;
    boost::asio::steady_timer heartbeat_timer;
    boost::asio::steady_timer expiry_timer;  // token expiry: hub.expire() every second
    ws::flush_queue flush;                   // connections with frames to write this turn

    // Pacing publishers by delivery. One write to a client costs some microseconds whatever it
    // carries, so a flush that writes several frames per connection delivers many times more
    // than one that writes one; but a frame waits for the whole flush it is in. Once this turn's
    // batch holds k_pace_frames frames per connection, a publish still joins it, but its HTTP
    // answer waits for the flush (after_flush): the publisher sends its next message when its
    // last is on the wire, instead of queueing it behind a whole flush. At twice that the turn
    // ends (docs/architecture.md, "Publisher pacing").
    static constexpr std::size_t k_pace_frames = 16;
    bool answer_after_flush() const { return batch_holds(k_pace_frames); }
    bool batch_full() const { return batch_holds(2 * k_pace_frames); }
    // Runs `fn` on this thread once the coming flush has written.
    void after_flush(std::function<void()> fn) { after_flush_.push_back(std::move(fn)); }

    // Accepted sockets become HTTP sessions at most k_max_handshaking at a time per thread,
    // counted until their first request is read. The others wait as bare sockets, in order. A
    // burst of connections then costs a socket each while it waits, not a session with its
    // buffers, parser and pending reads (about 3 KiB), whose freed memory would be left in holes
    // between the long-lived connections. Waiting adds no work: the handshakes are done at the
    // same rate, one after the other. Slow clients cannot hold the line: whenever
    // k_handshake_tick passes with sockets waiting and no handshake finished, the next
    // k_max_handshaking start anyway.
    static constexpr std::size_t k_max_handshaking = 128;
    static constexpr std::chrono::milliseconds k_handshake_tick{50};
    using start_fn = std::function<void(ws::plain_socket, std::shared_ptr<boost::asio::ssl::context>)>;
    start_fn start_session;  // makes and runs the session (set by the server)
    // A socket accepted for this thread (`tls`: its TLS context, or null); on this thread.
    void admit(ws::plain_socket socket, std::shared_ptr<boost::asio::ssl::context> tls);
    // A session's first request was read (or it ended before): the next socket may start.
    void handshake_done();

private:
    // The connections this turn will write hold `per_connection` frames each on average.
    bool batch_holds(std::size_t per_connection) const {
        return flush.size() > 0 && flush.frames() >= per_connection * flush.size();
    }
    void start_next(std::size_t count);
    void arm_handshake_timer();

    struct waiting_socket {
        ws::plain_socket socket;
        std::shared_ptr<boost::asio::ssl::context> tls;
    };
    std::vector<std::function<void()>> after_flush_;
    std::size_t handshaking_ = 0;
    std::size_t finished_since_tick_ = 0;
    std::deque<waiting_socket> waiting_;
    boost::asio::steady_timer handshake_timer_;  // armed while sockets wait
    bool timer_armed_ = false;
};

}  // namespace zena::net
