#include "ws/endpoint.hpp"

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "observability/metrics.hpp"
#include "ws/close_codes.hpp"
#include "ws/socket_pair.hpp"

namespace zena::ws {
namespace {

using namespace std::chrono_literals;
using testing::pattern;
using testing::server_frame;
using testing::socket_pair;

constexpr std::string_view k_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

// An endpoint that records what its owner would be told.
class recording_endpoint final : public endpoint {
public:
    using endpoint::endpoint;

    std::vector<std::pair<std::string, bool>> messages;  // (data, text)
    int pongs = 0;
    int ends = 0;

protected:
    void on_message(std::string_view data, bool text) override { messages.emplace_back(std::string(data), text); }
    void on_pong() override { ++pongs; }
    void on_end() override { ++ends; }
};

outbound ordered(std::string_view payload, opcode op = opcode::text) {
    return {frame::make(op, payload), delivery_class::ordered, 0};
}
outbound latest(std::string_view payload, std::uint64_t key) {
    return {frame::make(opcode::text, payload), delivery_class::latest, key};
}
outbound ephemeral(std::string_view payload) {
    return {frame::make(opcode::text, payload), delivery_class::ephemeral, 0};
}

// Every test runs twice: the flush writing with one system call per connection, and through the
// thread's io_uring (ws::send_ring, the server's default).
class EndpointTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        if (!GetParam()) return;
        std::string why;
        ring = send_ring::open(why);
        ASSERT_TRUE(ring) << "io_uring refused: " << why;
        flush.use(ring.get());
    }

    // Buffers small enough that a 64 KiB frame fills them many times over.
    static constexpr socket_pair::buffers k_small_buffers{.server_send = 4096, .client_receive = 4096};
    static constexpr std::size_t k_big = 64 * 1024;

    // Connects, starts the endpoint with a 101 head and reads the head on the client side.
    void open(socket_pair::buffers sizes = {}) {
        pair.emplace(io, flush, sizes);
        conn = std::make_shared<recording_endpoint>(transport{pair->take_server()}, flush, endpoint::options{limits});
        conn->start(std::string(k_head), {});
        ASSERT_EQ(pair->read_head(), k_head);
    }

    void TearDown() override {
        if (conn) conn->terminate();
        io.restart();
        io.poll();
    }

    // The text of every frame up to (not including) the text frame `marker`; fails at the deadline.
    std::vector<std::string> texts_until(std::string_view marker) {
        std::vector<std::string> texts;
        for (;;) {
            auto f = pair->next_frame();
            if (!f) {
                ADD_FAILURE() << "no frame " << marker << " after " << texts.size() << " frames";
                return texts;
            }
            if (f->payload == marker) return texts;
            texts.push_back(std::move(f->payload));
        }
    }

    // Reads slowly, at most `chunk` bytes between two turns of the loop, until `total` bytes
    // (after what is already held) have come; false at the deadline.
    bool read_slowly(std::size_t total, std::size_t chunk = 4096) {
        const auto deadline = testing::clock::now() + testing::k_wait;
        while (pair->pending().size() < total) {
            if (testing::clock::now() >= deadline || pair->eof()) return false;
            pair->read_available(chunk);
            pair->turn();
        }
        return true;
    }

    boost::asio::io_context io{1};
    std::unique_ptr<send_ring> ring;
    flush_queue flush;
    endpoint::limits limits{64 * 1024, 1024 * 1024, 1000ms};
    std::optional<socket_pair> pair;
    std::shared_ptr<recording_endpoint> conn;
};

// ---- writing

TEST_P(EndpointTest, FramesQueuedInOneTurn_GoOutTogetherInOrderAfterFlush) {
    open();
    const auto small = ordered("hello");
    const auto medium = ordered(pattern(300, 1));  // 16-bit length
    const auto binary = ordered(pattern(4000, 2), opcode::binary);
    EXPECT_EQ(conn->enqueue(small), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(medium), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(binary), endpoint::queued::yes);

    // Nothing is written when a message is queued: the turn's flush writes them.
    EXPECT_EQ(pair->read_available(), 0U);
    EXPECT_EQ(flush.size(), 1U) << "one connection to flush";
    EXPECT_EQ(flush.frames(), 3U);
    flush.run();
    EXPECT_EQ(flush.size(), 0U);

    // All of it is there at once, without another turn of the loop.
    const std::string expected =
        std::string(small.frame->wire()) + std::string(medium.frame->wire()) + std::string(binary.frame->wire());
    pair->read_available();
    ASSERT_EQ(pair->pending().size(), expected.size());
    EXPECT_EQ(pair->pending(), expected);

    // The headers, byte for byte: FIN + text, 7-bit length; FIN + text, 126 + 16-bit length.
    const auto& bytes = pair->pending();
    EXPECT_EQ(bytes.substr(0, 7), std::string("\x81\x05hello"));
    EXPECT_EQ(bytes.substr(7, 4), std::string("\x81\x7e\x01\x2c", 4));
    EXPECT_EQ(bytes.substr(7 + 4 + 300, 4), std::string("\x82\x7e\x0f\xa0", 4));

    std::vector<server_frame> frames;
    while (auto f = pair->next_frame(0ms)) frames.push_back(std::move(*f));
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_EQ(frames[0].op, opcode::text);
    EXPECT_EQ(frames[0].payload, "hello");
    EXPECT_EQ(frames[1].payload, pattern(300, 1));
    EXPECT_EQ(frames[2].op, opcode::binary);
    EXPECT_EQ(frames[2].payload, pattern(4000, 2));
    for (const auto& f : frames) {
        EXPECT_TRUE(f.fin);
        EXPECT_FALSE(f.masked) << "a server never masks";
        EXPECT_FALSE(f.rsv1);
    }
}

