// The raw limit probe (bench/README.md): how many ~200-byte WebSocket frames one core can hand
// to the kernel for N loopback sockets, with nothing of a server around it. The parent, pinned
// by the caller to one core, writes the same ready-made frame `messages` times to each of N
// sockets, `batch` frames per sendmsg, round-robin like a fan-out; a child process (the other
// core) accepts the sockets and drains them with epoll. The figure is frames delivered per
// second, from the first write to the last byte read.
//   taskset -c 0 zena-send-probe --connections N --messages M --batch K [--reader-cpu 1]
//                                [--gather 1] [--uring R]
// --gather 1: the K frames copied into one buffer and written with send (as the server's flush
// does since the frames-copied change), instead of one sendmsg with an iovec per frame.
// --uring R: the writes (gathered) handed to the kernel R sockets per io_uring_enter, as the
// server's flush does through its ring (ws::send_ring), instead of one system call each.
// Loopback only. Prints one JSON line.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "send_probe: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int arg(int argc, char** argv, const char* name, int fallback) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
    }
    return fallback;
}

// The child: accepts `n` connections and reads until it has `expected` bytes, then reports
// the time of the last read on `report`.
void drain(int listener, int n, std::int64_t expected, int report) {
    const int ep = epoll_create1(0);
    for (int i = 0; i < n; ++i) {
        const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (fd < 0) die("accept");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    if (write(report, "r", 1) != 1) die("report");
    std::vector<epoll_event> events(1024);
    std::vector<char> buffer(256 * 1024);
    std::int64_t got = 0;
    const auto deadline = now_ns() + 120'000'000'000LL;
    while (got < expected && now_ns() < deadline) {
        const int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < k; ++i) {
            for (;;) {
                const auto r = read(events[static_cast<std::size_t>(i)].data.fd, buffer.data(), buffer.size());
                if (r <= 0) break;
                got += r;
            }
        }
    }
    const std::int64_t done = now_ns();
    if (write(report, &done, sizeof done) != sizeof done) die("report");
    std::exit(got == expected ? 0 : 1);
}

}  // namespace

int main(int argc, char** argv) {
    const int connections = arg(argc, argv, "--connections", 10000);
    const int messages = arg(argc, argv, "--messages", 200);
    const int batch = arg(argc, argv, "--batch", 1);
    const std::size_t payload_bytes = 200;
    // One text frame: header (2 + 2 length bytes) and a 200-byte payload, as a server sends it.
    std::string frame{"\x81\x7e", 2};
    frame += static_cast<char>(payload_bytes >> 8);
    frame += static_cast<char>(payload_bytes & 0xFF);
    frame += std::string(payload_bytes, 'x');

    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("bind");
    if (listen(listener, 4096) != 0) die("listen");
    socklen_t length = sizeof address;
    getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);

    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) die("pipe");
    const std::int64_t expected =
        static_cast<std::int64_t>(connections) * messages * static_cast<std::int64_t>(frame.size());
    const pid_t child = fork();
    if (child == 0) {
        close(pipe_fds[0]);
        // The reader on the other core, as the load generator runs beside the server.
        const int reader_cpu = arg(argc, argv, "--reader-cpu", 1);
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(reader_cpu, &cpus);
        sched_setaffinity(0, sizeof cpus, &cpus);
        drain(listener, connections, expected, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    // Each connection from its own source address range, as the load generator spreads them.
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(connections));
    for (int i = 0; i < connections; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl(0x7F000002U + static_cast<unsigned>(i % 8));
        if (bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) die("bind source");
        if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("connect");
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fds.push_back(fd);
    }
    char ready = 0;
    if (read(pipe_fds[0], &ready, 1) != 1) die("child");

    const int uring = arg(argc, argv, "--uring", 0);
    const bool gather = uring > 0 || arg(argc, argv, "--gather", 0) != 0;
    std::string gathered;
    for (int i = 0; i < batch; ++i) gathered += frame;
    io_uring ring{};
    if (uring > 0 && io_uring_queue_init(static_cast<unsigned>(uring), &ring, 0) != 0) die("io_uring_queue_init");
    std::vector<iovec> iov(static_cast<std::size_t>(batch), iovec{frame.data(), frame.size()});
    std::int64_t calls = 0;
    const std::int64_t start = now_ns();
    for (int sent = 0; sent < messages; sent += batch) {
        const int k = std::min(batch, messages - sent);
        if (uring > 0) {
            // Blocking sockets here too: a write that finds a full buffer is answered once the
            // reader made room, and the batch waits for it.
            const std::size_t bytes = frame.size() * static_cast<std::size_t>(k);
            for (std::size_t base = 0; base < fds.size(); base += static_cast<std::size_t>(uring)) {
                const std::size_t end = std::min(fds.size(), base + static_cast<std::size_t>(uring));
                for (std::size_t i = base; i < end; ++i) {
                    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
                    io_uring_prep_send(sqe, fds[i], gathered.data(), bytes, MSG_NOSIGNAL | MSG_WAITALL);
                }
                if (io_uring_submit_and_wait(&ring, static_cast<unsigned>(end - base)) < 0) die("io_uring_submit");
                ++calls;
                io_uring_cqe* cqe = nullptr;
                unsigned head = 0;
                unsigned seen = 0;
                io_uring_for_each_cqe(&ring, head, cqe) {
                    if (cqe->res != static_cast<int>(bytes)) die("io_uring send");
                    ++seen;
                }
                io_uring_cq_advance(&ring, seen);
                if (seen != end - base) die("io_uring completions");
            }
            continue;
        }
        for (const int fd : fds) {
            msghdr msg{};
            msg.msg_iov = iov.data();
            msg.msg_iovlen = static_cast<std::size_t>(k);
            std::size_t left = frame.size() * static_cast<std::size_t>(k);
            // Blocking sockets: a full buffer waits for the reader, as a server's would drain.
            while (left > 0) {
                const auto n = gather ? send(fd, gathered.data(), left, MSG_NOSIGNAL) : sendmsg(fd, &msg, MSG_NOSIGNAL);
                if (n < 0) die("sendmsg");
                ++calls;
                left -= static_cast<std::size_t>(n);
                if (left > 0) {
                    // Rare partial write: send the rest plainly.
                    std::string rest(left, 'x');
                    msg.msg_iov = nullptr;
                    const auto m = send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
                    if (m < 0) die("send");
                    ++calls;
                    left -= static_cast<std::size_t>(m);
                }
            }
        }
    }
    std::int64_t done = 0;
    if (read(pipe_fds[0], &done, sizeof done) != sizeof done) die("child result");
    int status = 0;
    waitpid(child, &status, 0);
    const double seconds = static_cast<double>(done - start) / 1e9;
    const double frames = static_cast<double>(connections) * messages;
    std::printf(
        "{\"connections\":%d,\"messages\":%d,\"batch\":%d,\"gather\":%s,\"uring\":%d,\"frames\":%.0f,\"calls\":%lld,"
        "\"seconds\":%.3f,"
        "\"frames_per_s\":%.0f,\"complete\":%s}\n",
        connections, messages, batch, gather ? "true" : "false", uring, frames, static_cast<long long>(calls), seconds,
        frames / seconds, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "true" : "false");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
