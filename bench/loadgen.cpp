// zena-loadgen: the native load generator of the benchmark (bench/README.md). One thread, epoll,
// non-blocking sockets; it masks its frames and handles partial reads and writes. It opens N
// WebSocket connections with real JWTs (source addresses spread over 127.0.0.2 upward), then
// publishes through the server API and checks every delivery: latency from a send timestamp
// in each message, and losses, duplicates and reorders (which must be zero).
//
//   zena-loadgen --port 3000 --secret S --api-key K --connections 1000 --messages 2000
//                [--mode fanout|targeted] [--publishers 2] [--inflight 8] [--payload 200]
//                [--sources 4] [--hold-ms 0] [--timeout-ms 60000] [--server-pid PID]
//                [--batch 1] [--ask-chunks 0] [--ask-interval-us 2000] [--rate 0]
//                [--connect-inflight 1024] [--deflate 0]
//
// --batch K (targeted): each request is one POST /api/batch of K messages to random users;
// --messages still counts messages. --ask-chunks N (fan-out): while the fan-out runs, one more
// publisher connection streams N ask.response chunks to user u0, one every --ask-interval-us
// (default 2000: 500 chunks a second, faster than a model writes), pipelined on one keep-alive
// connection; their latency and order are reported on their own ("ask"). The fan-out goes on
// until the stream is done. --rate R (fan-out): publish R messages a second, paced, instead of
// as fast as --inflight allows (still at most --inflight unanswered): latency at a load every
// server sustains, rather than at each one's limit. --connect-inflight C: at most C handshakes
// in progress at once (0: all N at once); a burst of 19,000 SYNs overflows any listen backlog,
// and a server that then resets connections measures its backlog, not its handshakes.
// --deflate 1: offer permessage-deflate with no context takeover either way (RFC 7692), insist
// that the server accepts, and inflate every compressed message before checking it.
//
// Prints one JSON object with the results. Only loopback targets are accepted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/jwt.hpp"
#include "ws/deflate.hpp"

namespace {

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

struct options {
    std::string host = "127.0.0.1";
    int port = 3000;
    std::string secret;
    std::string api_key;
    int connections = 100;
    int messages = 1000;
    std::string mode = "fanout";
    int publishers = 2;
    int inflight = 8;
    int payload = 200;
    int sources = 4;
    int hold_ms = 0;
    int timeout_ms = 60000;
    int server_pid = 0;
    int batch = 1;
    int ask_chunks = 0;
    int ask_interval_us = 2000;
    int rate = 0;
    int connect_inflight = 1024;
    int deflate = 0;
};

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "zena-loadgen: %s\n", why.c_str());
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    // One table: each flag and the field it sets.
    const std::pair<std::string_view, std::string*> text[] = {
        {"--host", &o.host}, {"--secret", &o.secret}, {"--api-key", &o.api_key}, {"--mode", &o.mode}};
    const std::pair<std::string_view, int*> numbers[] = {{"--port", &o.port},
                                                         {"--connections", &o.connections},
                                                         {"--messages", &o.messages},
                                                         {"--publishers", &o.publishers},
                                                         {"--inflight", &o.inflight},
                                                         {"--payload", &o.payload},
                                                         {"--sources", &o.sources},
                                                         {"--hold-ms", &o.hold_ms},
                                                         {"--timeout-ms", &o.timeout_ms},
                                                         {"--server-pid", &o.server_pid},
                                                         {"--batch", &o.batch},
                                                         {"--ask-chunks", &o.ask_chunks},
                                                         {"--ask-interval-us", &o.ask_interval_us},
                                                         {"--rate", &o.rate},
                                                         {"--connect-inflight", &o.connect_inflight},
                                                         {"--deflate", &o.deflate}};
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) die("missing value for " + std::string{a});
        const std::string v = argv[++i];
        bool known = false;
        for (const auto& [name, field] : text) {
            if (a == name) *field = v, known = true;
        }
        for (const auto& [name, field] : numbers) {
            if (a == name) *field = std::stoi(v), known = true;
        }
        if (!known) die("unknown option " + std::string{a});
    }
    if (o.host.rfind("127.", 0) != 0) die("only loopback targets (127.0.0.0/8) are allowed");
    if (o.mode != "fanout" && o.mode != "targeted") die("--mode is fanout or targeted");
    if (o.connections < 1 || o.publishers < 1 || o.inflight < 1 || o.batch < 1) die("counts must be positive");
    if (o.batch > 1 && o.mode != "targeted") die("--batch is for --mode targeted");
    if (o.ask_chunks > 0 && o.mode != "fanout") die("--ask-chunks is for --mode fanout");
    if (o.rate < 0) die("--rate must not be negative");
    return o;
}

// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
double process_cpu_s(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::vector<std::string> fields;
    std::string field;
    for (char c : stat.substr(close + 2)) {
        if (c == ' ') {
            fields.push_back(field);
            field.clear();
        } else {
            field += c;
        }
    }
    if (fields.size() < 13) return 0;
    return static_cast<double>(std::stoll(fields[11]) + std::stoll(fields[12])) /
           static_cast<double>(sysconf(_SC_CLK_TCK));
}

long process_rss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
}

double self_cpu_s() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int open_socket(const std::string& source, const std::string& host, int port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string{"socket: "} + std::strerror(errno));
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!source.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        inet_pton(AF_INET, source.c_str(), &local.sin_addr);
        if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
            die("bind " + source + ": " + std::strerror(errno));
        }
    }
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &remote.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 && errno != EINPROGRESS) {
        die(std::string{"connect: "} + std::strerror(errno));
    }
    return fd;
}

// A socket with an output queue written as far as the kernel takes it.
struct peer {
    int fd = -1;
    std::string out;
    std::string in;
    bool flush() {
        while (!out.empty()) {
            const auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
            out.erase(0, static_cast<std::size_t>(n));
        }
        return true;
    }
    // Reads what is there; false when the peer closed or failed. Sockets are edge-triggered, so a
    // short read means the socket was drained: data after it raises a new edge, and reading on to
    // EAGAIN would spend a second system call per wake-up (the generator's own cost inflates the
    // latency it measures).
    bool fill() {
        char buf[65536];
        for (;;) {
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                in.append(buf, static_cast<std::size_t>(n));
                if (static_cast<std::size_t>(n) < sizeof buf) return true;
                continue;
            }
            if (n == 0) return false;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
    }
};

struct ws_conn : peer {
    bool upgraded = false;
    bool welcomed = false;
    std::vector<std::int64_t> last_seq;  // per publisher
    std::uint64_t received = 0;
};

struct publisher : peer {
    int outstanding = 0;
    std::int64_t next_seq = 0;
};