// A connection that takes batches keeps its queue's storage from one to the next (a fan-out's
// turns would otherwise give it back and grow it again at each); a small drain gives it back.
TEST_P(EndpointTest, DrainedBatch_KeepsTheQueueStorageForTheNext_ASmallDrainGivesItBack) {
    open();
    for (int i = 0; i < 8; ++i) ASSERT_EQ(conn->enqueue(ordered("a" + std::to_string(i))), endpoint::queued::yes);
    flush.run();
    const auto kept = conn->queue_capacity();
    EXPECT_GE(kept, 8U) << "a drained batch of 8 keeps its storage";
    for (int i = 0; i < 8; ++i) ASSERT_EQ(conn->enqueue(ordered("b" + std::to_string(i))), endpoint::queued::yes);
    EXPECT_EQ(conn->queue_capacity(), kept) << "the next batch is queued in it";
    flush.run();
    EXPECT_EQ(conn->queue_capacity(), kept);

    conn->ping();
    flush.run();
    EXPECT_EQ(conn->queue_capacity(), 0U) << "a drain of one frame gives the storage back";

    for (const auto* prefix : {"a", "b"}) {
        for (int i = 0; i < 8; ++i) {
            auto f = pair->next_frame();
            ASSERT_TRUE(f);
            EXPECT_EQ(f->payload, prefix + std::to_string(i));
        }
    }
    auto ping = pair->next_frame();
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->op, opcode::ping);
}

TEST_P(EndpointTest, DrainedBacklog_GivesItsStorageBack) {
    open();
    for (int i = 0; i < 200; ++i) ASSERT_EQ(conn->enqueue(ordered("c")), endpoint::queued::yes);
    EXPECT_GT(conn->queue_capacity(), 128U);
    flush.run();
    EXPECT_EQ(conn->queue_capacity(), 0U) << "a queue grown past 128 entries is not kept";
    for (int i = 0; i < 200; ++i) {
        auto f = pair->next_frame();
        ASSERT_TRUE(f) << "frame " << i;
        EXPECT_EQ(f->payload, "c");
    }
}

TEST_P(EndpointTest, FramesLargerThanTheKernelBuffers_ArriveWholeAndInOrderAsTheClientReadsSlowly) {
    open(k_small_buffers);
    std::vector<outbound> sent;
    std::size_t total = 0;
    for (unsigned i = 0; i < 4; ++i) {
        sent.push_back(ordered(pattern(k_big + i * 1000, i), opcode::binary));
        total += sent.back().frame->wire().size();
        ASSERT_EQ(conn->enqueue(sent.back()), endpoint::queued::yes);
    }
    flush.run();
    // The kernel took part of it: the rest waits for the client to read.
    const auto first = pair->read_available();
    EXPECT_GT(first, 0U);
    EXPECT_LT(first, total) << "the buffers were meant to fill";

    ASSERT_TRUE(read_slowly(total));
    EXPECT_EQ(pair->pending().size(), total) << "no byte more than was queued";
    for (unsigned i = 0; i < 4; ++i) {
        auto f = pair->next_frame(0ms);
        ASSERT_TRUE(f) << "frame " << i;
        EXPECT_EQ(f->op, opcode::binary);
        EXPECT_EQ(f->payload.size(), k_big + i * 1000);
        EXPECT_TRUE(f->payload == sent[i].frame->payload()) << "frame " << i << " differs";
    }
    // Drained: a later frame goes out with the next turn.
    EXPECT_EQ(conn->enqueue(ordered("after")), endpoint::queued::yes);
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload, "after");
    EXPECT_EQ(conn->ends, 0);
}

// A write copies small frames into one buffer and hands large ones to the kernel where they are
// (send_some): runs of small frames past the buffer's size, small and large frames alternating
// past the iovec limit, sizes on both sides of the small bound, all written in pieces.
TEST_P(EndpointTest, SmallAndLargeFramesMixed_ArriveWholeAndInOrderAsTheClientReadsSlowly) {
    open(k_small_buffers);
    std::vector<std::string> payloads;
    for (unsigned i = 0; i < 400; ++i) payloads.push_back(pattern(1 + (i * 37) % 700, i));  // 32 KiB and more
    for (unsigned i = 0; i < 100; ++i) {
        payloads.push_back(pattern(10 + i, i));
        payloads.push_back(pattern(2030 + (i % 4) * 10, i));  // frames of 2,036 to 2,080 bytes
    }
    for (unsigned i = 0; i < 3; ++i) payloads.push_back(pattern(k_big + i, i));
    for (unsigned i = 0; i < 50; ++i) payloads.push_back(pattern(5 + i, i));
    std::size_t total = 0;
    for (const auto& p : payloads) {
        const auto message = ordered(p);
        total += message.frame->wire().size();
        ASSERT_EQ(conn->enqueue(message), endpoint::queued::yes);
    }
    flush.run();
    ASSERT_TRUE(read_slowly(total, 1500));
    EXPECT_EQ(pair->pending().size(), total) << "no byte more than was queued";
    for (std::size_t i = 0; i < payloads.size(); ++i) {
        auto f = pair->next_frame(0ms);
        ASSERT_TRUE(f) << "frame " << i;
        ASSERT_EQ(f->payload.size(), payloads[i].size()) << "frame " << i;
        ASSERT_TRUE(f->payload == payloads[i]) << "frame " << i << " differs";
    }
    EXPECT_EQ(conn->ends, 0);
}

