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
//                [--mode channel] [--channel bench:all] [--grant bench:*]
//                [--mode resume] [--missed 20] [--rounds 3]
//                [--mode store] [--store-channels 1000]
//                [--gate answer|delivery] [--rates 10,20,40 [--step-ms 5000] [--drain-ms 10000]
//                 [--hold-p99-ms 150] [--stop-p99-ms 1000] [--targeted-rate 0]]
//                [--burst 100 [--burst-every-ms 1000] [--bursts 5]]
//                [--protocol zena|socketio]
//                [--cluster DIR --cluster-role publish|receive [--cluster-processes K]]
//
// The publisher's shape (bench/README.md, "Shapes"; bench/shapes.sh runs the matrix):
// - a window (the default): at most --inflight publishes in flight per publisher connection, each
//   until it is answered (--gate answer, the default) or until every target connection received
//   it (--gate delivery: all N for a fan-out, the one user's connection for a targeted publish);
// - an open loop (--rates R1,R2,...): Poisson arrivals at R a second for --step-ms, whatever the
//   answers and deliveries, then a drain (at most --drain-ms) until the step's deliveries are in;
//   one step per rate, the next only while p99 stays under --stop-p99-ms. A step is held when
//   every delivery came and its p99 is at most --hold-p99-ms; "held_rate" is the highest held.
//   Latency counts from when a message was due, so a generator that falls behind cannot hide it
//   (each step reports late_max_ms, its own lag). --targeted-rate T adds Poisson targeted
//   publishes (one random user each) at T a second beside the fan-out: the mixed shape, whose
//   targeted latency is reported apart;
// - bursts (--burst K): K publishes due at once every --burst-every-ms, --bursts times; each
//   burst's completion time (due to its last delivery) and the latencies.
// Every shape reports "in_flight" (what it meant in this run) and the CPU of both sides.
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
// --mode channel: the fan-out on one shared channel (docs/channels.md). Every connection's token
// carries a `channels` claim with --grant (default bench:*); after its welcome each connection
// subscribes to --channel (default bench:all) and waits for `subscribed`; the publisher then
// sends through POST /api/publish {"channel":...}. The checks are the fan-out's, plus: a
// delivery that carries a channel position (history on) must be the channel's next seq.
//
// --mode resume: the reconnect storm. N clients, each its own user, connect and keep their
// personal channel's position from the welcome. Then, --rounds times, alternating: all close,
// reconnect without a position (plain: nothing missed; the welcome's position must be the one
// kept), all close, --missed events per user are published through /api/batch (--batch items a
// request, whole users per request, default 1000) while nobody is connected, and all reconnect
// with ?since=<epoch>:<seq> (resume: each welcome must say recovered:true, missed:M, and the M
// events must follow, in order, numbered on from the kept position). Each reconnect phase is
// timed from its first connect to its last welcome (plain) or its last replayed event (resume),
// at most --connect-inflight handshakes in progress; the tokens are minted before, so neither
// phase pays for them. Between phases the generator waits for /api/stats to count 0
// connections.
//
// --mode store: no WebSocket. Publishes --messages events (payload about --payload bytes)
// round-robin to --store-channels channels (hist:c0, hist:c1, ...) through /api/batch of
// --batch items, and reads the server's RSS before and after (--server-pid): the history's
// memory per stored event, with /metrics' zena_history_evicted_total to show none was evicted.
//
// --protocol socketio: the connections speak Socket.IO 4 over a raw WebSocket (Engine.IO v4, the
// websocket transport alone: GET /socket.io/?EIO=4&transport=websocket), for the Socket.IO peer
// (bench/peers/sio_server.mjs). The server's open packet `0{...}` is answered with the CONNECT
// `40{"token":"<JWT>"}` (the token where Socket.IO's `auth` puts it), its `40{"sid":...}` is the
// welcome, its pings `2` are answered `3`, and events arrive as `42["ask.response",{...}]`,
// checked like any other delivery. Fan-out and targeted modes only.
//
// --cluster DIR: one of several generator processes of one run, each with its own connections to
// its own node (bench/cluster.sh: three nodes on one Redis), sharing DIR/state
// (bench/cluster_shared.hpp). --cluster-role publish: this process also publishes (fan-out, one
// publisher connection, to its own node), after all --cluster-processes K processes are ready and
// DIR/go exists (it creates DIR/ready when they are); a message is sent to every connection of
// every process, and with --gate delivery it is in flight until all of them received it.
// --cluster-role receive: connections only; the run ends when they have every message the
// publisher sent. --first-user F names the connections' users from u<F> on (default 0), so the
// processes' users differ. Each process prints its own line, with its latency histogram
// ("latency_hist") and the absolute start and last-delivery times, which the summary merges
// (bench/summarize_cluster.py), then holds its connections until DIR/end exists (at most
// --drain-ms), so that the script reads Redis before they close.
//
// Prints one JSON object with the results. Only loopback targets are accepted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
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
#include "cluster_shared.hpp"
#include "load_shapes.hpp"
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
    int batch = 0;  // 0: not given (1; 1,000 for resume and store)
    int ask_chunks = 0;
    int ask_interval_us = 2000;
    int rate = 0;
    int connect_inflight = 1024;
    int deflate = 0;
    std::string channel = "bench:all";
    std::string grant = "bench:*";
    int missed = 20;
    int rounds = 3;
    int store_channels = 1000;
    std::string perf_ctl;    // perf's control FIFO (see perf_ctl)
    std::string perf_phase;  // --mode resume: the phase kind recorded (plain or resume); others: the publishing
    // The publisher's shape (bench/README.md, "Shapes"); the default is the answer-gated window.
    std::string gate = "answer";  // window: a publish is in flight until answered, or until delivered
    std::string rates;            // open loop: Poisson arrivals, one step per rate ("10,20,40")
    int step_ms = 5000;           // open loop: each step's arrivals last this long
    int drain_ms = 10000;         // open loop: at most this long after a step for its deliveries
    int hold_p99_ms = 150;        // open loop: a step is held with every delivery made and p99 at most this
    int stop_p99_ms = 1000;       // open loop: no higher step after one whose p99 passed this
    int targeted_rate = 0;        // open loop: targeted publishes a second beside the fan-out (mixed)
    int burst = 0;                // bursts: publishes at once, every --burst-every-ms, --bursts times
    int burst_every_ms = 1000;
    int bursts = 5;
    std::string protocol = "zena";         // zena, or socketio (Engine.IO v4 over a raw WebSocket)
    std::string cluster;                   // the directory the processes of a cluster run share
    std::string cluster_role = "publish";  // publish, or receive (connections only)
    int cluster_processes = 1;             // the processes the publisher waits for
    int first_user = 0;                    // the connections' users are u<first_user>, u<first_user + 1>, ...
};

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "zena-loadgen: %s\n", why.c_str());
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    // One table: each flag and the field it sets.
    const std::pair<std::string_view, std::string*> text[] = {{"--host", &o.host},
                                                              {"--secret", &o.secret},
                                                              {"--api-key", &o.api_key},
                                                              {"--mode", &o.mode},
                                                              {"--channel", &o.channel},
                                                              {"--grant", &o.grant},
                                                              {"--perf-ctl", &o.perf_ctl},
                                                              {"--perf-phase", &o.perf_phase},
                                                              {"--gate", &o.gate},
                                                              {"--rates", &o.rates},
                                                              {"--protocol", &o.protocol},
                                                              {"--cluster", &o.cluster},
                                                              {"--cluster-role", &o.cluster_role}};
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
                                                         {"--deflate", &o.deflate},
                                                         {"--missed", &o.missed},
                                                         {"--rounds", &o.rounds},
                                                         {"--store-channels", &o.store_channels},
                                                         {"--step-ms", &o.step_ms},
                                                         {"--drain-ms", &o.drain_ms},
                                                         {"--hold-p99-ms", &o.hold_p99_ms},
                                                         {"--stop-p99-ms", &o.stop_p99_ms},
                                                         {"--targeted-rate", &o.targeted_rate},
                                                         {"--burst", &o.burst},
                                                         {"--burst-every-ms", &o.burst_every_ms},
                                                         {"--bursts", &o.bursts},
                                                         {"--cluster-processes", &o.cluster_processes},
                                                         {"--first-user", &o.first_user}};
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
    if (o.mode != "fanout" && o.mode != "targeted" && o.mode != "channel" && o.mode != "resume" && o.mode != "store") {
        die("--mode is fanout, targeted, channel, resume or store");
    }
    if (o.batch == 0) o.batch = o.mode == "resume" || o.mode == "store" ? 1000 : 1;
    if (o.connections < 1 || o.publishers < 1 || o.inflight < 1 || o.batch < 1) die("counts must be positive");
    if (o.batch > 1 && o.mode != "targeted" && o.mode != "resume" && o.mode != "store") {
        die("--batch is for --mode targeted, resume or store");
    }
    if (o.ask_chunks > 0 && o.mode != "fanout") die("--ask-chunks is for --mode fanout");
    if (o.missed < 1 || o.rounds < 1 || o.store_channels < 1)
        die("--missed, --rounds, --store-channels must be positive");
    if (o.mode == "resume" && o.batch < o.missed) die("--batch must hold at least --missed items (whole users)");
    if (o.rate < 0) die("--rate must not be negative");
    std::vector<double> rates;
    if (!zena::bench::parse_rates(o.rates, rates)) die("--rates is a list of rates a second: 10,20,40");
    if (o.gate != "answer" && o.gate != "delivery") die("--gate is answer or delivery");
    if (o.gate == "delivery" && o.batch > 1) die("--gate delivery counts single publishes: no --batch");
    const bool open_loop = !rates.empty();
    // --rate and --ask-chunks go together (run.sh's ask scenario); the scheduled shapes alone.
    if (int{open_loop} + int{o.burst > 0} + int{o.rate > 0 || o.ask_chunks > 0} > 1) {
        die("one schedule at a time: --rates, --burst, or --rate and --ask-chunks");
    }
    if ((open_loop || o.burst > 0) && (o.mode == "resume" || o.mode == "store" || o.batch > 1)) {
        die("--rates and --burst are for single publishes in --mode fanout, targeted or channel");
    }
    if (o.targeted_rate < 0 || (o.targeted_rate > 0 && (!open_loop || o.mode == "targeted"))) {
        die("--targeted-rate goes beside an open-loop fan-out (--rates)");
    }
    if (o.step_ms < 100 || o.drain_ms < 0 || o.hold_p99_ms < 1 || o.stop_p99_ms < 1 || o.burst < 0 || o.bursts < 1 ||
        o.burst_every_ms < 1 || o.burst > 100000) {
        die("--step-ms (>= 100), --drain-ms, --hold-p99-ms, --stop-p99-ms, --burst, --bursts, --burst-every-ms out of "
            "range");
    }
    if (o.protocol != "zena" && o.protocol != "socketio") die("--protocol is zena or socketio");
    if (o.protocol == "socketio" && ((o.mode != "fanout" && o.mode != "targeted") || o.deflate)) {
        die("--protocol socketio is for --mode fanout or targeted, without --deflate");
    }
    if (!o.cluster.empty()) {
        if (o.cluster_role != "publish" && o.cluster_role != "receive") die("--cluster-role is publish or receive");
        if (o.mode != "fanout" || o.publishers != 1 || open_loop || o.burst > 0 || o.ask_chunks > 0) {
            die("--cluster is for a --mode fanout window with --publishers 1");
        }
        if (o.cluster_processes < 1 || o.messages < 1 ||
            static_cast<std::size_t>(o.messages) > zena::bench::cluster_state::k_max_messages) {
            die("--cluster-processes and --messages out of range");
        }
    }
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

