// The event loop's turn (net::worker::run, docs/architecture.md "The turn"): which handlers join
// a flush, and the hub's visit with the turn's broadcasts. Real connections over loopback
// sockets (tests/unit/ws/socket_pair.hpp) and the worker's own loop; a handler that runs later
// looks at what waits (the flush queue, the hub's broadcasts) to see whether the frames queued
// before it were written yet (still waiting: it joined their turn).
#include "net/worker.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hub/hub.hpp"
#include "session/context.hpp"
#include "ws/endpoint.hpp"
#include "ws/socket_pair.hpp"

namespace zena::net {
namespace {

using namespace std::chrono_literals;
using ws::testing::socket_pair;

constexpr std::string_view k_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
constexpr std::size_t k_connections = 20;

// A connection of the hub over a real socket: sends as session::client does, visiting first.
class hub_endpoint final : public hub::connection, public ws::endpoint {
public:
    hub_endpoint(hub::connection_id id, ws::transport&& stream, ws::flush_queue& flush,
                 const ws::endpoint::limits& limits)
        : connection(id, "u" + std::to_string(id)), endpoint(std::move(stream), flush, ws::endpoint::options{limits}) {}
    bool send(const ws::outbound& message) override {
        hub::hub::visit_pending();
        return enqueue(message) == queued::yes;
    }
    bool send_gated(hub::subscription&, const ws::outbound& message, std::string_view, std::uint64_t) override {
        return send(message);
    }
    bool subscribe_by_server(std::string_view) override { return false; }
    bool unsubscribe_by_server(std::string_view) override { return false; }
    void close(ws::close_code, std::string_view) override {}
    bool heartbeat() override { return true; }

protected:
    void on_message(std::string_view, bool) override {}
    void on_end() override {}
};

class WorkerTurnTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (std::size_t i = 0; i < k_connections; ++i) {
            pairs_.push_back(std::make_unique<socket_pair>(loop_.io, loop_.flush));
            auto conn = std::make_shared<hub_endpoint>(i + 1, ws::transport{pairs_.back()->take_server()}, loop_.flush,
                                                       limits_);
            conn->start(std::string(k_head), {});
            hub_.add(conn);
            conns_.push_back(std::move(conn));
        }
        for (auto& pair : pairs_) ASSERT_EQ(pair->read_head(), k_head);
    }

    void TearDown() override {
        for (auto& conn : conns_) {
            hub_.remove(*conn);
            conn->terminate();
        }
        loop_.io.restart();
        loop_.io.poll();
    }

    // The next frame: its payload is its number, counted over the test, the same frame for
    // every connection.
    ws::outbound next_message() { return {ws::frame::make(ws::opcode::text, std::to_string(sent_++))}; }

    // Queues `frames` frames to every connection directly, as a targeted send does.
    void queue(std::size_t frames) {
        for (std::size_t i = 0; i < frames; ++i) {
            const auto message = next_message();
            for (auto& conn : conns_) ASSERT_EQ(conn->enqueue(message), ws::endpoint::queued::yes);
        }
    }
    // Publishes `count` messages to everyone through the hub (given at the turn's visit).
    void broadcast(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(hub_.send_to_all(next_message()), k_connections);
    }

    // One handler queues `first` frames to every connection (`how`) and posts another that
    // adds one more each. Returns the connections waiting (for the visit or the flush) when that
    // second handler ran: all of them when it joined the first one's turn, none when the turn
    // had ended.
    enum class via { queue, hub };
    void add(via how, std::size_t count) { how == via::queue ? queue(count) : broadcast(count); }
    std::size_t run_two(std::size_t first, via how) {
        std::size_t waiting_then = SIZE_MAX;
        boost::asio::steady_timer stop(loop_.io);
        boost::asio::post(loop_.io, [&] {
            add(how, first);
            boost::asio::post(loop_.io, [&] {
                waiting_then = std::max(hub::hub::pending_connections(), loop_.flush.size());
                add(how, 1);
            });
        });
        stop.expires_after(50ms);
        stop.async_wait([&](boost::system::error_code) { loop_.io.stop(); });
        loop_.io.restart();
        worker_.run();
        return waiting_then;
    }

    // Every connection's client reads every frame sent so far, whole and in order.
    void expect_everything_arrived() {
        for (auto& pair : pairs_) {
            for (std::size_t i = 0; i < sent_; ++i) {
                const auto f = pair->next_frame();
                ASSERT_TRUE(f) << "frame " << i << " of " << sent_;
                ASSERT_EQ(f->payload, std::to_string(i));
            }
        }
    }

    session::loop loop_{0, 1.0};
    worker worker_{loop_};
    hub::user_registry registry_;
    hub::hub hub_{registry_};
    ws::endpoint::limits limits_{64 * 1024, 1024 * 1024, 1000ms};
    std::vector<std::unique_ptr<socket_pair>> pairs_;
    std::vector<std::shared_ptr<hub_endpoint>> conns_;
    std::size_t sent_ = 0;
};

// A handler that is ready joins the turn until the connections hold k_turn_frames (64) frames
// each; then the turn ends and writes, and the next handler starts a new batch.
TEST_F(WorkerTurnTest, ReadyHandler_JoinsTheTurnUntilSixtyFourFramesPerConnection) {
    static_assert(worker::k_turn_frames == 64);
    EXPECT_EQ(run_two(worker::k_turn_frames - 1, via::queue), k_connections);
    EXPECT_EQ(run_two(worker::k_turn_frames, via::queue), 0U) << "a full batch ends the turn";
    expect_everything_arrived();
}

// Broadcasts to everyone wait for the turn's end and reach each connection in one visit
// (docs/architecture.md, "The visit"); the turn counts them toward its full batch.
TEST_F(WorkerTurnTest, TheTurnsBroadcasts_ReachEveryConnectionInOrder_AndCountTowardTheFullBatch) {
    EXPECT_EQ(run_two(worker::k_turn_frames - 1, via::hub), k_connections) << "63 waiting broadcasts: the turn goes on";
    EXPECT_EQ(run_two(worker::k_turn_frames, via::hub), 0U) << "64 make a full batch: the turn ends, visits and writes";
    EXPECT_EQ(hub::hub::pending_connections(), 0U) << "the last turn visited";
    EXPECT_EQ(hub_.delivered(), sent_ * k_connections);
    expect_everything_arrived();
}

}  // namespace
}  // namespace zena::net