TEST_P(EndpointTest, SendQueueBudget_RefusesWithFullOnceItWouldBePassed) {
    const auto one = ordered(pattern(k_big, 1), opcode::binary);
    const auto wire = one.frame->wire().size();
    limits.send_queue_max_bytes = 2 * wire + 100;
    open(k_small_buffers);

    EXPECT_EQ(conn->enqueue(one), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ordered(pattern(k_big, 2), opcode::binary)), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ordered(pattern(k_big, 3), opcode::binary)), endpoint::queued::full);
    // A smaller one still fits within the budget.
    EXPECT_EQ(conn->enqueue(ordered("fits")), endpoint::queued::yes);
    flush.run();
    // The frame being written still counts: the budget is the bytes not yet on the wire.
    EXPECT_EQ(conn->enqueue(ordered(pattern(k_big, 4), opcode::binary)), endpoint::queued::full);

    ASSERT_TRUE(read_slowly(2 * wire + 6));
    auto a = pair->next_frame(0ms), b = pair->next_frame(0ms), c = pair->next_frame(0ms);
    ASSERT_TRUE(a && b && c);
    EXPECT_TRUE(a->payload == pattern(k_big, 1));
    EXPECT_TRUE(b->payload == pattern(k_big, 2));
    EXPECT_EQ(c->payload, "fits");
    // Drained: the budget is free again.
    EXPECT_EQ(conn->enqueue(ordered(pattern(k_big, 5), opcode::binary)), endpoint::queued::yes);
    EXPECT_FALSE(conn->closing()) << "full is the owner's to act on";
}

// ---- the delivery classes

TEST_P(EndpointTest, LatestWithTheSameKey_OnlyTheNewestIsWritten) {
    open();
    EXPECT_EQ(conn->enqueue(latest("v1", 7)), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ordered("between")), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(latest("v2", 7)), endpoint::queued::replaced);
    EXPECT_EQ(conn->enqueue(ordered("end")), endpoint::queued::yes);
    flush.run();
    EXPECT_EQ(texts_until("end"), (std::vector<std::string>{"between", "v2"}))
        << "the older leaves, the newest goes at the end: what was queued before it stays before it";
}

TEST_P(EndpointTest, LatestReplacement_MustFitTheBudgetToo) {
    limits.send_queue_max_bytes = 1000;
    open();
    EXPECT_EQ(conn->enqueue(latest("small", 5)), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ordered(pattern(900, 1), opcode::binary)), endpoint::queued::yes);
    // A larger newest value would take the queue past the budget: refused like a new frame.
    EXPECT_EQ(conn->enqueue(latest(pattern(5000, 2), 5)), endpoint::queued::full);
    EXPECT_EQ(conn->enqueue(latest("newer", 5)), endpoint::queued::replaced) << "one that fits still replaces";
    EXPECT_EQ(conn->enqueue(ordered("end")), endpoint::queued::yes);
    flush.run();
    const auto texts = texts_until("end");
    ASSERT_EQ(texts.size(), 2U);
    EXPECT_EQ(texts.back(), "newer") << "the newest, once, after what was queued before it";
    EXPECT_EQ(std::count(texts.begin(), texts.end(), "small"), 0);
}

TEST_P(EndpointTest, LatestWithDifferentKeys_BothAreWritten) {
    open();
    EXPECT_EQ(conn->enqueue(latest("a", 1)), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(latest("b", 2)), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ordered("end")), endpoint::queued::yes);
    flush.run();
    EXPECT_EQ(texts_until("end"), (std::vector<std::string>{"a", "b"}));
}

TEST_P(EndpointTest, Ephemeral_QueuedWhileTheSocketKeepsUp_EvenBehindFramesOfTheSameTurn) {
    open();
    EXPECT_EQ(conn->enqueue(ephemeral("e1")), endpoint::queued::yes) << "nothing waits: it goes";
    EXPECT_EQ(conn->enqueue(ephemeral("e2")), endpoint::queued::yes) << "the socket took every write: not behind";
    EXPECT_EQ(conn->enqueue(ordered("o1")), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ephemeral("e3")), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(ordered("end")), endpoint::queued::yes);
    flush.run();
    EXPECT_EQ(texts_until("end"), (std::vector<std::string>{"e1", "e2", "o1", "e3"}));
}

TEST_P(EndpointTest, Ephemeral_OverTheSendBudget_IsDroppedNeverAClose) {
    open(k_small_buffers);
    const auto big = ordered(pattern(4 * k_big, 7));
    ASSERT_EQ(conn->enqueue(big), endpoint::queued::yes);
    // Fill the budget with ordered frames while the first is still being written.
    flush.run();
    while (conn->enqueue(ordered(pattern(k_big, 3))) == endpoint::queued::yes) {
    }
    EXPECT_EQ(conn->enqueue(ephemeral(pattern(k_big, 5))), endpoint::queued::dropped);
}

