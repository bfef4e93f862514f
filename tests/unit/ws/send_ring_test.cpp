#include "ws/send_ring.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace zena::ws {
namespace {

// A connected pair of stream sockets, closed at the end.
struct pair_of_sockets {
    int ours = -1;
    int theirs = -1;
    pair_of_sockets() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0) << std::strerror(errno);
        ours = fds[0];
        theirs = fds[1];
    }
    ~pair_of_sockets() {
        if (ours >= 0) ::close(ours);
        if (theirs >= 0) ::close(theirs);
    }
    std::string read_all() {
        std::string got;
        char buffer[4096];
        for (;;) {
            const auto n = ::recv(theirs, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n <= 0) return got;
            got.append(buffer, static_cast<std::size_t>(n));
        }
    }
};

std::unique_ptr<send_ring> open_ring() {
    std::string why;
    auto ring = send_ring::open(why);
    EXPECT_TRUE(ring) << "io_uring refused: " << why;
    return ring;
}

void put(write_slot& slot, std::vector<std::string>& pieces) {
    slot.count = 0;
    for (auto& p : pieces) slot.iov[slot.count++] = {p.data(), p.size()};
}

TEST(SendRing, WritesOfManySockets_AreAnsweredInSlotOrderAndArriveWhole) {
    auto ring = open_ring();
    ASSERT_TRUE(ring);
    std::vector<pair_of_sockets> pairs(send_ring::k_batch);
    std::vector<std::vector<std::string>> pieces(send_ring::k_batch);
    for (unsigned i = 0; i < send_ring::k_batch; ++i) {
        // One piece (send) for even slots, three (sendmsg) for odd ones.
        pieces[i] = i % 2 == 0 ? std::vector<std::string>{"lone " + std::to_string(i)}
                               : std::vector<std::string>{"a" + std::to_string(i), "-b-", std::string(100, 'c')};
        put(ring->slot(i), pieces[i]);
        ring->queue(i, pairs[i].ours);
    }
    ASSERT_EQ(ring->submit_and_wait(), send_ring::k_batch);
    for (unsigned i = 0; i < send_ring::k_batch; ++i) {
        std::string expected;
        for (const auto& p : pieces[i]) expected += p;
        EXPECT_EQ(ring->result(i), static_cast<long>(expected.size())) << "slot " << i;
        EXPECT_EQ(pairs[i].read_all(), expected) << "slot " << i;
    }
    EXPECT_FALSE(ring->broken());
}

// A full socket answers -EAGAIN at once: the ring never waits for room (the flush would stall
// the loop), and the connection waits for its socket as without the ring.
TEST(SendRing, AFullSocket_AnswersEagainAtOnce_AndAClosedPeerAnError) {
    auto ring = open_ring();
    ASSERT_TRUE(ring);
    pair_of_sockets full;
    pair_of_sockets gone;
    const std::string chunk(4096, 'x');
    while (::send(full.ours, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
    ASSERT_EQ(errno, EAGAIN);
    ::close(gone.theirs);
    gone.theirs = -1;

    std::vector<std::string> piece{"more"};
    put(ring->slot(0), piece);
    ring->queue(0, full.ours);
    put(ring->slot(1), piece);
    ring->queue(1, gone.ours);
    ASSERT_EQ(ring->submit_and_wait(), 2U);
    EXPECT_EQ(ring->result(0), -EAGAIN);
    EXPECT_EQ(ring->result(1), -EPIPE) << "and no SIGPIPE: this test would have died of it";
    EXPECT_FALSE(ring->broken());

    // The slots are free again: the next batch goes through.
    const std::string drained = full.read_all();
    EXPECT_GT(drained.size(), 0U);
    put(ring->slot(0), piece);
    ring->queue(0, full.ours);
    ASSERT_EQ(ring->submit_and_wait(), 1U);
    EXPECT_EQ(ring->result(0), 4);
}

TEST(SendRing, NothingQueued_CompletesNothing) {
    auto ring = open_ring();
    ASSERT_TRUE(ring);
    EXPECT_EQ(ring->submit_and_wait(), 0U);
}

// A write the kernel refuses as it reads it stops that submission (here an iovec outside user
// space; on Linux 5.1 to 5.5, any send, which open() now refuses): it is answered with its
// error, and the writes after it are still submitted and answered, not waited for forever.
TEST(SendRing, AWriteRefusedAtSubmission_TheOthersAreStillSubmittedAndAnswered) {
    auto ring = open_ring();
    ASSERT_TRUE(ring);
    pair_of_sockets a;
    pair_of_sockets b;
    pair_of_sockets c;
    std::vector<std::string> piece{"hello"};
    auto& bad = ring->slot(0);
    bad.count = 2;
    bad.iov[0] = {reinterpret_cast<void*>(0xffff888000000000ULL), 8};  // NOLINT: not user memory
    bad.iov[1] = {piece[0].data(), piece[0].size()};
    ring->queue(0, a.ours);
    put(ring->slot(1), piece);
    ring->queue(1, b.ours);
    put(ring->slot(2), piece);
    ring->queue(2, c.ours);
    ASSERT_EQ(ring->submit_and_wait(), 3U);
    EXPECT_LT(ring->result(0), 0);
    EXPECT_NE(ring->result(0), send_ring::k_not_submitted);
    EXPECT_EQ(ring->result(1), 5);
    EXPECT_EQ(ring->result(2), 5);
    EXPECT_EQ(b.read_all(), "hello");
    EXPECT_EQ(c.read_all(), "hello");
    EXPECT_FALSE(ring->broken());
}

}  // namespace
}  // namespace zena::ws
