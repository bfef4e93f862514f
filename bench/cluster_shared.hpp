#pragma once
// What the zena-loadgen processes of one cluster run share (bench/cluster.sh, issue 14): one
// process per node, each holding its own connections to its own node, one of them publishing.
// They meet in a file that each maps (--cluster DIR: DIR/state), all zero at first:
//
// - every process, once all its connections are ready, adds them to `connections` and counts
//   itself in `ready`;
// - the publisher waits for --cluster-processes of them, creates DIR/ready, waits for DIR/go (the
//   script reads each node's RSS and Redis's counters in between), writes `start_ns` and
//   publishes; before each message goes out it sets the message's `remaining` to every
//   connection of every process;
// - every process, on a connection's first delivery of message `seq`, takes one from
//   `remaining[seq]`: the publisher's delivery-gated window (--gate delivery) counts a message
//   in flight until that reaches 0, wherever its connections are;
// - the publisher writes `published` as it goes and sets `done` after its last message; a
//   receiver ends when its connections have all of them (or one --drain-ms after `done`);
// - each process, once it printed its line, holds its connections until DIR/end (at most
//   --drain-ms): the script reads Redis's counters before their unsubscribes.
//
// Timestamps are CLOCK_MONOTONIC, which is one clock for the whole machine, so a latency measured
// in one process from a send time written by another is sound. Only the publisher writes
// everything but `ready`, `connections` and `remaining`; the atomics are lock-free, so they work
// across processes.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace zena::bench {

struct cluster_state {
    static constexpr std::size_t k_max_messages = 1 << 20;  // the file is about 4 MiB
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint32_t> done;
    std::atomic<std::uint64_t> connections;
    std::atomic<std::int64_t> start_ns;
    std::atomic<std::int64_t> published;
    std::atomic<std::uint32_t> remaining[k_max_messages];
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free);

// Maps DIR/state (created, or the one another process created); nullptr with `error` set.
inline cluster_state* map_cluster_state(const std::string& dir, std::string& error) {
    const auto path = dir + "/state";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, sizeof(cluster_state)) != 0) {
        error = path + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return nullptr;
    }
    void* at = ::mmap(nullptr, sizeof(cluster_state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (at == MAP_FAILED) {
        error = path + ": mmap: " + std::strerror(errno);
        return nullptr;
    }
    return static_cast<cluster_state*>(at);
}

inline bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

inline void touch_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
}

}  // namespace zena::bench