TEST_P(EndpointTest, LatestWhileTheSocketIsFull_ReplacesTheWaitingFrameNotTheOneBeingWritten) {
    open(k_small_buffers);
    const auto big = latest(pattern(4 * k_big, 9), 42);
    ASSERT_EQ(conn->enqueue(big), endpoint::queued::yes);
    flush.run();
    ASSERT_LT(pair->read_available(), big.frame->wire().size()) << "the first frame is still being written";

    // The one on the wire cannot be taken back: a newer one waits behind it, and replaces
    // nothing; the next replaces that one.
    EXPECT_EQ(conn->enqueue(latest("second", 42)), endpoint::queued::yes);
    EXPECT_EQ(conn->enqueue(latest("third", 42)), endpoint::queued::replaced);
    EXPECT_EQ(conn->enqueue(ordered("end")), endpoint::queued::yes);
    // And an ephemeral one is dropped: frames wait.
    EXPECT_EQ(conn->enqueue(ephemeral("skip")), endpoint::queued::dropped);

    const auto texts = texts_until("end");
    ASSERT_EQ(texts.size(), 2U);
    EXPECT_TRUE(texts[0] == big.frame->payload()) << "the frame being written arrives whole";
    EXPECT_EQ(texts[1], "third");
}

// ---- the close handshake

TEST_P(EndpointTest, CloseDuringAFlush_DropsTheWaitingFramesAndFollowsWhatIsOnTheWire) {
    open(k_small_buffers);
    const auto first = ordered(pattern(k_big, 1), opcode::binary);
    ASSERT_EQ(conn->enqueue(first), endpoint::queued::yes);
    ASSERT_EQ(conn->enqueue(ordered(pattern(k_big, 2), opcode::binary)), endpoint::queued::yes);
    ASSERT_EQ(conn->enqueue(ordered(pattern(k_big, 3), opcode::binary)), endpoint::queued::yes);
    flush.run();
    ASSERT_LT(pair->read_available(), first.frame->wire().size()) << "the first frame is still being written";

    conn->close(static_cast<std::uint16_t>(close_code::normal), "bye");
    EXPECT_TRUE(conn->closing());
    EXPECT_EQ(conn->enqueue(ordered("late")), endpoint::queued::refused);
    EXPECT_EQ(conn->enqueue(ephemeral("late")), endpoint::queued::refused);

    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::binary);
    EXPECT_TRUE(f->payload == first.frame->payload()) << "what was on the wire is finished";
    f = pair->next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close) << "the waiting frames are dropped";
    EXPECT_EQ(f->close_code(), 1000);
    EXPECT_EQ(f->close_reason(), "bye");
    EXPECT_EQ(conn->ends, 0) << "waiting for the client's answer";

    pair->send_frame(opcode::close, testing::close_body(1000));
    ASSERT_TRUE(pair->wait_eof(testing::k_prompt)) << "the answer ends the connection";
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    pair->turn_until([] { return false; }, 20ms);
    EXPECT_EQ(conn->ends, 1);
}

TEST_P(EndpointTest, CloseWithoutAnAnswer_DropsTheTcpAfterTheCloseTimeout) {
    limits.close_timeout = 50ms;
    open();
    const auto start = testing::clock::now();
    conn->close(static_cast<std::uint16_t>(close_code::going_away), "restart");
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1001);
    EXPECT_EQ(conn->ends, 0);

    ASSERT_TRUE(pair->wait_eof(1000ms));
    EXPECT_GE(testing::clock::now() - start, 50ms) << "not before the timeout";
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    EXPECT_EQ(conn->ends, 1);
}

TEST_P(EndpointTest, ClientClosesFirst_TheCodeIsEchoedAndTheConnectionEnds) {
    open();
    pair->send_frame(opcode::close, testing::close_body(4321, "done"));
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 4321);
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    EXPECT_EQ(conn->ends, 1);
    EXPECT_TRUE(conn->messages.empty());
}

TEST_P(EndpointTest, ClientClosesWhileFramesWait_TheyAreDroppedAndTheEchoFollowsTheWire) {
    open(k_small_buffers);
    const auto first = ordered(pattern(k_big, 1), opcode::binary);
    ASSERT_EQ(conn->enqueue(first), endpoint::queued::yes);
    ASSERT_EQ(conn->enqueue(ordered(pattern(k_big, 2), opcode::binary)), endpoint::queued::yes);
    flush.run();
    pair->send_frame(opcode::close, testing::close_body(1000));
    // The endpoint reads the close on a later turn, while its write waits.
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->payload == first.frame->payload());
    f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1000);
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    EXPECT_EQ(conn->ends, 1);
}

TEST_P(EndpointTest, UnmaskedClientFrame_ClosesWith1002AndEnds) {
    open();
    pair->send_frame(opcode::text, "not masked", true, false);
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1002);
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt)) << "a failed connection waits for no answer";
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    EXPECT_EQ(conn->ends, 1);
    EXPECT_TRUE(conn->messages.empty());
}

