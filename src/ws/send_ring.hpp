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

    // True once the ring failed; the flush then makes its system calls one by one.
    bool broken() const { return broken_; }
    // Slot i (< k_batch) of the next submission.
    write_slot& slot(unsigned i) { return slots_[i]; }
    // Queues slot i's write to `fd` (non-blocking, no SIGPIPE); the slot stays untouched until
    // complete() returns.
    void queue(unsigned i, int fd);
    // Submits what was queued, waits for every answer, and calls done(i, result) for each in
    // slot order, `result` being what send(2) would return, or -errno.
    template <typename Done>
    void complete(Done&& done) {
        const unsigned n = submit_and_wait();
        for (unsigned i = 0; i < n; ++i) done(i, results_[i]);
    }

private:
    struct state;
    explicit send_ring(std::unique_ptr<state> s);
    // Returns how many writes were queued; their results are in results_.
    unsigned submit_and_wait();

    std::unique_ptr<state> state_;
    std::unique_ptr<write_slot[]> slots_;
    std::array<long, k_batch> results_{};
    unsigned queued_ = 0;
    bool broken_ = false;
};

}  // namespace zena::ws
