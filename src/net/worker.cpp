#include "net/worker.hpp"

#include <algorithm>
#include <utility>

namespace zena::net {

namespace asio = boost::asio;

void worker::admit(ws::plain_socket socket, std::shared_ptr<asio::ssl::context> tls) {
    if (handshaking_ < k_max_handshaking && waiting_.empty()) {
        ++handshaking_;
        return start_session(std::move(socket), std::move(tls));
    }
    waiting_.push_back({std::move(socket), std::move(tls)});
    arm_handshake_timer();
}

void worker::handshake_done() {
    --handshaking_;
    ++finished_since_tick_;
    if (handshaking_ < k_max_handshaking) start_next(1);
}

void worker::start_next(std::size_t count) {
    if (loop.io.stopped()) return;  // shutting down: the waiting sockets just close
    for (; count > 0 && !waiting_.empty(); --count) {
        auto next = std::move(waiting_.front());
        waiting_.pop_front();
        ++handshaking_;
        // From the loop, not inside the session that just finished.
        asio::post(loop.io, [this, next = std::move(next)]() mutable {
            start_session(std::move(next.socket), std::move(next.tls));
        });
    }
}

void worker::arm_handshake_timer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    finished_since_tick_ = 0;
    handshake_timer_.expires_after(k_handshake_tick);
    handshake_timer_.async_wait([this](const boost::system::error_code& ec) {
        timer_armed_ = false;
        if (ec || waiting_.empty()) return;
        // No handshake finished in a whole tick: the ones in progress are slow (or stalled on
        // purpose). They keep their own deadline; the line moves on without them.
        if (finished_since_tick_ == 0) start_next(k_max_handshaking);
        arm_handshake_timer();
    });
}

void worker::run() {
    hub::hub_set::enter(loop.index);
    // A turn runs the handlers that are ready, then writes what they queued. Waiting longer
    // batches more frames into each connection's write, but delays them all. The turn goes on
    // while it has lasted less than the flush it is saving up for is expected to take (a few
    // microseconds per connection with frames), so batching at most doubles a frame's wait; at
    // least k_min_turn, at most k_max_handlers handlers, and no more than a full batch
    // (batch_full). API answers held back by the pacing (after_flush) go out after the flush.
    // Before the flush, the turn's broadcasts to everyone reach each connection in one visit
    // (hub::visit). When nothing is ready but this node's own publishes are on their way back
    // through the engine (Redis Pub/Sub: engine::broker::coming), the turn waits for them while
    // it has lasted less than the flush is expected to take, so that they join this flush
    // instead of costing every connection a write of its own. Only while a millisecond or more
    // is left: epoll waits in whole milliseconds, so a shorter wait would overrun the budget.
    // That also keeps small flushes (targeted publishes, each to other connections, which no
    // wait would save a write) from waiting at all (docs/architecture.md, "Waiting for the
    // engine").
    using clock = std::chrono::steady_clock;
    constexpr std::size_t k_max_handlers = 4096;
    constexpr auto k_min_turn = std::chrono::microseconds(50);
    constexpr auto k_flush_cost = std::chrono::nanoseconds(3000);  // per connection with frames
    for (;;) {
        const auto start = clock::now();
        std::size_t ran = 0;
        const auto flush_cost = [&] { return k_flush_cost * batch_connections(); };
        const auto budget = [&] { return std::max<clock::duration>(k_min_turn, flush_cost()); };
        const auto wait_for_engine = [&] {
            if (engine == nullptr || engine->coming() == 0) return false;
            const auto left = flush_cost() - (clock::now() - start);
            return left >= std::chrono::milliseconds(1) && loop.io.run_one_for(left) > 0;
        };
        while (ran < k_max_handlers) {
            if (loop.io.poll_one() == 0 && !wait_for_engine()) break;
            ++ran;
            // Answers that joined a small batch, which a fan-out has since made large: they go
            // now, not after the longer turn it brings (answer_joins_flush).
            if (loop.flush.has_writers() && !batch_small()) loop.flush.run_writers();
            if (batch_full()) break;
            if (ran % 16 != 0) continue;
            if (clock::now() - start > budget()) break;
        }
        hub::hub::visit_pending();
        loop.flush.run();
        if (loop.io.stopped()) return;
        const bool answered = !after_flush_.empty();
        if (answered) {
            auto answers = std::exchange(after_flush_, {});
            for (auto& answer : answers) answer();
            loop.flush.run();  // the answers (they join the flush's ring: ring_writer)
        }
        // Nothing was ready and nothing waits to be written (a flush's callbacks may have queued
        // more): wait for the next event.
        if (ran == 0 && !answered && loop.flush.empty() && loop.io.run_one() == 0) return;
    }
}

}  // namespace zena::net
