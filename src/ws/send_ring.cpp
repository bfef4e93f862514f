#include "ws/send_ring.hpp"

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

namespace zena::ws {

struct send_ring::state {
    io_uring ring{};
    bool ready = false;
    std::array<msghdr, k_batch> headers{};
    ~state() {
        if (ready) io_uring_queue_exit(&ring);
    }
};

std::unique_ptr<send_ring> send_ring::open(std::string& why) {
    auto s = std::make_unique<state>();
    // Completions run as the submitting call returns, with no interrupt to the thread
    // (COOP_TASKRUN, Linux 5.19); older kernels take the ring without it.
    int r = io_uring_queue_init(k_batch, &s->ring, IORING_SETUP_COOP_TASKRUN);
    if (r == -EINVAL) r = io_uring_queue_init(k_batch, &s->ring, 0);
    if (r < 0) {
        why = std::error_code(-r, std::generic_category()).message();
        return nullptr;
    }
    s->ready = true;
    return std::unique_ptr<send_ring>(new send_ring(std::move(s)));
}

send_ring::send_ring(std::unique_ptr<state> s) : state_(std::move(s)), slots_(new write_slot[k_batch]) {}

send_ring::~send_ring() = default;

void send_ring::queue(unsigned i, int fd) {
    io_uring_sqe* sqe = io_uring_get_sqe(&state_->ring);  // never null: at most k_batch are queued
    const auto& slot = slots_[i];
    constexpr int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
    if (slot.count == 1) {
        io_uring_prep_send(sqe, fd, slot.iov[0].iov_base, slot.iov[0].iov_len, flags);
    } else {
        auto& header = state_->headers[i];
        header = {};
        header.msg_iov = const_cast<iovec*>(slot.iov.data());
        header.msg_iovlen = slot.count;
        io_uring_prep_sendmsg(sqe, fd, &header, flags);
    }
    io_uring_sqe_set_data64(sqe, i);
    ++queued_;
}

unsigned send_ring::submit_and_wait() {
    const unsigned n = queued_;
    queued_ = 0;
    if (n == 0) return 0;
    for (unsigned i = 0; i < n; ++i) results_[i] = -EIO;  // what a write never answered reports
    int r = io_uring_submit_and_wait(&state_->ring, n);
    unsigned seen = 0;
    for (;;) {
        io_uring_cqe* cqe = nullptr;
        unsigned head = 0;
        unsigned got = 0;
        io_uring_for_each_cqe(&state_->ring, head, cqe) {
            results_[io_uring_cqe_get_data64(cqe)] = cqe->res;
            ++got;
        }
        io_uring_cq_advance(&state_->ring, got);
        seen += got;
        if (seen >= n) break;
        if (r < 0 && r != -EINTR) {
            // The ring failed (it never has here): the writes not answered fail, and the ring is
            // not used again, since the kernel may still read their slots.
            broken_ = true;
            break;
        }
        r = io_uring_wait_cqe_nr(&state_->ring, &cqe, n - seen);
    }
    return n;
}

}  // namespace zena::ws
