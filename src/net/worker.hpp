#pragma once
// One event-loop thread: its turn policy (how long a turn batches frames before the flush, and
// when a publisher's answer waits for the flush), its heartbeat and token-expiry timers, and the
// line of accepted sockets waiting for their handshake. The pieces its sessions use (io_context,
// flush queue, log limiter) are its session::loop.
//
// Threading: belongs to one event-loop thread; only that thread touches it, but for `loop.io`,
// to which any thread may post.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "hub/hub.hpp"
#include "session/context.hpp"
#include "ws/asio.hpp"

namespace zena::net {

struct worker {
    explicit worker(session::loop& loop)
        : loop(loop), heartbeat_timer(loop.io), expiry_timer(loop.io), handshake_timer_(loop.io) {}

    // Runs the event loop until stopped: each turn runs the handlers that are ready, then
    // flushes the connections they queued frames on (the cork).
    void run();

    session::loop& loop;
    // This node's publishes still coming back to it through the engine (engine::broker::coming):
    // a turn with frames to write waits for them within its budget. Null: never waits.
    const engine::broker* engine = nullptr;
    boost::asio::steady_timer heartbeat_timer;
    boost::asio::steady_timer expiry_timer;  // token expiry: the hub's expire() every second

    // Pacing publishers by delivery. One write to a client costs some microseconds whatever it
    // carries, so a flush that writes several frames per connection delivers many times more
    // than one that writes one; but a frame waits for the whole flush it is in. Once this turn's
    // batch holds k_pace_frames frames per connection, a publish still joins it, but its HTTP
    // answer waits for the flush (after_flush): the publisher sends its next message when its
    // last is on the wire, instead of queueing it behind a whole flush (docs/architecture.md,
    // "Publisher pacing").
    static constexpr std::size_t k_pace_frames = 16;
    bool answer_after_flush() const { return batch_holds(k_pace_frames); }
    // The turn ends once its batch holds k_turn_frames frames per connection: a window of 64
    // publishes, or a burst of them, then costs each connection one write, not two to four
    // (docs/architecture.md, "The turn").
    static constexpr std::size_t k_turn_frames = 64;
    bool batch_full() const { return batch_holds(k_turn_frames); }
    // An API answer joins the turn's flush (ws::ring_writer: the same io_uring submission as
    // the frames, not a system call of its own) while the turn's batch is small, under
    // k_join_connections connections: targeted publishes, where the answer is a third of the
    // writes and waits at most the rest of a short turn. Past that (a fan-out) it goes at once,
    // as its one write is nothing beside the flush's, and a publisher answered at once may get
    // its next message into this turn's batch (docs/architecture.md, "API answers in the
    // flush").
    // Should a fan-out make the batch larger later in the turn, the answers that joined go at
    // that point, in one submission of their own (flush_queue::run_writers).
    static constexpr std::size_t k_join_connections = 256;
    bool answer_joins_flush() const { return loop.flush.batches() && batch_small(); }
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
    // The connections this turn will write, and the frames they will hold: those queued, and
    // the broadcasts the hub gives every connection at the turn's end (hub::visit).
    std::size_t batch_connections() const { return std::max(loop.flush.size(), hub::hub::pending_connections()); }
    std::size_t batch_frames() const { return loop.flush.frames() + hub::hub::pending_frames(); }
    bool batch_small() const { return batch_connections() < k_join_connections; }
    // The connections this turn will write hold `per_connection` frames each on average.
    bool batch_holds(std::size_t per_connection) const {
        const auto connections = batch_connections();
        return connections > 0 && batch_frames() >= per_connection * connections;
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