// Client frames are masked (RFC 6455 §5.3); the key need not be secret here.
std::string masked_frame(std::uint8_t opcode, std::string_view payload) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
    if (payload.size() < 126) {
        f += static_cast<char>(0x80 | payload.size());
    } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(payload.size() >> 8);
        f += static_cast<char>(payload.size() & 0xff);
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    f.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i % 4]);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse(argc, argv);
    zena::auth::jwt_settings jwt;
    jwt.secret = o.secret;
    const int epfd = epoll_create1(EPOLL_CLOEXEC);
    std::vector<ws_conn> conns(static_cast<std::size_t>(o.connections));
    // The fan-out or targeted publishers, then (with --ask-chunks) the Ask stream's.
    const int ask = o.ask_chunks > 0 ? o.publishers : -1;
    std::vector<publisher> pubs(static_cast<std::size_t>(o.publishers + (ask >= 0 ? 1 : 0)));
    if (o.messages % o.batch != 0) die("--messages must be a multiple of --batch");
    std::vector<std::uint32_t> ask_latencies_us;
    std::uint64_t ask_delivered = 0;
    std::uint64_t ask_reorders = 0;
    std::int64_t ask_sent = 0;
    std::int64_t ask_answered = 0;
    std::int64_t ask_next_ns = 0;   // when the next Ask chunk is due
    std::int64_t rate_next_ns = 0;  // with --rate: when the next fan-out message is due
    std::vector<std::uint32_t> latencies_us;
    std::string inflated;          // the last compressed message, inflated
    std::uint64_t compressed = 0;  // messages that came compressed
    latencies_us.reserve(
        static_cast<std::size_t>(std::min<std::int64_t>(20'000'000, std::int64_t{o.messages} * o.connections)));
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t reorders = 0;
    std::uint64_t gaps = 0;
    std::uint64_t closed_early = 0;

    // Token for the epoll data: connections are [0, N), publishers N + i.
    const auto watch = [&](int fd, std::uint64_t id, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die(std::string{"epoll_ctl: "} + std::strerror(errno));
    };

    // Phase 1: connect and upgrade everyone, at most --connect-inflight at a time: each
    // welcome (or early close) opens the next.
    const auto t_connect = now_ns();
    int opened = 0;
    const auto open_next = [&] {
        if (opened == o.connections) return;
        const int i = opened++;
        auto& c = conns[static_cast<std::size_t>(i)];
        const auto source = o.sources > 0 ? "127.0.0." + std::to_string(2 + i % o.sources) : std::string{};
        c.fd = open_socket(source, o.host, o.port);
        c.last_seq.assign(pubs.size(), -1);
        const auto token =
            zena::auth::mint_jwt(jwt, "u" + std::to_string(i), std::chrono::hours(1), zena::auth::unix_now());
        c.out = "GET /ws HTTP/1.1\r\nHost: " + o.host +
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Authorization: Bearer " +
                token + "\r\n" +
                (o.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
                             "server_no_context_takeover\r\n"
                           : "") +
                "\r\n";
        watch(c.fd, static_cast<std::uint64_t>(i), EPOLLIN | EPOLLOUT | EPOLLET);
    };
    const int first = o.connect_inflight > 0 ? std::min(o.connect_inflight, o.connections) : o.connections;
    for (int i = 0; i < first; ++i) open_next();
    int welcomed = 0;
    std::int64_t connect_done = 0;

    std::string padding(static_cast<std::size_t>(std::max(0, o.payload - 120)), 'x');
    std::int64_t published = 0;
    std::int64_t answered = 0;
    std::mt19937 rng(12345);
    const auto chunk_for = [&](int p, std::int64_t seq) {
        return "P" + std::to_string(p) + ":" + std::to_string(seq) + ":" + std::to_string(now_ns()) + " " + padding;
    };
    const auto targeted_item = [&](int user, const std::string& chunk) {
        return R"({"userId":"u)" + std::to_string(user) + R"(","type":"ask.response","payload":{"chunk":")" + chunk +
               R"(","isComplete":false,"streamId":"bench"}})";
    };
    const auto request = [&](const std::string& path, const std::string& body) {
        return "POST " + path + " HTTP/1.1\r\nHost: " + o.host + "\r\nAuthorization: Bearer " + o.api_key +
               "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
               body;
    };
    const auto random_user = [&] { return std::uniform_int_distribution<int>(0, o.connections - 1)(rng); };
    // One request of publisher p: a fan-out message, o.batch targeted ones, or an Ask chunk to u0.
    const auto request_for = [&](int p) {
        auto& pub = pubs[static_cast<std::size_t>(p)];
        if (p == ask) return request("/api/broadcast", targeted_item(0, chunk_for(p, pub.next_seq++)));
        if (o.mode == "fanout") {
            return request("/api/broadcast-all", R"({"type":"ask.response","payload":{"chunk":")" +
                                                     chunk_for(p, pub.next_seq++) +
                                                     R"(","isComplete":false,"streamId":"bench"}})");
        }
        if (o.batch == 1) return request("/api/broadcast", targeted_item(random_user(), chunk_for(p, pub.next_seq++)));
        std::string items;
        for (int k = 0; k < o.batch; ++k) {
            if (k > 0) items += ',';
            items += targeted_item(random_user(), chunk_for(p, pub.next_seq++));
        }
        return request("/api/batch", R"({"items":[)" + items + "]}");
    };
    const auto pump = [&](int p) {
        auto& pub = pubs[static_cast<std::size_t>(p)];
        if (p == ask) {
            // The Ask stream: chunks at a steady pace, as a backend relays a model's tokens.
            const auto now = now_ns();
            while (ask_sent < o.ask_chunks && now >= ask_next_ns) {
                pub.out += request_for(p);
                ++pub.outstanding;
                ++ask_sent;
                ask_next_ns += std::int64_t{o.ask_interval_us} * 1000;
            }
        } else {
            // With an Ask stream, the fan-out goes on until the stream is done.
            const auto more = [&] { return published < o.messages || (ask >= 0 && ask_answered < o.ask_chunks); };
            const auto now = now_ns();
            while (pub.outstanding < o.inflight && more() && (o.rate == 0 || now >= rate_next_ns)) {
                pub.out += request_for(p);
                ++pub.outstanding;
                published += o.batch;
                if (o.rate > 0) rate_next_ns += 1'000'000'000LL / o.rate;
            }
        }
        pub.flush();
    };

    // Parses the frames in c.in; returns false when the server closed the connection.
    const auto on_frames = [&](ws_conn& c) {
        for (;;) {
            if (c.in.size() < 2) return true;
            const auto b0 = static_cast<std::uint8_t>(c.in[0]);
            const auto b1 = static_cast<std::uint8_t>(c.in[1]);
            std::size_t len = b1 & 0x7f;
            std::size_t off = 2;
            if (len == 126) {
                if (c.in.size() < 4) return true;
                len = (static_cast<std::uint8_t>(c.in[2]) << 8) | static_cast<std::uint8_t>(c.in[3]);
                off = 4;
            } else if (len == 127) {
                if (c.in.size() < 10) return true;
                len = 0;
                for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<std::uint8_t>(c.in[2 + k]);
                off = 10;
            }
            if (c.in.size() < off + len) return true;
            std::string_view payload(c.in.data() + off, len);
            if ((b0 & 0x40) != 0) {  // RSV1: a compressed message (permessage-deflate)
                if (zena::ws::inflate_message(payload, 1U << 20, inflated) != zena::ws::inflate_status::ok) {
                    die("a compressed message did not inflate");
                }
                payload = inflated;
                ++compressed;
            }
            const auto opcode = b0 & 0x0f;
            if (opcode == 0x8) return false;
            if (opcode == 0x9) c.out += masked_frame(0xA, payload);
            if (opcode == 0x1) {
                if (!c.welcomed) {
                    c.welcomed = true;
                    if (++welcomed == o.connections) connect_done = now_ns();
                    open_next();
                } else {
                    const auto at = payload.find("\"chunk\":\"P");
                    if (at != std::string_view::npos) {
                        const char* p = payload.data() + at + 10;
                        char* end = nullptr;
                        const auto pub = std::strtol(p, &end, 10);
                        const auto seq = std::strtoll(end + 1, &end, 10);
                        const auto sent = std::strtoll(end + 1, &end, 10);
                        const auto lat =
                            static_cast<std::uint32_t>(std::min<std::int64_t>((now_ns() - sent) / 1000, UINT32_MAX));
                        auto& last = c.last_seq[static_cast<std::size_t>(pub)];
                        if (pub == ask) {
                            ask_latencies_us.push_back(lat);
                            ++ask_delivered;
                            if (seq != last + 1) ++ask_reorders;
                            last = seq;
                        } else {
                            if (latencies_us.size() < latencies_us.capacity()) latencies_us.push_back(lat);
                            ++delivered;
                            ++c.received;
                            if (seq == last)
                                ++duplicates;
                            else if (seq < last)
                                ++reorders;
                            else if (o.mode == "fanout" && seq != last + 1)
                                ++gaps;
                            if (seq > last) last = seq;
                        }
                    }
                }
            }
            c.in.erase(0, off + len);
        }
    };

    // Publisher responses: count them (each is one HTTP response with Content-Length).
    const auto on_responses = [&](int p) {
        auto& pub = pubs[static_cast<std::size_t>(p)];
        for (;;) {
            const auto head_end = pub.in.find("\r\n\r\n");
            if (head_end == std::string::npos) return;
            const auto cl = pub.in.find("Content-Length: ");
            std::size_t body = 0;
            if (cl != std::string::npos && cl < head_end) body = std::stoul(pub.in.substr(cl + 16));
            if (pub.in.size() < head_end + 4 + body) return;
            if (pub.in.compare(0, 12, "HTTP/1.1 200") != 0) die("publish refused: " + pub.in.substr(0, head_end));
            pub.in.erase(0, head_end + 4 + body);
            --pub.outstanding;
            if (p == ask)
                ++ask_answered;
            else
                answered += o.batch;
        }
    };

    const auto deadline = now_ns() + std::int64_t{o.timeout_ms} * 1'000'000;
    std::vector<epoll_event> events(4096);
    bool publishing = false;
    std::int64_t t_publish = 0;
    std::int64_t t_last_delivery = 0;
    // CPU is counted from the connect on, and again from the first publish: a run that publishes
    // reports the publishing phase alone (the connects of a long benchmark slow down as the
    // generator's ports fill with TIME_WAIT, which says nothing about the server).
    double server_cpu_0 = o.server_pid ? process_cpu_s(o.server_pid) : 0;
    double self_cpu_0 = self_cpu_s();
    long rss_idle = 0;
    for (;;) {
        if (now_ns() > deadline) break;
        if (!publishing && welcomed == o.connections) {
            if (o.hold_ms > 0) {
                // Idle memory: hold every connection, heartbeats running, then read the RSS.
                const auto until = now_ns() + std::int64_t{o.hold_ms} * 1'000'000;
                while (now_ns() < until) {
                    const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 100);
                    for (int k = 0; k < n; ++k) {
                        const auto id = events[static_cast<std::size_t>(k)].data.u64;
                        if (id < conns.size()) {
                            auto& c = conns[id];
                            if (!c.fill() || !on_frames(c)) ++closed_early;
                            c.flush();
                        }
                    }
                }
                if (o.server_pid) rss_idle = process_rss_kib(o.server_pid);
            }
            publishing = true;
            t_publish = now_ns();
            if (o.messages > 0 || o.ask_chunks > 0) {
                server_cpu_0 = o.server_pid ? process_cpu_s(o.server_pid) : 0;
                self_cpu_0 = self_cpu_s();
            }
            ask_next_ns = t_publish;
            rate_next_ns = t_publish;
            for (std::size_t p = 0; p < pubs.size(); ++p) {
                auto& pub = pubs[p];
                pub.fd = open_socket({}, o.host, o.port);
                watch(pub.fd, conns.size() + p, EPOLLIN | EPOLLOUT | EPOLLET);
            }
        }
        if (publishing && answered == published && published >= o.messages) {
            const bool all_in = o.mode == "fanout" ? delivered >= static_cast<std::uint64_t>(published) * conns.size()
                                                   : delivered >= static_cast<std::uint64_t>(o.messages);
            const bool ask_in =
                ask < 0 || (ask_answered == o.ask_chunks && ask_delivered >= static_cast<std::uint64_t>(o.ask_chunks));
            if (all_in && ask_in) break;
        }
        // While the Ask stream is due, wake often enough to keep its pace.
        const bool ask_pacing = publishing && ask >= 0 && ask_sent < o.ask_chunks;
        const bool rate_pacing = publishing && o.rate > 0 && published < o.messages;
        if (ask_pacing) pump(ask);
        if (rate_pacing) {
            for (int p = 0; p < o.publishers; ++p) pump(p);
        }
        const bool pacing = ask_pacing || rate_pacing;
        const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), pacing ? 1 : 50);
        for (int k = 0; k < n; ++k) {
            const auto id = events[static_cast<std::size_t>(k)].data.u64;
            if (id < conns.size()) {
                auto& c = conns[id];
                const bool alive = c.fill();
                if (!c.upgraded) {
                    const auto end = c.in.find("\r\n\r\n");
                    if (end != std::string::npos) {
                        if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) die("upgrade refused: " + c.in.substr(0, end));
                        if (o.deflate && c.in.substr(0, end).find("permessage-deflate") == std::string::npos) {
                            die("the server declined permessage-deflate");
                        }
                        c.upgraded = true;
                        c.in.erase(0, end + 4);
                    }
                }
                const auto before = delivered;
                if (c.upgraded && !on_frames(c)) ++closed_early;
                if (delivered != before) t_last_delivery = now_ns();
                if (!alive) {
                    ++closed_early;
                    if (!c.welcomed) open_next();
                }
                c.flush();
            } else {
                const auto p = static_cast<int>(id - conns.size());
                auto& pub = pubs[static_cast<std::size_t>(p)];
                if (!pub.fill()) die("the server closed a publisher connection");
                on_responses(p);
                pump(p);
            }
        }
    }

    const double server_cpu = o.server_pid ? process_cpu_s(o.server_pid) - server_cpu_0 : 0;
    const double self_cpu = self_cpu_s() - self_cpu_0;
    std::sort(latencies_us.begin(), latencies_us.end());
    const auto pct = [&](double q) -> std::uint32_t {
        if (latencies_us.empty()) return 0;
        return latencies_us[std::min(latencies_us.size() - 1,
                                     static_cast<std::size_t>(q * static_cast<double>(latencies_us.size())))];
    };
    std::sort(ask_latencies_us.begin(), ask_latencies_us.end());
    const auto ask_pct = [&](double q) -> std::uint32_t {
        if (ask_latencies_us.empty()) return 0;
        return ask_latencies_us[std::min(ask_latencies_us.size() - 1,
                                         static_cast<std::size_t>(q * static_cast<double>(ask_latencies_us.size())))];
    };
    const std::uint64_t expected = o.mode == "fanout" ? static_cast<std::uint64_t>(published) * conns.size()
                                                      : static_cast<std::uint64_t>(published);
    const double connect_s = connect_done ? static_cast<double>(connect_done - t_connect) / 1e9 : 0;
    const double deliver_s = t_last_delivery > t_publish ? static_cast<double>(t_last_delivery - t_publish) / 1e9 : 0;
    std::printf(
        "{\"mode\":\"%s\",\"connections\":%d,\"welcomed\":%d,\"handshakes_per_s\":%.0f,\"messages\":%d,"
        "\"answered\":%lld,\"expected_deliveries\":%llu,\"delivered\":%llu,\"lost\":%lld,\"duplicates\":%llu,"
        "\"reorders\":%llu,\"gaps\":%llu,\"closed_early\":%llu,\"deliveries_per_s\":%.0f,"
        "\"latency_us\":{\"p50\":%u,\"p99\":%u,\"p999\":%u,\"max\":%u},\"server_cpu_s\":%.2f,"
        "\"loadgen_cpu_s\":%.2f,\"wall_s\":%.2f,\"server_rss_idle_kib\":%ld,\"batch\":%d,\"compressed\":%llu,"
        "\"ask\":{\"chunks\":%d,\"delivered\":%llu,\"out_of_order\":%llu,\"latency_us\":{\"p50\":%u,\"p99\":%u,"
        "\"max\":%u}}}\n",
        o.mode.c_str(), o.connections, welcomed, connect_s > 0 ? o.connections / connect_s : 0,
        static_cast<int>(published), static_cast<long long>(answered), static_cast<unsigned long long>(expected),
        static_cast<unsigned long long>(delivered),
        static_cast<long long>(expected) - static_cast<long long>(delivered),
        static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(reorders),
        static_cast<unsigned long long>(gaps), static_cast<unsigned long long>(closed_early),
        deliver_s > 0 ? static_cast<double>(delivered) / deliver_s : 0, pct(0.5), pct(0.99), pct(0.999),
        latencies_us.empty() ? 0 : latencies_us.back(), server_cpu, self_cpu, deliver_s, rss_idle, o.batch,
        static_cast<unsigned long long>(compressed), o.ask_chunks, static_cast<unsigned long long>(ask_delivered),
        static_cast<unsigned long long>(ask_reorders), ask_pct(0.5), ask_pct(0.99),
        ask_latencies_us.empty() ? 0 : ask_latencies_us.back());
    const bool clean = welcomed == o.connections && delivered == expected && duplicates == 0 && reorders == 0 &&
                       gaps == 0 && closed_early == 0 && ask_delivered == static_cast<std::uint64_t>(o.ask_chunks) &&
                       ask_reorders == 0;
    return clean ? 0 : 1;
}
