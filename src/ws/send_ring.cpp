#include "ws/send_ring.hpp"

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include <spdlog/spdlog.h>

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
    // Linux 5.1 to 5.5 take a ring but know no IORING_OP_SEND (5.6): their submission would
    // refuse every lone frame.
    io_uring_probe* probe = io_uring_get_probe_ring(&s->ring);
    const bool sends = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND) != 0 &&
                       io_uring_opcode_supported(probe, IORING_OP_SENDMSG) != 0;
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!sends) {
        why = "this kernel's io_uring has no send operation (Linux 5.6)";
        return nullptr;
    }
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
    // A write the kernel refuses as it reads it (it never has here) is answered with its error,
    // and stops that submission: the ones after it are submitted by the next call.
    unsigned submitted = 0;
    while (submitted < n) {
        const int r = io_uring_submit(&state_->ring);
        if (r == -EINTR) continue;
        if (r <= 0) {
            // Refused as a whole: the writes not taken stay k_not_submitted, and the ring is not
            // used again (its queue still holds them).
            spdlog::warn("writes io_uring=false reason=\"submission refused: {}\"",
                         std::error_code(-r, std::generic_category()).message());
            broken_ = true;
            break;
        }
        submitted += static_cast<unsigned>(r);
    }
    // The slots are taken in order: one the wait below leaves unanswered reports -EIO, one never
    // taken k_not_submitted.
    for (unsigned i = 0; i < n; ++i) results_[i] = i < submitted ? -EIO : k_not_submitted;
    unsigned seen = 0;
    while (seen < submitted) {
        io_uring_cqe* cqe = nullptr;
        unsigned head = 0;
        unsigned got = 0;
        io_uring_for_each_cqe(&state_->ring, head, cqe) {
            results_[io_uring_cqe_get_data64(cqe)] = cqe->res;
            ++got;
        }
        io_uring_cq_advance(&state_->ring, got);
        seen += got;
        if (seen >= submitted) break;
        const int r = io_uring_wait_cqe(&state_->ring, &cqe);
        if (r < 0 && r != -EINTR) {
            spdlog::warn("writes io_uring=false reason=\"wait refused: {}\"",
                         std::error_code(-r, std::generic_category()).message());
            broken_ = true;
            break;
        }
    }
    return n;
}

}  // namespace zena::ws