// CPU seconds all cores were busy since boot (/proc/stat: user, nice, system, irq, softirq,
// steal). Over a run, less the server's and the generator's own, it is what other processes of
// this shared machine took: a run where that is large was disturbed.
double machine_busy_s() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    return static_cast<double>(user + nice + system + irq + softirq + steal) /
           static_cast<double>(sysconf(_SC_CLK_TCK));
}

// perf's control FIFO (`perf record --control fifo:PATH -D -1`): the generator enables the
// recording for the part of the run it measures. -1: none.
int perf_ctl_fd = -1;
void perf_ctl(const char* command) {
    if (perf_ctl_fd < 0) return;
    const std::string line = std::string{command} + "\n";
    if (::write(perf_ctl_fd, line.data(), line.size()) < 0) {
        std::fprintf(stderr, "zena-loadgen: perf control: %s\n", std::strerror(errno));
    }
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
    static constexpr std::size_t k_read = 65536;  // one recv at most
    // Room for one whole read and a frame left from the one before, taken before the run (and
    // before its connects, which are timed): a buffer grown step by step as a burst arrives
    // copied itself and called malloc on every step, for every connection, and a buffer first
    // touched by the first burst paid a page fault per 4 KiB per connection (that burst took
    // 3-4 times as long as the next, whatever the server).
    void ready_buffer() {
        if (in.capacity() >= 2 * k_read) return;
        const auto kept = in.size();
        in.reserve(2 * k_read);
        in.resize(in.capacity());
        in.resize(kept);
    }
    // The buffer's room is taken beforehand (ready_buffer; nothing gives it back), so a read
    // never grows it.
    bool fill() {
        char buf[k_read];
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
    std::string token;  // --protocol socketio: sent in the CONNECT packet, once the server opened
    bool upgraded = false;
    bool welcomed = false;
    bool subscribed = false;             // --mode channel: `subscribed` came
    std::uint64_t chan_seq = 0;          // --mode channel: the last channel seq delivered (0: none yet)
    std::vector<std::int64_t> last_seq;  // per publisher
    std::uint64_t received = 0;
};

struct publisher : peer {
    int outstanding = 0;  // requests not answered yet
    std::int64_t next_seq = 0;
    std::int64_t undelivered = 0;    // messages some target connection has not received yet
    bool to_all = false;             // its messages go to every connection (else to one user's)
    std::int64_t max_in_flight = 0;  // the most it had in flight at once (as its window counts)
};

// At most this many unanswered requests on one publisher connection, whatever the shape: an open
// loop against a server that stops answering must not grow the generator without bound.
constexpr int k_max_unanswered = 4096;

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

// One complete frame at `from` in `whole`: its first byte, its payload and its size on the wire;
// false while it is incomplete. The server's frames are never masked.
bool next_frame(const std::string& whole, std::size_t from, std::uint8_t& b0, std::string_view& payload,
                std::size_t& size) {
    const std::string_view in = std::string_view(whole).substr(from);
    if (in.size() < 2) return false;
    b0 = static_cast<std::uint8_t>(in[0]);
    std::size_t len = static_cast<std::uint8_t>(in[1]) & 0x7f;
    std::size_t off = 2;
    if (len == 126) {
        if (in.size() < 4) return false;
        len = (static_cast<std::size_t>(static_cast<std::uint8_t>(in[2])) << 8) | static_cast<std::uint8_t>(in[3]);
        off = 4;
    } else if (len == 127) {
        if (in.size() < 10) return false;
        len = 0;
        for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<std::uint8_t>(in[2 + k]);
        off = 10;
    }
    if (in.size() < off + len) return false;
    payload = std::string_view(in.data() + off, len);
    size = off + len;
    return true;
}

// Where a delivery's chunk begins in its payload (the publisher's "P<publisher>:<seq>:<sent ns>"
// follows the key), npos when it has none. memmem rather than find: a JSON text is full of quotes,
// and a search led by the key's first character stops at each one.
constexpr std::string_view k_chunk_key = "\"chunk\":\"P";
std::size_t find_chunk(std::string_view payload) {
    const void* at = memmem(payload.data(), payload.size(), k_chunk_key.data(), k_chunk_key.size());
    return at == nullptr ? std::string_view::npos
                         : static_cast<std::size_t>(static_cast<const char*>(at) - payload.data());
}

// The number after `key` in `text` (e.g. "\"seq\":"), from `from` on; -1 when absent.
long long number_after(std::string_view text, std::string_view key, std::size_t from = 0) {
    const auto at = text.find(key, from);
    if (at == std::string_view::npos) return -1;
    return std::strtoll(text.data() + at + key.size(), nullptr, 10);
}

// The string after `key` (e.g. "\"epoch\":\""), up to the next quote; empty when absent.
std::string string_after(std::string_view text, std::string_view key) {
    const auto at = text.find(key);
    if (at == std::string_view::npos) return {};
    const auto start = at + key.size();
    const auto end = text.find('"', start);
    return end == std::string_view::npos ? std::string{} : std::string{text.substr(start, end - start)};
}

// A blocking keep-alive HTTP/1.1 client of the server API (resume and store modes, where the
// publishing is not what is timed). Every call is bounded by a 30 s socket timeout.
struct blocking_http {
    const options& o;
    int fd = -1;
    std::string in;

    explicit blocking_http(const options& opts) : o(opts) {}
    ~blocking_http() {
        if (fd >= 0) ::close(fd);
    }
    blocking_http(const blocking_http&) = delete;
    blocking_http& operator=(const blocking_http&) = delete;

    void open() {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die(std::string{"socket: "} + std::strerror(errno));
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{30, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in remote{};
        remote.sin_family = AF_INET;
        remote.sin_port = htons(static_cast<std::uint16_t>(o.port));
        inet_pton(AF_INET, o.host.c_str(), &remote.sin_addr);
        if (connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
            die(std::string{"connect (API): "} + std::strerror(errno));
        }
        in.clear();
    }

    // One request; answers the status and the body.
    std::pair<int, std::string> call(std::string_view method, const std::string& path, const std::string& body = {}) {
        if (fd < 0) open();
        std::string req = std::string{method} + " " + path + " HTTP/1.1\r\nHost: " + o.host +
                          "\r\nAuthorization: Bearer " + o.api_key + "\r\n" +
                          (body.empty() ? "" : "Content-Type: application/json\r\n") +
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        std::size_t sent = 0;
        while (sent < req.size()) {
            const auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) die(std::string{"send (API): "} + std::strerror(errno));
            sent += static_cast<std::size_t>(n);
        }
        for (;;) {
            const auto head_end = in.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const auto cl = in.find("Content-Length: ");
                std::size_t length = 0;
                if (cl != std::string::npos && cl < head_end) length = std::stoul(in.substr(cl + 16));
                if (in.size() >= head_end + 4 + length) {
                    const int status = std::atoi(in.c_str() + 9);
                    std::string out = in.substr(head_end + 4, length);
                    in.erase(0, head_end + 4 + length);
                    return {status, std::move(out)};
                }
            }
            char buf[65536];
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) die(std::string{"recv (API): "} + (n == 0 ? "closed" : std::strerror(errno)));
            in.append(buf, static_cast<std::size_t>(n));
        }
    }
};