TEST_P(EndpointTest, ClientDropsTheTcp_TheEndIsReportedOnce) {
    open();
    ::shutdown(pair->client_fd(), SHUT_RDWR);
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    conn->terminate();
    pair->turn_until([] { return false; }, 20ms);
    EXPECT_EQ(conn->ends, 1);
    EXPECT_EQ(conn->enqueue(ordered("late")), endpoint::queued::refused);
}

TEST_P(EndpointTest, Terminate_ReportsTheEndFromAHandlerOfItsOwn) {
    open();
    conn->terminate();
    EXPECT_EQ(conn->ends, 0) << "never from inside the call";
    ASSERT_TRUE(pair->turn_until([&] { return conn->ends > 0; }));
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    EXPECT_EQ(conn->ends, 1);
}

// ---- reading and control frames

TEST_P(EndpointTest, Ping_IsAnsweredWithAPongCarryingItsPayload) {
    open();
    pair->send_frame(opcode::ping, "are you there");
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::pong);
    EXPECT_EQ(f->payload, "are you there");
    EXPECT_EQ(conn->ends, 0);
}

TEST_P(EndpointTest, ServerPing_GoesOutAndTheClientsPongIsReported) {
    open();
    conn->ping();
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::ping);
    pair->send_frame(opcode::pong, "");
    ASSERT_TRUE(pair->turn_until([&] { return conn->pongs > 0; }));
    EXPECT_EQ(conn->pongs, 1);
}

TEST_P(EndpointTest, ClientMessages_AreDeliveredWholeWhateverTheReads) {
    open();
    // One text message in two fragments, the second split across two writes, then a binary one.
    const auto bytes = testing::client_frame(opcode::text, "hel", false) +
                       testing::client_frame(opcode::continuation, "lo, world") +
                       testing::client_frame(opcode::binary, pattern(60000, 4));
    const auto split = testing::client_frame(opcode::text, "hel", false).size() + 5;
    pair->send(std::string_view(bytes).substr(0, split));
    pair->turn_until([] { return false; }, 5ms);
    EXPECT_TRUE(conn->messages.empty()) << "not yet whole";
    pair->send(std::string_view(bytes).substr(split));
    ASSERT_TRUE(pair->turn_until([&] { return conn->messages.size() == 2; }));
    EXPECT_EQ(conn->messages[0], (std::pair<std::string, bool>{"hello, world", true}));
    EXPECT_FALSE(conn->messages[1].second);
    EXPECT_TRUE(conn->messages[1].first == pattern(60000, 4));
}

TEST_P(EndpointTest, MessageOverTheLimit_ClosesWith1009) {
    limits.max_message_bytes = 1000;
    open();
    pair->send_frame(opcode::text, pattern(1001, 1));
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1009);
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    EXPECT_TRUE(conn->messages.empty());
}

// ---- what a client may make the connection spend (issue 16)

