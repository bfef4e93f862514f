#pragma once
// Where a connection's write is put together (write_slot), and the thread's batch of writes
// through io_uring (send_ring): a flush hands the kernel up to k_batch connections' writes with
// one system call instead of one each. On this kind of machine a system call costs about a
// microsecond before it does any work (docs/architecture.md, "The frame layer and the write
// path"). Where the kernel refuses io_uring (a seccomp profile, an old kernel, turned off by
// server.io_uring = false), the flush makes its system calls one by one.

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <limits>
#include <memory>
#include <string>

namespace zena::ws {

// One write: its iovecs, and the buffer its small frames are copied into.
struct write_slot {
    // Frames gathered into one write (Asio's own limit for a buffer sequence is 64).
    static constexpr std::size_t k_max_iov = 64;
    // The kernel copies a write's iovecs one at a time, and each piece costs it far more than
    // its bytes, so frames up to k_gather_frame_max are copied into `buffer` (k_gather_bytes),
    // as uWebSockets corks; larger ones stay iovecs of their own and are never copied twice.
    static constexpr std::size_t k_gather_bytes = 32 * 1024;
    static constexpr std::size_t k_gather_frame_max = 2 * 1024;

    std::array<iovec, k_max_iov> iov{};
    std::size_t count = 0;
    std::array<char, k_gather_bytes> buffer;
};

class send_ring {
public:
    // Writes submitted together: the flush waits for their answers before it goes on.
    static constexpr unsigned k_batch = 64;

    // A ring for the calling thread, or nullptr with the kernel's reason in `why`.
    static std::unique_ptr<send_ring> open(std::string& why);
    ~send_ring();
    send_ring(const send_ring&) = delete;
    send_ring& operator=(const send_ring&) = delete;

    // True once the kernel refused a submission or a wait (never seen here): the flush then
    // makes its system calls one by one, and the ring is not used again.
    bool broken() const { return broken_; }
    // Slot i (< k_batch) of the next submission.
    write_slot& slot(unsigned i) { return slots_[i]; }
    // Queues slot i's write to `fd` (non-blocking, no SIGPIPE); the slot stays untouched until
    // submit_and_wait() returns.
    void queue(unsigned i, int fd);
    // Submits what was queued and waits for every answer (a non-blocking send is answered as it
    // is submitted); returns how many slots were queued, slot i's answer then in result(i).
    unsigned submit_and_wait();
    // What send(2) would have returned, or -errno; k_not_submitted when the kernel never took
    // the write (the ring then broke): the connection writes it itself.
    long result(unsigned i) const { return results_[i]; }
    static constexpr long k_not_submitted = std::numeric_limits<long>::min();

private:
    struct state;
    explicit send_ring(std::unique_ptr<state> s);

    std::unique_ptr<state> state_;
    std::unique_ptr<write_slot[]> slots_;
    std::array<long, k_batch> results_{};
    unsigned queued_ = 0;
    bool broken_ = false;
};

}  // namespace zena::ws