void sleep_ms(int ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
    nanosleep(&ts, nullptr);
}

// --mode resume: the reconnect storm (see the top of the file).
int run_resume(const options& o, const zena::auth::jwt_settings& jwt) {
    struct rconn : peer {
        std::string token;
        bool upgraded = false;
        bool welcomed = false;
        bool complete = false;
        bool dead = false;
        std::string epoch;  // the personal channel's position the client keeps
        std::uint64_t seq = 0;
        std::int64_t published = 0;  // events published to the user so far (numbered 0, 1, ...)
        std::int64_t next = 0;       // the next event number the client expects
        std::int64_t pending = 0;    // replayed events still due in this phase
    };
    struct phase {
        std::string kind;
        int welcomed = 0;
        int completed = 0;
        double seconds = 0;          // first connect to the last completion (welcome, or replay done)
        double welcome_seconds = 0;  // first connect to the last welcome
        double server_cpu = 0;
        double loadgen_cpu = 0;
        double others_cpu = 0;  // what other processes took meanwhile (machine_busy_s)
        std::uint64_t replayed = 0;
        std::uint64_t not_recovered = 0;   // a welcome without recovered:true (resume)
        std::uint64_t wrong_missed = 0;    // missed != the events published meanwhile
        std::uint64_t wrong_position = 0;  // a welcome's or an event's position not the expected one
        std::uint64_t gaps = 0;
        std::uint64_t duplicates = 0;
        std::uint64_t reorders = 0;
        std::uint64_t unexpected = 0;  // an event when none was due
        std::uint64_t closed_early = 0;
    };
    const auto n_conns = static_cast<std::size_t>(o.connections);
    std::vector<rconn> conns(n_conns);
    for (std::size_t i = 0; i < n_conns; ++i) {
        conns[i].token =
            zena::auth::mint_jwt(jwt, "u" + std::to_string(i), std::chrono::hours(2), zena::auth::unix_now());
        conns[i].ready_buffer();
    }
    const int epfd = epoll_create1(EPOLL_CLOEXEC);
    std::vector<epoll_event> events(4096);
    const auto deadline = now_ns() + std::int64_t{o.timeout_ms} * 1'000'000;
    blocking_http api(o);

    const auto connect_phase = [&](const std::string& kind, bool with_since) {
        phase st;
        st.kind = kind;
        const bool first = kind == "first";
        const double server_cpu_0 = o.server_pid ? process_cpu_s(o.server_pid) : 0;
        const double self_cpu_0 = self_cpu_s();
        const double machine_0 = machine_busy_s();
        const bool recorded = !o.perf_phase.empty() && o.perf_phase == kind;
        if (recorded) perf_ctl("enable");
        const auto t0 = now_ns();
        std::int64_t t_last_welcome = 0;
        std::int64_t t_last_complete = 0;
        std::size_t opened = 0;
        const auto open_next = [&] {
            if (opened == n_conns) return;
            const auto i = opened++;
            auto& c = conns[i];
            const auto source =
                o.sources > 0 ? "127.0.0." + std::to_string(2 + static_cast<int>(i) % o.sources) : std::string{};
            c.fd = open_socket(source, o.host, o.port);
            c.in.clear();
            c.upgraded = c.welcomed = c.complete = c.dead = false;
            c.pending = 0;
            c.out = "GET /ws" + (with_since ? "?since=" + c.epoch + ":" + std::to_string(c.seq) : std::string{}) +
                    " HTTP/1.1\r\nHost: " + o.host +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "Authorization: Bearer " +
                    c.token + "\r\n\r\n";
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
            ev.data.u64 = i;
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev) != 0) die(std::string{"epoll_ctl: "} + std::strerror(errno));
        };
        const auto burst = o.connect_inflight > 0 ? std::min<std::size_t>(o.connect_inflight, n_conns) : n_conns;
        for (std::size_t i = 0; i < burst; ++i) open_next();
        std::size_t done = 0;
        const auto finish = [&](rconn& c) {
            c.complete = true;
            ++done;
            t_last_complete = now_ns();
        };
        while (done + st.closed_early < n_conns && now_ns() < deadline) {
            const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 50);
            for (int k = 0; k < n; ++k) {
                auto& c = conns[events[static_cast<std::size_t>(k)].data.u64];
                if (c.dead) continue;
                const bool alive = c.fill();
                if (!c.upgraded) {
                    const auto end = c.in.find("\r\n\r\n");
                    if (end != std::string::npos) {
                        if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) die("upgrade refused: " + c.in.substr(0, end));
                        c.upgraded = true;
                        c.in.erase(0, end + 4);
                    }
                }
                bool closed = !alive;
                std::uint8_t b0 = 0;
                std::string_view payload;
                std::size_t size = 0;
                std::size_t consumed = 0;  // the frames read, erased once at the end
                while (c.upgraded && next_frame(c.in, consumed, b0, payload, size)) {
                    const auto opcode = b0 & 0x0f;
                    if (opcode == 0x8) closed = true;
                    if (opcode == 0x9) c.out += masked_frame(0xA, payload);
                    if (opcode == 0x1 && !c.welcomed) {
                        c.welcomed = true;
                        ++st.welcomed;
                        t_last_welcome = now_ns();
                        open_next();
                        if (payload.find(R"("type":"connected")") == std::string_view::npos) {
                            die("the first message was not the welcome: " + std::string{payload});
                        }
                        const auto epoch = string_after(payload, R"("epoch":")");
                        const auto seq = number_after(payload, R"("seq":)");
                        if (first) {
                            c.epoch = epoch;
                            c.seq = static_cast<std::uint64_t>(std::max(0LL, seq));
                            if (epoch.empty()) ++st.wrong_position;  // history off: no position to resume from
                            finish(c);
                        } else if (!with_since) {
                            if (epoch != c.epoch || seq != static_cast<long long>(c.seq)) ++st.wrong_position;
                            finish(c);
                        } else {
                            const auto due = c.published - c.next;
                            if (payload.find(R"("recovered":true)") == std::string_view::npos) ++st.not_recovered;
                            if (number_after(payload, R"("missed":)") != due) ++st.wrong_missed;
                            if (epoch != c.epoch || seq != static_cast<long long>(c.seq) + due) ++st.wrong_position;
                            c.pending = due;
                            if (due == 0) finish(c);
                        }
                    } else if (opcode == 0x1) {
                        const auto at = find_chunk(payload);
                        if (at == std::string_view::npos) {
                            // Not one of ours.
                        } else if (c.pending == 0) {
                            ++st.unexpected;
                        } else {
                            ++st.replayed;
                            const auto number = std::strtoll(payload.data() + at + 12, nullptr, 10);  // "P0:<n>:..."
                            if (number == c.next) {
                                ++c.next;
                            } else if (number < c.next) {
                                ++st.duplicates;
                            } else {
                                ++st.gaps;
                                c.next = number + 1;
                            }
                            const auto s = payload.rfind(",\"seq\":");
                            const auto chan_seq = s == std::string_view::npos || s < at
                                                      ? -1
                                                      : std::strtoll(payload.data() + s + 7, nullptr, 10);
                            if (chan_seq != static_cast<long long>(c.seq) + 1) ++st.wrong_position;
                            if (chan_seq > 0) c.seq = static_cast<std::uint64_t>(chan_seq);
                            if (--c.pending == 0) finish(c);
                        }
                    }
                    consumed += size;
                }
                c.in.erase(0, consumed);
                if (closed) {
                    c.dead = true;
                    if (!c.complete) ++st.closed_early;
                    if (!c.welcomed) open_next();
                    continue;
                }
                c.flush();
            }
        }
        if (recorded) perf_ctl("disable");
        st.completed = static_cast<int>(done);
        st.seconds = t_last_complete > t0 ? static_cast<double>(t_last_complete - t0) / 1e9 : 0;
        st.welcome_seconds = t_last_welcome > t0 ? static_cast<double>(t_last_welcome - t0) / 1e9 : 0;
        st.server_cpu = o.server_pid ? process_cpu_s(o.server_pid) - server_cpu_0 : 0;
        st.loadgen_cpu = self_cpu_s() - self_cpu_0;
        st.others_cpu = std::max(0.0, machine_busy_s() - machine_0 - st.server_cpu - st.loadgen_cpu);
        return st;
    };

    // Closes every connection and waits (bounded) until the server counts none.
    double wait_empty_s_max = 0;
    const auto close_all = [&] {
        for (auto& c : conns) {
            if (c.fd >= 0) ::close(c.fd);
            c.fd = -1;
        }
        const auto t0 = now_ns();
        while (now_ns() < deadline) {
            const auto [status, body] = api.call("GET", "/api/stats");
            if (status != 200) die("GET /api/stats: " + std::to_string(status) + " " + body);
            if (number_after(body, R"("connections":)") == 0) break;
            sleep_ms(20);
        }
        wait_empty_s_max = std::max(wait_empty_s_max, static_cast<double>(now_ns() - t0) / 1e9);
    };

    // Publishes --missed events to every user's personal channel, whole users per request.
    std::uint64_t published_total = 0;
    std::uint64_t delivered_live = 0;  // events that reached a connection: someone was still there
    double publish_s = 0;
    double publish_server_cpu = 0;
    const std::string padding(static_cast<std::size_t>(std::max(0, o.payload - 120)), 'x');
    const auto publish_missed = [&] {
        const double server_cpu_0 = o.server_pid ? process_cpu_s(o.server_pid) : 0;
        const auto t0 = now_ns();
        const auto per = static_cast<std::size_t>(std::max(1, o.batch / o.missed));
        for (std::size_t u = 0; u < n_conns; u += per) {
            std::string items;
            std::size_t count = 0;
            for (std::size_t i = u; i < std::min(n_conns, u + per); ++i) {
                auto& c = conns[i];
                for (int k = 0; k < o.missed; ++k) {
                    if (count++ > 0) items += ',';
                    items += R"({"userId":"u)" + std::to_string(i) +
                             R"(","type":"ask.response","payload":{"chunk":"P0:)" + std::to_string(c.published++) +
                             ":" + std::to_string(now_ns()) + " " + padding +
                             R"(","isComplete":false,"streamId":"bench"}})";
                }
            }
            const auto [status, body] = api.call("POST", "/api/batch", R"({"items":[)" + items + "]}");
            if (status != 200) die("POST /api/batch: " + std::to_string(status) + " " + body.substr(0, 300));
            std::size_t answered = 0;
            std::size_t zero = 0;
            for (auto at = body.find(R"("delivered":)"); at != std::string::npos;
                 at = body.find(R"("delivered":)", at + 1)) {
                ++answered;
                if (body.compare(at + 12, 2, "0,") == 0 || body.compare(at + 12, 2, "0}") == 0) ++zero;
            }
            if (answered != count)
                die("POST /api/batch answered " + std::to_string(answered) + " of " + std::to_string(count));
            delivered_live += answered - zero;
            published_total += count;
        }
        publish_s += static_cast<double>(now_ns() - t0) / 1e9;
        publish_server_cpu += o.server_pid ? process_cpu_s(o.server_pid) - server_cpu_0 : 0;
    };

    std::vector<phase> phases;
    phases.push_back(connect_phase("first", false));
    for (int r = 0; r < o.rounds && now_ns() < deadline; ++r) {
        close_all();
        phases.push_back(connect_phase("plain", false));
        close_all();
        publish_missed();
        phases.push_back(connect_phase("resume", true));
    }
    for (auto& c : conns) {
        if (c.fd >= 0) ::close(c.fd);
        c.fd = -1;
    }

    bool clean = delivered_live == 0;
    std::vector<double> plain_rates;
    std::vector<double> resume_rates;
    std::string out = "{\"mode\":\"resume\",\"connections\":" + std::to_string(o.connections) +
                      ",\"missed\":" + std::to_string(o.missed) + ",\"rounds\":" + std::to_string(o.rounds) +
                      ",\"connect_inflight\":" + std::to_string(o.connect_inflight) + ",\"phases\":[";
    char buf[1024];
    for (std::size_t i = 0; i < phases.size(); ++i) {
        const auto& p = phases[i];
        const double rate = p.seconds > 0 ? p.completed / p.seconds : 0;
        if (p.kind == "plain") plain_rates.push_back(rate);
        if (p.kind == "resume") resume_rates.push_back(rate);
        const bool ok = p.completed == o.connections && p.not_recovered == 0 && p.wrong_missed == 0 &&
                        p.wrong_position == 0 && p.gaps == 0 && p.duplicates == 0 && p.reorders == 0 &&
                        p.unexpected == 0 && p.closed_early == 0 &&
                        (p.kind != "resume" || p.replayed == static_cast<std::uint64_t>(o.connections) * o.missed);
        clean = clean && ok;
        std::snprintf(buf, sizeof buf,
                      "%s{\"kind\":\"%s\",\"completed\":%d,\"welcomed\":%d,\"per_s\":%.0f,\"seconds\":%.3f,"
                      "\"welcome_seconds\":%.3f,\"replayed\":%llu,\"not_recovered\":%llu,\"wrong_missed\":%llu,"
                      "\"wrong_position\":%llu,\"gaps\":%llu,\"duplicates\":%llu,\"unexpected\":%llu,"
                      "\"closed_early\":%llu,\"server_cpu_s\":%.2f,\"loadgen_cpu_s\":%.2f,\"others_cpu_s\":%.2f,"
                      "\"ok\":%s}",
                      i > 0 ? "," : "", p.kind.c_str(), p.completed, p.welcomed, rate, p.seconds, p.welcome_seconds,
                      static_cast<unsigned long long>(p.replayed), static_cast<unsigned long long>(p.not_recovered),
                      static_cast<unsigned long long>(p.wrong_missed),
                      static_cast<unsigned long long>(p.wrong_position), static_cast<unsigned long long>(p.gaps),
                      static_cast<unsigned long long>(p.duplicates), static_cast<unsigned long long>(p.unexpected),
                      static_cast<unsigned long long>(p.closed_early), p.server_cpu, p.loadgen_cpu, p.others_cpu,
                      ok ? "true" : "false");
        out += buf;
    }
    const auto median = [](std::vector<double> v) {
        if (v.empty()) return 0.0;
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    const double plain = median(plain_rates);
    const double resumed = median(resume_rates);
    std::snprintf(buf, sizeof buf,
                  "],\"plain_per_s_median\":%.0f,\"resume_per_s_median\":%.0f,\"resume_over_plain\":%.3f,"
                  "\"published\":%llu,\"publish_s\":%.2f,\"publish_server_cpu_s\":%.2f,\"delivered_live\":%llu,"
                  "\"wait_empty_s_max\":%.2f,\"clean\":%s}\n",
                  plain, resumed, plain > 0 ? resumed / plain : 0, static_cast<unsigned long long>(published_total),
                  publish_s, publish_server_cpu, static_cast<unsigned long long>(delivered_live), wait_empty_s_max,
                  clean ? "true" : "false");
    out += buf;
    std::fputs(out.c_str(), stdout);
    return clean ? 0 : 1;
}