TEST_P(EndpointTest, AfterItsOwnClose_ReadsAFewKiBUnreadThenNothingUntilTheCloseTimeout) {
    observability::metrics metrics;
    limits.close_timeout = 300ms;
    limits.metrics = &metrics;
    pair.emplace(io, flush);
    const int server_fd = pair->server_fd();
    conn = std::make_shared<recording_endpoint>(transport{pair->take_server()}, flush, endpoint::options{limits});
    conn->start(std::string(k_head), {});
    ASSERT_EQ(pair->read_head(), k_head);
    const auto start = testing::clock::now();
    conn->close(static_cast<std::uint16_t>(close_code::policy_violation), "token invalid");
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    // The client goes on sending, never answering the close: 256 KiB of 1000-byte messages, as
    // much of it as the kernel takes.
    std::string flood;
    for (int i = 0; i < 256; ++i) flood += testing::client_frame(opcode::text, pattern(1000, i));
    std::size_t sent = 0;
    while (sent < flood.size()) {
        const auto n = ::send(pair->client_fd(), flood.data() + sent, flood.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
    }
    pair->turn_until([] { return false; }, 100ms);
    // What the endpoint did not read is still in the kernel: it stopped after a few KiB (one
    // read of at most 64 KiB, whatever the kernel had then).
    int unread = 0;        // in the server's receive queue
    int not_yet_sent = 0;  // still in the client's send queue
    ASSERT_EQ(::ioctl(server_fd, FIONREAD, &unread), 0);
    ASSERT_EQ(::ioctl(pair->client_fd(), TIOCOUTQ, &not_yet_sent), 0);
    const auto read = sent - static_cast<std::size_t>(unread) - static_cast<std::size_t>(not_yet_sent);
    EXPECT_GE(read, endpoint::k_max_read_after_close);
    EXPECT_LE(read, endpoint::k_max_read_after_close + 64 * 1024) << "the allowance, and at most one read past it";
    EXPECT_GT(unread, 0);
    EXPECT_EQ(conn->ends, 0) << "dropping it now would reset our close frame away";
    EXPECT_TRUE(pair->wait_eof(1000ms)) << "the close timeout ends it";
    EXPECT_GE(testing::clock::now() - start, 300ms);
    EXPECT_TRUE(conn->messages.empty()) << "nothing after the close is read";
    EXPECT_EQ(metrics.frame_budget_closes.load() + metrics.message_timeout_closes.load(), 0U);
}

TEST_P(EndpointTest, AfterItsOwnClose_TheClientsCloseIsFoundPastWhatItSentBefore) {
    open();
    conn->close(static_cast<std::uint16_t>(close_code::policy_violation), "token invalid");
    ASSERT_TRUE(pair->next_frame());
    // A message begun, a ping and a whole message, then the answer: skipped up to the close.
    pair->send(testing::client_frame(opcode::binary, pattern(2000, 1), false) +
               testing::client_frame(opcode::ping, "p") + testing::client_frame(opcode::text, "late") +
               testing::client_frame(opcode::close, testing::close_body(1008)));
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    EXPECT_TRUE(conn->messages.empty());
    while (auto g = pair->next_frame(0ms)) EXPECT_NE(g->op, opcode::pong) << "no pong after our close";
}

TEST_P(EndpointTest, AfterItsOwnClose_AClientThatSendsSlowlyIsDroppedAtTheCloseTimeout) {
    limits.close_timeout = 100ms;
    open();
    const auto start = testing::clock::now();
    conn->close(static_cast<std::uint16_t>(close_code::policy_violation), "token invalid");
    ASSERT_TRUE(pair->next_frame());
    // A little at a time, never the close: the timeout ends it.
    bool ended = false;
    for (int i = 0; i < 100 && !ended; ++i) {
        ::send(pair->client_fd(), "\x82\x80\x01\x02\x03\x04", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
        ended = pair->wait_eof(10ms);
    }
    EXPECT_TRUE(ended);
    EXPECT_LT(testing::clock::now() - start, 600ms);
}

TEST_P(EndpointTest, EmptyContinuationsPastTheFrameBudget_CloseWith1008AndAreCounted) {
    observability::metrics metrics;
    limits.budget.frames = {100, 200};
    limits.metrics = &metrics;
    open();
    std::string flood = testing::client_frame(opcode::text, "a", false);
    for (int i = 0; i < 300; ++i) flood += testing::client_frame(opcode::continuation, "", false);
    pair->send(flood);
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "too many frames");
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    EXPECT_EQ(metrics.frame_budget_closes.load(), 1U);
    EXPECT_EQ(metrics.message_timeout_closes.load(), 0U);
}

TEST_P(EndpointTest, UnsolicitedPongsPastTheFrameBudget_CloseWith1008) {
    observability::metrics metrics;
    limits.budget.frames = {100, 200};
    limits.metrics = &metrics;
    open();
    std::string flood;
    for (int i = 0; i < 300; ++i) flood += testing::client_frame(opcode::pong, "unasked");
    pair->send(flood);
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(conn->pongs, 200) << "the frames within the budget were read";
    EXPECT_EQ(metrics.frame_budget_closes.load(), 1U);
}

TEST_P(EndpointTest, UnfinishedMessage_ClosesWith1008AtTheHeartbeatPing) {
    observability::metrics metrics;
    limits.budget.message_timeout = 50ms;
    limits.metrics = &metrics;
    open();
    pair->send(testing::client_frame(opcode::binary, pattern(4000, 1), false));
    // Within its time the heartbeat pings as usual.
    conn->ping();
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::ping);
    // Then the client goes silent: nothing is read again, and the heartbeat is the check.
    pair->turn_until([] { return false; }, 80ms);
    conn->ping();
    f = pair->next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "message not finished in time");
    EXPECT_TRUE(pair->wait_eof(testing::k_prompt));
    EXPECT_EQ(metrics.message_timeout_closes.load(), 1U);
    EXPECT_TRUE(conn->messages.empty());
}

TEST_P(EndpointTest, UnfinishedMessage_ClosesWith1008AtTheNextReadPastItsTime) {
    limits.budget.message_timeout = 50ms;
    open();
    pair->send(testing::client_frame(opcode::text, "start", false));
    pair->send_frame(opcode::ping, "1");
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::pong);
    pair->turn_until([] { return false; }, 80ms);
    pair->send_frame(opcode::ping, "2");
    f = pair->next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close) << "the ping after the deadline is not answered";
    EXPECT_EQ(f->close_code(), 1008);
}

TEST_P(EndpointTest, MessagesFinishedInTime_AreNotAffectedByTheDeadline) {
    limits.budget.message_timeout = 50ms;
    open();
    for (int i = 0; i < 3; ++i) {
        pair->send(testing::client_frame(opcode::text, "a", false));
        pair->turn_until([] { return false; }, 30ms);
        pair->send(testing::client_frame(opcode::continuation, "b"));
        ASSERT_TRUE(pair->turn_until([&] { return conn->messages.size() == static_cast<std::size_t>(i + 1); }));
    }
    conn->ping();
    auto f = pair->next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::ping);
}

TEST_P(EndpointTest, TenPingsInARow_GetTenPongsInOrder) {
    open();
    std::string pings;
    for (int i = 0; i < 10; ++i) pings += testing::client_frame(opcode::ping, "ping " + std::to_string(i));
    pair->send(pings);
    for (int i = 0; i < 10; ++i) {
        auto f = pair->next_frame();
        ASSERT_TRUE(f) << "pong " << i;
        EXPECT_EQ(f->op, opcode::pong);
        EXPECT_EQ(f->payload, "ping " + std::to_string(i));
    }
    EXPECT_FALSE(pair->next_frame(20ms)) << "one pong each, no more";
}