// The value of a counter in the server's /metrics text; -1 when absent.
long long metric(blocking_http& api, std::string_view name) {
    const auto [status, body] = api.call("GET", "/metrics");
    if (status != 200) return -1;
    const auto at = body.find("\n" + std::string{name} + " ");
    if (at == std::string::npos) return -1;
    return std::strtoll(body.c_str() + at + name.size() + 2, nullptr, 10);
}

// --mode store: the history's memory per stored event, read from the server's RSS.
int run_store(const options& o) {
    if (!o.server_pid) die("--mode store needs --server-pid");
    blocking_http api(o);
    api.call("GET", "/api/stats");  // the API connection's own buffers exist before the first reading
    const long rss_0 = process_rss_kib(o.server_pid);
    const long long evicted_0 = metric(api, "zena_history_evicted_total");
    const double server_cpu_0 = process_cpu_s(o.server_pid);
    // The payload: {"chunk":"S<n> xxx…","isComplete":false,"streamId":"bench"}, about --payload bytes.
    const std::size_t fixed = std::string_view(R"({"chunk":"","isComplete":false,"streamId":"bench"})").size();
    std::uint64_t payload_bytes = 0;
    std::uint64_t frame_bytes = 0;  // the stored frame, as a live connection would get it (estimated)
    const auto t0 = now_ns();
    std::string epoch;
    int sent = 0;
    while (sent < o.messages) {
        std::string items;
        const int count = std::min(o.batch, o.messages - sent);
        for (int k = 0; k < count; ++k, ++sent) {
            const auto channel = "hist:c" + std::to_string(sent % o.store_channels);
            const auto head = "S" + std::to_string(sent) + " ";
            const auto chunk =
                head +
                std::string(static_cast<std::size_t>(std::max<long long>(
                                0, static_cast<long long>(o.payload) - static_cast<long long>(fixed + head.size()))),
                            'x');
            const auto payload = R"({"chunk":")" + chunk + R"(","isComplete":false,"streamId":"bench"})";
            payload_bytes += payload.size();
            // {"type":"ask.response","payload":P,"channel":"C","epoch":"E","seq":N} and its header
            // (the epoch's length is added at the end, from the first answer)
            const auto frame = 33 + payload.size() + 12 + channel.size() + 11 + 8 +
                               std::to_string(sent / o.store_channels + 1).size() + 1;
            frame_bytes += frame + (frame + 9 < 126 ? 2 : 4);
            if (k > 0) items += ',';
            items += R"({"channel":")" + channel + R"(","type":"ask.response","payload":)" + payload + "}";
        }
        const auto [status, body] = api.call("POST", "/api/batch", R"({"items":[)" + items + "]}");
        if (status != 200) die("POST /api/batch: " + std::to_string(status) + " " + body.substr(0, 300));
        if (epoch.empty()) epoch = string_after(body, R"("epoch":")");
    }
    const double publish_s = static_cast<double>(now_ns() - t0) / 1e9;
    const double server_cpu = process_cpu_s(o.server_pid) - server_cpu_0;
    sleep_ms(200);
    const long rss_1 = process_rss_kib(o.server_pid);
    const long long evicted_1 = metric(api, "zena_history_evicted_total");
    const auto n = static_cast<double>(o.messages);
    std::printf(
        "{\"mode\":\"store\",\"messages\":%d,\"channels\":%d,\"batch\":%d,\"payload_bytes_avg\":%.1f,"
        "\"frame_bytes_avg\":%.1f,\"epoch\":\"%s\",\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
        "\"rss_bytes_per_event\":%.1f,\"evicted\":%lld,\"publish_s\":%.2f,\"events_per_s\":%.0f,"
        "\"server_cpu_s\":%.2f}\n",
        o.messages, o.store_channels, o.batch, static_cast<double>(payload_bytes) / n,
        static_cast<double>(frame_bytes) / n + static_cast<double>(epoch.size()), epoch.c_str(), rss_0, rss_1,
        static_cast<double>(rss_1 - rss_0) * 1024.0 / n, evicted_1 - evicted_0, publish_s, n / publish_s, server_cpu);
    return evicted_1 == evicted_0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse(argc, argv);
    zena::auth::jwt_settings jwt;
    jwt.secret = o.secret;
    if (!o.perf_ctl.empty()) {
        perf_ctl_fd = ::open(o.perf_ctl.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (perf_ctl_fd < 0) die("--perf-ctl " + o.perf_ctl + ": " + std::strerror(errno));
    }
    if (o.mode == "resume") return run_resume(o, jwt);
    if (o.mode == "store") return run_store(o);
    // Every connection gets every message: the broadcast-all fan-out, or the one shared channel's.
    const bool to_all = o.mode == "fanout" || o.mode == "channel";
    const bool on_channel = o.mode == "channel";
    zena::auth::jwt_mint_options claims;
    if (on_channel) claims.channels = {o.grant};
    const auto subscribe_frame =
        masked_frame(0x1, R"({"type":"subscribe","payload":{"channel":")" + o.channel + R"("}})");
    const int epfd = epoll_create1(EPOLL_CLOEXEC);
    std::vector<ws_conn> conns(static_cast<std::size_t>(o.connections));
    std::vector<double> rates;
    zena::bench::parse_rates(o.rates, rates);  // checked by parse()
    const bool open_loop = !rates.empty();
    const bool bursting = o.burst > 0;
    const bool scheduled = open_loop || bursting;  // arrivals on the generator's clock, not on answers
    const bool delivery_gate = o.gate == "delivery";
    const bool socketio = o.protocol == "socketio";
    // --cluster: the state the processes of the run share (bench/cluster_shared.hpp).
    zena::bench::cluster_state* cluster = nullptr;
    if (!o.cluster.empty()) {
        std::string error;
        cluster = zena::bench::map_cluster_state(o.cluster, error);
        if (cluster == nullptr) die("--cluster: " + error);
    }
    const bool receive_only = cluster != nullptr && o.cluster_role == "receive";
    // The fan-out or targeted publishers, then (with --ask-chunks) the Ask stream's, or (with
    // --targeted-rate) the targeted publisher beside an open-loop fan-out (the mixed shape).
    const int ask = o.ask_chunks > 0 ? o.publishers : -1;
    const int tgt = o.targeted_rate > 0 ? o.publishers : -1;
    std::vector<publisher> pubs(static_cast<std::size_t>(o.publishers + (ask >= 0 || tgt >= 0 ? 1 : 0)));
    for (int p = 0; p < o.publishers; ++p) pubs[static_cast<std::size_t>(p)].to_all = to_all;
    // Per publisher, per message (its seq): who still waits for it (not the Ask stream's).
    std::vector<std::vector<zena::bench::tracked_message>> tracked(pubs.size());
    for (auto& c : conns) c.ready_buffer();
    for (auto& pub : pubs) pub.ready_buffer();
    std::uint64_t expected_total = 0;  // deliveries due for what was sent (the Ask stream's apart)
    std::vector<zena::bench::shape_step> steps;
    steps.reserve(open_loop ? rates.size() : static_cast<std::size_t>(bursting ? o.bursts : 0));
    zena::bench::latency_histogram targeted_latency;  // the mixed shape's targeted publishes
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
    double planned = o.messages;   // fan-out messages the run will send (about, for an open loop)
    if (open_loop) {
        planned = 0;
        for (const double r : rates) planned += r * o.step_ms / 1000.0 * 1.2 + 10;
    }
    if (bursting) planned = static_cast<double>(o.burst) * o.bursts;
    // Reserved and touched before the run, like the read buffers (ready_buffer); the publishers'
    // records of their messages are reserved.
    latencies_us.resize(static_cast<std::size_t>(std::min(20e6, planned * o.connections)));
    latencies_us.clear();
    for (auto& mine : tracked)
        mine.reserve(static_cast<std::size_t>(planned / static_cast<double>(tracked.size())) + 16);
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t reorders = 0;
    std::uint64_t gaps = 0;
    std::uint64_t closed_early = 0;
    std::uint64_t delivered_bytes = 0;     // the checked deliveries' frames, header included
    int ready = 0;                         // welcomed, and with --mode channel subscribed too
    std::uint64_t stored_deliveries = 0;   // --mode channel: deliveries that carried a position
    std::uint64_t channel_seq_errors = 0;  // --mode channel: a position that was not the next one

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
        const auto token = zena::auth::mint_jwt(jwt, "u" + std::to_string(o.first_user + i), std::chrono::hours(1),
                                                zena::auth::unix_now(), claims);
        if (socketio) c.token = token;
        c.out =
            (socketio ? "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " : "GET /ws HTTP/1.1\r\nHost: ") +
            o.host +
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
    std::uint32_t cluster_targets = 0;            // --cluster: every process's connections together
    zena::bench::latency_histogram latency_hist;  // the fan-out's deliveries (--cluster prints it)
    std::mt19937 rng(12345);
    // The chunk carries the publisher, the seq and when the message was due (the latency's start).
    const auto chunk_for = [&](int p, std::int64_t seq, std::int64_t due) {
        return "P" + std::to_string(p) + ":" + std::to_string(seq) + ":" + std::to_string(due) + " " + padding;
    };
    const auto targeted_item = [&](int user, const std::string& chunk) {
        return R"({"userId":"u)" + std::to_string(o.first_user + user) +
               R"(","type":"ask.response","payload":{"chunk":")" + chunk +
               R"(","isComplete":false,"streamId":"bench"}})";
    };
    const auto request = [&](const std::string& path, const std::string& body) {
        return "POST " + path + " HTTP/1.1\r\nHost: " + o.host + "\r\nAuthorization: Bearer " + o.api_key +
               "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
               body;
    };
    const auto random_user = [&] { return std::uniform_int_distribution<int>(0, o.connections - 1)(rng); };
    // One request of publisher p, due at `due`: a fan-out message, o.batch targeted ones, or an Ask
    // chunk to u0 (the mixed shape's targeted publisher: one message to a random user).
    const auto request_for = [&](int p, std::int64_t due) {
        auto& pub = pubs[static_cast<std::size_t>(p)];
        if (p == ask) return request("/api/broadcast", targeted_item(0, chunk_for(p, pub.next_seq++, due)));
        if (p == tgt) return request("/api/broadcast", targeted_item(random_user(), chunk_for(p, pub.next_seq++, due)));
        if (on_channel) {
            return request("/api/publish",
                           R"({"channel":")" + o.channel + R"(","type":"ask.response","payload":{"chunk":")" +
                               chunk_for(p, pub.next_seq++, due) + R"(","isComplete":false,"streamId":"bench"}})");
        }
        if (o.mode == "fanout") {
            return request("/api/broadcast-all", R"({"type":"ask.response","payload":{"chunk":")" +
                                                     chunk_for(p, pub.next_seq++, due) +
                                                     R"(","isComplete":false,"streamId":"bench"}})");
        }
        if (o.batch == 1) {
            return request("/api/broadcast", targeted_item(random_user(), chunk_for(p, pub.next_seq++, due)));
        }
        std::string items;
        for (int k = 0; k < o.batch; ++k) {
            if (k > 0) items += ',';
            items += targeted_item(random_user(), chunk_for(p, pub.next_seq++, due));
        }
        return request("/api/batch", R"({"items":[)" + items + "]}");
    };
    // Queues one request of publisher p (the caller flushes) and tracks each of its messages until
    // every target connection has it; `step` is the open-loop step or burst it belongs to (-1: none).
    const auto send = [&](int p, std::int64_t due, int step) {
        auto& pub = pubs[static_cast<std::size_t>(p)];
        const auto first_seq = pub.next_seq;
        pub.out += request_for(p, due);
        ++pub.outstanding;
        if (p == ask) return;
        const auto targets = pub.to_all ? static_cast<std::uint32_t>(conns.size()) : 1U;
        auto& mine = tracked[static_cast<std::size_t>(p)];
        for (auto seq = first_seq; seq < pub.next_seq; ++seq) mine.push_back({due, targets, step});
        const auto n = pub.next_seq - first_seq;
        pub.undelivered += n;
        expected_total += static_cast<std::uint64_t>(n) * targets;
        if (p != tgt) published += n;
        if (cluster != nullptr) {
            // Every connection of every process: set before the request can reach the server.
            for (auto seq = first_seq; seq < pub.next_seq; ++seq) {
                cluster->remaining[static_cast<std::size_t>(seq)].store(cluster_targets);
            }
            cluster->published.store(published);
            if (published >= o.messages) cluster->done.store(1);
        }
        if (step >= 0) {
            auto& st = steps[static_cast<std::size_t>(step)];
            st.expected += static_cast<std::uint64_t>(n) * targets;
            (p == tgt ? st.targeted_messages : st.messages) += static_cast<std::uint64_t>(n);
        }
    };
    const auto pump = [&](int p) {
        auto& pub = pubs[static_cast<std::size_t>(p)];
        if (p == ask) {
            // The Ask stream: chunks at a steady pace, as a backend relays a model's tokens.
            const auto now = now_ns();
            while (ask_sent < o.ask_chunks && now >= ask_next_ns) {
                send(p, now_ns(), -1);
                ++ask_sent;
                ask_next_ns += std::int64_t{o.ask_interval_us} * 1000;
            }
        } else if (!scheduled) {
            // A window: at most --inflight publishes in flight on this connection, each until it is
            // answered or (--gate delivery) until every target connection has it. With an Ask
            // stream, the fan-out goes on until the stream is done.
            const auto more = [&] { return published < o.messages || (ask >= 0 && ask_answered < o.ask_chunks); };
            const auto in_flight = [&] { return delivery_gate ? pub.undelivered : std::int64_t{pub.outstanding}; };
            const auto now = now_ns();
            while (in_flight() < o.inflight && pub.outstanding < k_max_unanswered && more() &&
                   (o.rate == 0 || now >= rate_next_ns)) {
                send(p, now_ns(), -1);
                pub.max_in_flight = std::max(pub.max_in_flight, in_flight());
                if (o.rate > 0) rate_next_ns += 1'000'000'000LL / o.rate;
            }
        }
        // Scheduled shapes send from schedule() below, on the generator's clock.
        pub.flush();
    };
    // A step's end: every target reached (or the drain gave up), and the CPU each side spent.
    const auto finish_step = [&](zena::bench::shape_step& st) {
        st.ended = true;
        if (st.drained()) st.done_ns = st.last_delivery_ns > st.start_ns ? st.last_delivery_ns : st.arrivals_end_ns;
        st.server_cpu = o.server_pid ? process_cpu_s(o.server_pid) - st.server_cpu_0 : 0;
        st.self_cpu = self_cpu_s() - st.self_cpu_0;
        st.others_cpu = std::max(0.0, machine_busy_s() - st.machine_0 - st.server_cpu - st.self_cpu);
    };

    // --protocol socketio: Engine.IO's and Socket.IO's own packets, answered here; true when
    // `payload` was one of them. The server's `40{"sid":...}` is left to the caller: the welcome.
    const auto on_engine_io = [&](ws_conn& c, std::string_view payload) {
        if (payload == "2") {  // ping
            c.out += masked_frame(0x1, "3");
            return true;
        }
        if (c.welcomed) return false;
        if (payload.starts_with("0")) {  // Engine.IO open: Socket.IO's CONNECT, with the token as `auth`
            c.out += masked_frame(0x1, R"(40{"token":")" + c.token + R"("})");
            c.token.clear();
            c.token.shrink_to_fit();
            return true;
        }
        if (payload.starts_with("44")) die("Socket.IO refused the connection: " + std::string{payload});
        return !payload.starts_with("40");
    };

    // Parses the frames in c.in; returns false when the server closed the connection. The frames
    // read are cut off the buffer once per call (cutting each one moved the rest of the buffer, a
    // cost per frame that grew with the frames one read brought), and one clock reading stamps
    // them all: they arrived together.
    const auto on_frames = [&](ws_conn& c) {
        std::size_t pos = 0;
        const auto now = now_ns();
        std::uint8_t b0 = 0;
        std::string_view payload;
        std::size_t size = 0;
        for (; next_frame(c.in, pos, b0, payload, size); pos += size) {
            if ((b0 & 0x40) != 0) {  // RSV1: a compressed message (permessage-deflate)
                if (zena::ws::inflate_message(payload, 1U << 20, inflated) != zena::ws::inflate_status::ok) {
                    die("a compressed message did not inflate");
                }
                payload = inflated;
                ++compressed;
            }
            const auto opcode = b0 & 0x0f;
            if (opcode == 0x8) {
                c.in.erase(0, pos + size);  // read once: a later wake-up must not count the close again
                return false;
            }
            if (opcode == 0x9) c.out += masked_frame(0xA, payload);
            if (socketio && opcode == 0x1 && on_engine_io(c, payload)) continue;
            if (opcode == 0x1) {
                if (!c.welcomed) {
                    c.welcomed = true;
                    ++welcomed;
                    if (on_channel) {
                        c.out += subscribe_frame;
                    } else if (++ready == o.connections) {
                        connect_done = now_ns();
                    }
                    open_next();
                } else if (on_channel && !c.subscribed) {
                    if (payload.find(R"("type":"subscribed")") != std::string_view::npos) {
                        c.subscribed = true;
                        if (++ready == o.connections) connect_done = now_ns();
                    } else if (payload.find(R"("type":"subscribe.error")") != std::string_view::npos) {
                        die("subscribe refused: " + std::string{payload});
                    }
                } else {
                    const auto at = find_chunk(payload);
                    if (at != std::string_view::npos) {
                        // "P<publisher>:<seq>:<sent ns> <padding>"
                        const char* p = payload.data() + at + k_chunk_key.size();
                        const char* const stop = payload.data() + payload.size();
                        std::int64_t pub = -1;
                        std::int64_t seq = -1;
                        std::int64_t sent = 0;
                        p = std::from_chars(p, stop, pub).ptr;
                        if (p < stop) p = std::from_chars(p + 1, stop, seq).ptr;
                        if (p < stop) (void)std::from_chars(p + 1, stop, sent);
                        const auto lat =
                            static_cast<std::uint32_t>(std::clamp<std::int64_t>((now - sent) / 1000, 0, UINT32_MAX));
                        if (pub < 0 || static_cast<std::size_t>(pub) >= pubs.size()) die("a delivery of no publisher");
                        auto& last = c.last_seq[static_cast<std::size_t>(pub)];
                        auto& mine = tracked[static_cast<std::size_t>(pub)];
                        if (cluster != nullptr && seq > last && seq >= 0 &&
                            static_cast<std::size_t>(seq) < zena::bench::cluster_state::k_max_messages) {
                            cluster->remaining[static_cast<std::size_t>(seq)].fetch_sub(1);
                        }
                        if (pub != ask && seq > last && seq >= 0 && static_cast<std::size_t>(seq) < mine.size()) {
                            // A first delivery of this message to this connection.
                            auto& m = mine[static_cast<std::size_t>(seq)];
                            if (m.step >= 0) {
                                auto& st = steps[static_cast<std::size_t>(m.step)];
                                ++st.delivered;
                                st.last_delivery_ns = now;
                                (pub == tgt ? st.targeted_latency : st.latency).add(lat);
                                if (!st.ended && st.arrivals_end_ns != 0 && st.delivered == st.expected) {
                                    finish_step(st);
                                }
                            }
                            // (--cluster: the shared count decides, in cluster_release below)
                            if (cluster == nullptr && m.remaining > 0 && --m.remaining == 0) {
                                auto& owner = pubs[static_cast<std::size_t>(pub)];
                                --owner.undelivered;
                                if (delivery_gate) pump(static_cast<int>(pub));
                            }
                        }
                        if (pub == tgt && seq > last) targeted_latency.add(lat);
                        if (pub == ask) {
                            ask_latencies_us.push_back(lat);
                            ++ask_delivered;
                            if (seq != last + 1) ++ask_reorders;
                            last = seq;
                        } else {
                            if (pub != tgt && latencies_us.size() < latencies_us.capacity())
                                latencies_us.push_back(lat);
                            if (pub != tgt) latency_hist.add(lat);
                            ++delivered;
                            delivered_bytes += size;
                            ++c.received;
                            if (seq == last)
                                ++duplicates;
                            else if (seq < last)
                                ++reorders;
                            else if (pubs[static_cast<std::size_t>(pub)].to_all && seq != last + 1)
                                ++gaps;
                            if (seq > last) last = seq;
                            if (on_channel) {
                                // The channel's position, the frame's last field: ,"seq":N}
                                const auto s = payload.rfind(",\"seq\":");
                                if (s != std::string_view::npos && s > at) {
                                    const auto chan_seq = std::strtoull(payload.data() + s + 7, nullptr, 10);
                                    if (c.chan_seq != 0 && chan_seq != c.chan_seq + 1) ++channel_seq_errors;
                                    c.chan_seq = chan_seq;
                                    ++stored_deliveries;
                                }
                            }
                        }
                    }
                }
            }
        }
        c.in.erase(0, pos);
        return true;
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
            else if (p != tgt)
                answered += o.batch;
        }
    };

    // The scheduled shapes: arrivals on the generator's clock, whatever the answers and deliveries.
    // Open loop (--rates): one step per rate, Poisson arrivals for --step-ms spread round-robin
    // over the publishers (and, with --targeted-rate, targeted ones beside), then a drain of at
    // most --drain-ms until the step's every delivery is in; the next rate only after a step held
    // its p99 under --stop-p99-ms. Bursts (--burst K): K publishes due at once every
    // --burst-every-ms, --bursts times, each burst a step of its own.
    zena::bench::poisson_clock fanout_clock(12345);
    zena::bench::poisson_clock targeted_clock(54321);
    std::int64_t next_arrival = 0;
    std::int64_t next_targeted = 0;
    std::int64_t drain_until = 0;
    int next_pub = 0;
    int bursts_sent = 0;
    bool schedule_done = false;
    std::int64_t cut_off_at = 0;  // when a scheduled run stops waiting for the last deliveries
    bool cut_off = false;
    const auto next_publisher = [&] {
        const int p = next_pub;
        next_pub = (next_pub + 1) % o.publishers;
        return p;
    };
    const auto begin_step = [&](double rate, std::int64_t at) {
        auto& st = steps.emplace_back();
        st.rate = rate;
        st.targeted_rate = o.targeted_rate;
        st.start_ns = at;
        st.server_cpu_0 = o.server_pid ? process_cpu_s(o.server_pid) : 0;
        st.self_cpu_0 = self_cpu_s();
        st.machine_0 = machine_busy_s();
    };
    const auto all_answered = [&] {
        return std::all_of(pubs.begin(), pubs.end(), [](const publisher& p) { return p.outstanding == 0; });
    };
    const auto schedule = [&] {
        const auto now = now_ns();
        if (bursting) {
            while (bursts_sent < o.bursts && now >= next_arrival) {
                const auto due = next_arrival;
                begin_step(0, due);
                const int step = static_cast<int>(steps.size()) - 1;
                for (int k = 0; k < o.burst; ++k) send(next_publisher(), due, step);
                auto& st = steps.back();
                st.arrivals_end_ns = now;
                st.late_max_ns = now - due;
                ++bursts_sent;
                next_arrival += std::int64_t{o.burst_every_ms} * 1'000'000;
            }
            schedule_done = bursts_sent == o.bursts;
        } else {
            const auto index = static_cast<int>(steps.size()) - 1;
            auto& st = steps.back();
            if (st.arrivals_end_ns == 0) {
                const auto end = st.start_ns + std::int64_t{o.step_ms} * 1'000'000;
                while (next_arrival <= now && next_arrival < end) {
                    const int p = next_publisher();
                    if (pubs[static_cast<std::size_t>(p)].outstanding >= k_max_unanswered) break;  // sent late
                    st.late_max_ns = std::max(st.late_max_ns, now - next_arrival);
                    send(p, next_arrival, index);
                    next_arrival += fanout_clock.gap_ns(st.rate);
                }
                while (tgt >= 0 && next_targeted <= now && next_targeted < end &&
                       pubs[static_cast<std::size_t>(tgt)].outstanding < k_max_unanswered) {
                    send(tgt, next_targeted, index);
                    next_targeted += targeted_clock.gap_ns(o.targeted_rate);
                }
                if (now >= end) {
                    st.arrivals_end_ns = end;
                    drain_until = now + std::int64_t{o.drain_ms} * 1'000'000;
                    if (st.delivered == st.expected) finish_step(st);
                }
            } else {
                if (!st.ended && now > drain_until) finish_step(st);  // the drain gave up: not held
                if (st.ended && (all_answered() || now > drain_until)) {
                    const bool go_on = st.drained() &&
                                       st.latency.quantile(0.99) <= std::uint32_t(o.stop_p99_ms) * 1000 &&
                                       steps.size() < rates.size();
                    if (go_on) {
                        begin_step(rates[steps.size()], now);
                        next_arrival = now + fanout_clock.gap_ns(rates[steps.size() - 1]);
                        if (tgt >= 0) next_targeted = now + targeted_clock.gap_ns(o.targeted_rate);
                    } else {
                        schedule_done = true;
                    }
                }
            }
        }
        for (auto& pub : pubs) pub.flush();
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
    double machine_0 = machine_busy_s();
    long rss_idle = 0;
    // --cluster: this process's connections are counted once all are ready; then the publisher
    // waits for every process and for DIR/go, and a receiver for the publisher's start.
    bool cluster_counted = false;
    bool cluster_told = false;
    const auto cluster_start = [&] {
        if (!cluster_counted) {
            cluster->connections.fetch_add(conns.size());
            cluster->ready.fetch_add(1);
            cluster_counted = true;
        }
        if (receive_only) return cluster->start_ns.load() != 0;
        if (cluster->ready.load() < static_cast<std::uint32_t>(o.cluster_processes)) return false;
        if (!cluster_told) zena::bench::touch_file(o.cluster + "/ready");
        cluster_told = true;
        if (!zena::bench::file_exists(o.cluster + "/go")) return false;
        cluster_targets = static_cast<std::uint32_t>(cluster->connections.load());
        return true;
    };
    // --cluster, the publisher: messages every connection of every process has are out of the
    // window (their shared count reached 0), whichever process took the last one.
    std::size_t cluster_oldest = 0;
    const auto cluster_release = [&] {
        auto& mine = tracked[0];
        bool released = false;
        for (auto i = cluster_oldest; i < mine.size(); ++i) {
            if (mine[i].remaining == 0 || cluster->remaining[i].load() != 0) continue;
            mine[i].remaining = 0;
            --pubs[0].undelivered;
            released = true;
        }
        while (cluster_oldest < mine.size() && mine[cluster_oldest].remaining == 0) ++cluster_oldest;
        if (released && delivery_gate) pump(0);
    };
    for (;;) {
        if (now_ns() > deadline) break;
        if (!publishing && ready == o.connections && (cluster == nullptr || cluster_start())) {
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
            if (cluster != nullptr && receive_only) t_publish = cluster->start_ns.load();
            if (cluster != nullptr && !receive_only) cluster->start_ns.store(t_publish);
            if (o.messages > 0 || o.ask_chunks > 0 || scheduled) {
                server_cpu_0 = o.server_pid ? process_cpu_s(o.server_pid) : 0;
                self_cpu_0 = self_cpu_s();
                machine_0 = machine_busy_s();
                perf_ctl("enable");
            }
            ask_next_ns = t_publish;
            rate_next_ns = t_publish;
            for (std::size_t p = 0; p < pubs.size() && !receive_only; ++p) {
                auto& pub = pubs[p];
                pub.fd = open_socket({}, o.host, o.port);
                watch(pub.fd, conns.size() + p, EPOLLIN | EPOLLOUT | EPOLLET);
            }
            if (open_loop) {
                begin_step(rates[0], t_publish);
                next_arrival = t_publish + fanout_clock.gap_ns(rates[0]);
                if (tgt >= 0) next_targeted = t_publish + targeted_clock.gap_ns(o.targeted_rate);
            }
            if (bursting) next_arrival = t_publish;
        }
        if (publishing && receive_only) {
            // Every message the publisher sent, or one drain after its last: the rest is lost.
            const auto sent = static_cast<std::uint64_t>(cluster->published.load());
            const bool last_sent = cluster->done.load() != 0;
            if (last_sent && delivered >= sent * conns.size()) break;
            if (last_sent && cut_off_at == 0) cut_off_at = now_ns() + std::int64_t{o.drain_ms} * 1'000'000;
            if (cut_off_at != 0 && now_ns() > cut_off_at) {
                cut_off = true;
                break;
            }
        } else if (publishing && scheduled) {
            if (!schedule_done) schedule();
            if (schedule_done && all_answered() && delivered >= expected_total) break;
            // An overloaded server's backlog is not waited for beyond one more drain: what has not
            // come by then counts as lost, and the run says it was cut off.
            if (schedule_done && cut_off_at == 0) cut_off_at = now_ns() + std::int64_t{o.drain_ms} * 1'000'000;
            if (cut_off_at != 0 && now_ns() > cut_off_at) {
                cut_off = true;
                break;
            }
        } else if (publishing && answered == published && published >= o.messages) {
            const bool all_in = delivered >= expected_total;
            const bool ask_in =
                ask < 0 || (ask_answered == o.ask_chunks && ask_delivered >= static_cast<std::uint64_t>(o.ask_chunks));
            if (all_in && ask_in) break;
        }
        // While the Ask stream is due, wake often enough to keep its pace.
        const bool ask_pacing = publishing && ask >= 0 && ask_sent < o.ask_chunks;
        const bool rate_pacing = publishing && o.rate > 0 && published < o.messages && !receive_only;
        if (publishing && cluster != nullptr && !receive_only) cluster_release();
        // --cluster: the shared counts are read every millisecond (publishing, or waiting to start).
        const bool cluster_polling = cluster != nullptr && (!publishing ? ready == o.connections : !receive_only);
        if (ask_pacing) pump(ask);
        if (rate_pacing) {
            for (int p = 0; p < o.publishers; ++p) pump(p);
        }
        const bool pacing = ask_pacing || rate_pacing || (publishing && scheduled && !schedule_done) || cluster_polling;
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

    perf_ctl("disable");
    if (receive_only) {
        // What the publisher sent, to every connection of this process.
        published = cluster->published.load();
        expected_total = static_cast<std::uint64_t>(published) * conns.size();
    }
    const double server_cpu = o.server_pid ? process_cpu_s(o.server_pid) - server_cpu_0 : 0;
    const double self_cpu = self_cpu_s() - self_cpu_0;
    const double others_cpu = std::max(0.0, machine_busy_s() - machine_0 - server_cpu - self_cpu);
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
    const std::uint64_t expected = expected_total;
    for (auto& st : steps) {
        if (!st.ended) finish_step(st);
    }
    // What "in flight" meant in this run, and the shape's own results.
    const auto per_conn = " per publisher connection (" + std::to_string(o.publishers) + ")";
    std::string shape = "window";
    std::string in_flight = std::to_string(o.inflight) + per_conn + ", each until answered";
    if (delivery_gate) {
        in_flight = std::to_string(o.inflight) + per_conn + ", each until every target connection received it";
        if (cluster != nullptr) in_flight += " (the connections of every generator process, on every node)";
    }
    if (o.rate > 0) {
        shape = "paced";
        in_flight =
            std::to_string(o.rate) + "/s paced, at most " + std::to_string(o.inflight) + per_conn + " unanswered";
    }
    if (ask >= 0) shape = "ask";
    if (open_loop) {
        shape = tgt >= 0 ? "mixed" : "open";
        in_flight = "open loop: Poisson arrivals at each step's rate for " + std::to_string(o.step_ms) +
                    " ms, whatever the answers and deliveries" +
                    (tgt >= 0 ? ", targeted ones at " + std::to_string(o.targeted_rate) + "/s beside" : "");
    }
    if (bursting) {
        shape = "burst";
        in_flight = std::to_string(o.burst) + " publishes due at once every " + std::to_string(o.burst_every_ms) +
                    " ms, whatever the answers and deliveries";
    }
    std::string extra = R"(,"shape":")" + shape + R"(","gate":")" + o.gate + R"(","inflight":)" +
                        std::to_string(o.inflight) + R"(,"publishers":)" + std::to_string(o.publishers) +
                        R"(,"in_flight":")" + in_flight + "\"";
    std::int64_t max_in_flight = 0;
    for (const auto& pub : pubs) max_in_flight = std::max(max_in_flight, pub.max_in_flight);
    if (!scheduled) extra += R"(,"max_in_flight":)" + std::to_string(max_in_flight);
    if (socketio) extra += R"(,"protocol":"socketio")";
    if (cluster != nullptr) {
        extra += R"(,"cluster":{"role":")" + o.cluster_role + R"(","processes":)" +
                 std::to_string(cluster->ready.load()) + R"(,"targets":)" +
                 std::to_string(cluster->connections.load()) + R"(,"t_start_ns":)" + std::to_string(t_publish) +
                 R"(,"t_last_delivery_ns":)" + std::to_string(t_last_delivery) + R"(,"cut_off":)" +
                 (cut_off ? "true" : "false") + R"(,"latency_hist":)" + latency_hist.buckets_json() + "}";
    }
    if (scheduled) {
        extra += std::string{R"(,"cut_off":)"} + (cut_off ? "true" : "false");
        const auto hold_us = static_cast<std::uint32_t>(o.hold_p99_ms) * 1000;
        double held_rate = 0;
        std::vector<double> completions;
        extra += R"(,"hold_p99_ms":)" + std::to_string(o.hold_p99_ms) + R"(,"steps":[)";
        for (std::size_t i = 0; i < steps.size(); ++i) {
            extra += (i > 0 ? "," : "") + steps[i].json(hold_us);
            if (steps[i].held(hold_us)) held_rate = std::max(held_rate, steps[i].rate);
            if (steps[i].done_ns > 0)
                completions.push_back(static_cast<double>(steps[i].done_ns - steps[i].start_ns) / 1e6);
        }
        extra += "]";
        char buf[256];
        if (open_loop) {
            (void)std::snprintf(buf, sizeof buf, R"(,"held_rate":%.1f)", held_rate);
            extra += buf;
        }
        if (bursting) {
            std::sort(completions.begin(), completions.end());
            (void)std::snprintf(
                buf, sizeof buf,
                R"(,"burst":{"size":%d,"every_ms":%d,"completed":%zu,"completion_ms":{"p50":%.1f,"max":%.1f}})",
                o.burst, o.burst_every_ms, completions.size(),
                completions.empty() ? 0.0 : completions[completions.size() / 2],
                completions.empty() ? 0.0 : completions.back());
            extra += buf;
        }
    }
    if (tgt >= 0) {
        std::uint64_t sent = 0;
        for (const auto& st : steps) sent += st.targeted_messages;
        extra += R"(,"targeted":{"rate":)" + std::to_string(o.targeted_rate) + R"(,"messages":)" +
                 std::to_string(sent) + R"(,"delivered":)" + std::to_string(targeted_latency.total()) +
                 R"(,"latency_us":)" + targeted_latency.json() + "}";
    }
    const double connect_s = connect_done ? static_cast<double>(connect_done - t_connect) / 1e9 : 0;
    const double deliver_s = t_last_delivery > t_publish ? static_cast<double>(t_last_delivery - t_publish) / 1e9 : 0;
    std::printf(
        "{\"mode\":\"%s\",\"connections\":%d,\"welcomed\":%d,\"handshakes_per_s\":%.0f,\"messages\":%d,"
        "\"answered\":%lld,\"expected_deliveries\":%llu,\"delivered\":%llu,\"lost\":%lld,\"duplicates\":%llu,"
        "\"reorders\":%llu,\"gaps\":%llu,\"closed_early\":%llu,\"deliveries_per_s\":%.0f,"
        "\"latency_us\":{\"p50\":%u,\"p99\":%u,\"p999\":%u,\"max\":%u},\"server_cpu_s\":%.2f,"
        "\"loadgen_cpu_s\":%.2f,\"wall_s\":%.2f,\"server_rss_idle_kib\":%ld,\"batch\":%d,\"compressed\":%llu,"
        "\"ask\":{\"chunks\":%d,\"delivered\":%llu,\"out_of_order\":%llu,\"latency_us\":{\"p50\":%u,\"p99\":%u,"
        "\"max\":%u}},\"channel\":\"%s\",\"subscribed\":%d,\"stored\":%llu,\"channel_seq_errors\":%llu,"
        "\"others_cpu_s\":%.2f,\"frame_bytes_avg\":%.1f",
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
        ask_latencies_us.empty() ? 0 : ask_latencies_us.back(), on_channel ? o.channel.c_str() : "",
        on_channel ? ready : 0, static_cast<unsigned long long>(stored_deliveries),
        static_cast<unsigned long long>(channel_seq_errors), others_cpu,
        delivered ? static_cast<double>(delivered_bytes) / static_cast<double>(delivered) : 0.0);
    std::printf("%s}\n", extra.c_str());
    if (cluster != nullptr) {
        // The script reads Redis's counters once every process has printed, before the
        // connections close (their unsubscribes are not the publishing's): they are held until
        // DIR/end, at most --drain-ms.
        std::fflush(stdout);
        const auto until = now_ns() + std::int64_t{o.drain_ms} * 1'000'000;
        while (!zena::bench::file_exists(o.cluster + "/end") && now_ns() < until) sleep_ms(10);
    }
    const bool clean = welcomed == o.connections && delivered == expected && duplicates == 0 && reorders == 0 &&
                       gaps == 0 && closed_early == 0 && ask_delivered == static_cast<std::uint64_t>(o.ask_chunks) &&
                       ask_reorders == 0 && ready == o.connections && channel_seq_errors == 0;
    return clean ? 0 : 1;
}