// An owner whose drained queue closes another connection: a callback reaching a peer.
class peer_closing_endpoint final : public endpoint {
public:
    using endpoint::endpoint;
    std::shared_ptr<endpoint> peer;
    void close_peer_when_drained() { want_drained(true); }

protected:
    void on_message(std::string_view, bool) override {}
    void on_end() override {}
    void on_queue_drained() override {
        if (auto p = std::exchange(peer, nullptr)) p->close(4000, "peer");
    }
};

// With the ring, A and B are written in one batch. A's owner, told A drained, closes B: B's
// frames were already in the kernel, so they count as written and the close follows them (the
// flush counts every answer of a batch before any owner is told anything; counted after, B's
// answer would be taken for its close frame, which would never go out).
TEST_P(EndpointTest, AnOwnerClosesAnotherConnectionOfTheBatch_ItsFramesAndCloseArriveInOrder) {
    socket_pair pa(io, flush);
    socket_pair pb(io, flush);
    auto a = std::make_shared<peer_closing_endpoint>(transport{pa.take_server()}, flush, endpoint::options{limits});
    auto b = std::make_shared<peer_closing_endpoint>(transport{pb.take_server()}, flush, endpoint::options{limits});
    a->start(std::string(k_head), {});
    b->start(std::string(k_head), {});
    ASSERT_EQ(pa.read_head(), k_head);
    ASSERT_EQ(pb.read_head(), k_head);
    a->peer = b;
    a->close_peer_when_drained();
    EXPECT_EQ(a->enqueue(ordered("to a")), endpoint::queued::yes);
    EXPECT_EQ(b->enqueue(ordered("to b 1")), endpoint::queued::yes);
    EXPECT_EQ(b->enqueue(ordered("to b 2")), endpoint::queued::yes);
    flush.run();
    std::vector<std::string> got;
    while (auto f = pb.next_frame()) {
        got.push_back(f->op == opcode::close ? "<close>" : f->payload);
        if (f->op == opcode::close) break;
    }
    if (GetParam()) {
        EXPECT_EQ(got, (std::vector<std::string>{"to b 1", "to b 2", "<close>"}));
    } else {
        // One by one, A is written before B: the close finds B's frames waiting and drops them.
        EXPECT_EQ(got, (std::vector<std::string>{"<close>"}));
    }
    a->terminate();
    b->terminate();
}

// Makes every io_uring_enter of this process fail with `err`, as a kernel refusing the ring
// would; false when the filter cannot be installed.
bool refuse_io_uring_enter(int err) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
    return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

// A write other than a connection's, as an HTTP session hands its answers to the flush.
class recording_writer final : public ring_writer {
public:
    recording_writer(int fd, std::string bytes) : fd_(fd), bytes_(std::move(bytes)) {}
    int stage_write(write_slot& slot) override {
        slot.iov[0] = iovec{bytes_.data(), bytes_.size()};
        slot.count = 1;
        return fd_;
    }
    void ring_written(long result) override { results.push_back(result); }
    std::vector<long> results;

private:
    int fd_;
    std::string bytes_;
};

// A flush writing through a ring of its own (the server's default), and connections started on
// it; without gtest's assertions, so that a child process can use it too.
struct ring_connections {
    ring_connections() : ring(send_ring::open(why)) {
        if (ring) flush.use(ring.get());
    }
    ~ring_connections() {
        for (auto& c : conns) c->terminate();
    }
    ring_connections(const ring_connections&) = delete;
    ring_connections& operator=(const ring_connections&) = delete;

    // Starts `count` more connections and flushes their 101 heads; false when one did not arrive.
    bool start(std::size_t count) {
        const auto first = pairs.size();
        for (std::size_t i = 0; i < count; ++i) {
            pairs.push_back(std::make_unique<socket_pair>(io, flush));
            conns.push_back(std::make_shared<recording_endpoint>(transport{pairs.back()->take_server()}, flush,
                                                                 endpoint::options{limits}));
            conns.back()->start(std::string(k_head), {});
        }
        flush.run();
        for (auto i = first; i < pairs.size(); ++i) {
            if (pairs[i]->read_head() != k_head) return false;
        }
        return true;
    }

    boost::asio::io_context io{1};
    std::string why;  // the kernel's reason when it refused the ring
    std::unique_ptr<send_ring> ring;
    flush_queue flush;
    const endpoint::limits limits{64 * 1024, 1024 * 1024, 1000ms};
    std::vector<std::unique_ptr<socket_pair>> pairs;
    std::vector<std::shared_ptr<recording_endpoint>> conns;
};

class FlushQueueWriters : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(rc.ring) << "io_uring refused: " << rc.why; }
    ring_connections rc;
};

// More writers than a batch, each with a connection's frames in the same run: every writer hears
// that the kernel took its bytes, its peer holds them, and every connection's frame arrives.
TEST_F(FlushQueueWriters, WritersShareTheRingsBatchesWithTheConnections) {
    EXPECT_FALSE(flush_queue{}.batches());
    ASSERT_TRUE(rc.flush.batches());
    ASSERT_TRUE(rc.start(send_ring::k_batch + 6));
    auto& flush = rc.flush;
    std::vector<std::unique_ptr<socket_pair>> answer_pairs;
    std::vector<std::shared_ptr<recording_writer>> writers;
    for (std::size_t i = 0; i < rc.conns.size(); ++i)
        answer_pairs.push_back(std::make_unique<socket_pair>(rc.io, flush));
    EXPECT_TRUE(flush.empty());
    for (std::size_t i = 0; i < rc.conns.size(); ++i) {
        rc.conns[i]->enqueue(ordered("frame " + std::to_string(i)));
        writers.push_back(
            std::make_shared<recording_writer>(answer_pairs[i]->server_fd(), "answer " + std::to_string(i)));
        flush.add(std::shared_ptr<ring_writer>(writers.back()));
    }
    EXPECT_FALSE(flush.empty());
    flush.run();
    EXPECT_TRUE(flush.empty());
    for (std::size_t i = 0; i < rc.conns.size(); ++i) {
        const auto answer = "answer " + std::to_string(i);
        EXPECT_EQ(writers[i]->results, std::vector<long>{static_cast<long>(answer.size())});
        EXPECT_EQ(answer_pairs[i]->read_bytes(answer.size()), answer);
        auto f = rc.pairs[i]->next_frame();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->payload, "frame " + std::to_string(i));
    }
}

// run_writers() writes the writers alone; the connections' frames wait for run().
TEST_F(FlushQueueWriters, RunWritersLeavesTheConnectionsForTheFlush) {
    ASSERT_TRUE(rc.start(1));
    auto& flush = rc.flush;
    auto& pair = *rc.pairs[0];
    socket_pair answer_pair(rc.io, flush);
    auto writer = std::make_shared<recording_writer>(answer_pair.server_fd(), "early");
    rc.conns[0]->enqueue(ordered("frame"));
    flush.add(std::shared_ptr<ring_writer>(writer));
    EXPECT_TRUE(flush.has_writers());
    flush.run_writers();
    EXPECT_FALSE(flush.has_writers());
    EXPECT_EQ(writer->results, std::vector<long>{5});
    // Read without turning the loop (a turn would run the flush).
    EXPECT_EQ(flush.size(), 1U);
    EXPECT_EQ(pair.read_available(), 0U);
    EXPECT_EQ(answer_pair.read_available(), 5U);
    EXPECT_EQ(answer_pair.pending(), "early");
    flush.run();
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload, "frame");
}

// A writer whose socket is gone hears the kernel's error, and the rest of the run goes on.
TEST_F(FlushQueueWriters, AWriteToAClosedSocketHearsItsError) {
    socket_pair open_pair(rc.io, rc.flush);
    auto gone = std::make_shared<recording_writer>(-1, "lost");
    auto kept = std::make_shared<recording_writer>(open_pair.server_fd(), "kept");
    rc.flush.add(std::shared_ptr<ring_writer>(gone));
    rc.flush.add(std::shared_ptr<ring_writer>(kept));
    rc.flush.run();
    EXPECT_EQ(gone->results, std::vector<long>{-EBADF});
    EXPECT_EQ(kept->results, std::vector<long>{4});
    EXPECT_EQ(open_pair.read_bytes(4), "kept");
}

// The ring refused mid-run (in a child process, which the filter confines): the turn's
// connections, more than one batch of them, are written one by one, none is ended, and the ring
// is not used again.
TEST(EndpointRingRefused, TheTurnsConnectionsAreWrittenOneByOne) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::alarm(10);  // a hang fails the test
        const int code = [] {
            ring_connections rc;
            if (!rc.ring) return 10;
            if (!rc.start(send_ring::k_batch + 6)) return 11;
            auto& io = rc.io;
            auto& flush = rc.flush;
            auto& ring = rc.ring;
            auto& pairs = rc.pairs;
            auto& conns = rc.conns;
            socket_pair answer_pair(io, flush);
            auto writer = std::make_shared<recording_writer>(answer_pair.server_fd(), "answer");
            if (!refuse_io_uring_enter(EAGAIN)) return 12;
            for (auto& c : conns) c->enqueue(ordered("after the refusal"));
            flush.add(std::shared_ptr<ring_writer>(writer));
            flush.run();
            if (!ring->broken() || flush.batches()) return 13;
            if (writer->results != std::vector<long>{send_ring::k_not_submitted}) return 16;
            // Added after the ring broke (a session checks batches() first, but one may have
            // joined before): told at once that it was not submitted.
            auto late = std::make_shared<recording_writer>(answer_pair.server_fd(), "late");
            flush.add(std::shared_ptr<ring_writer>(late));
            flush.run();
            if (late->results != std::vector<long>{send_ring::k_not_submitted}) return 16;
            for (std::size_t i = 0; i < conns.size(); ++i) {
                if (conns[i]->closing()) return 14;
                auto f = pairs[i]->next_frame();
                if (!f || f->payload != "after the refusal") return 15;
            }
            return 0;
        }();
        ::_exit(code);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: no ring, 11: heads, 12: no filter, 13: ring not broken, 14: a "
                                         "connection ended, 15: a frame missing, 16: the writer was not told";
}

INSTANTIATE_TEST_SUITE_P(Writes, EndpointTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Ring" : "OneByOne"; });

}  // namespace
}  // namespace zena::ws
